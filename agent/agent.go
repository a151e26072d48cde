// Package agent is `intent-mapper-agent` (also `intent-mapper agent`): the node agent
// that captures DNS answers and SYNs, scans /proc for connections, and reports what it sees to the manager.
package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intent-mapper/intent-mapper/agent/capture"
	"github.com/intent-mapper/intent-mapper/agent/conns"
	"github.com/intent-mapper/intent-mapper/agent/envoy"
	"github.com/intent-mapper/intent-mapper/agent/metrics"
	"github.com/intent-mapper/intent-mapper/agent/packets"
	"github.com/intent-mapper/intent-mapper/agent/pods"
	"github.com/intent-mapper/intent-mapper/agent/report"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

const usage = `intent-mapper-agent observes one node and reports to the manager
(` + "`intent-mapper agent`" + ` runs the same agent from the manager's binary).

Usage:
  intent-mapper-agent [flags]              run the agent (needs CAP_NET_RAW, and the host's /proc)
  intent-mapper-agent dns --pcap FILE      decode a capture file; print DNS answers as JSON lines
  intent-mapper-agent conns --once         scan /proc once; print connections as JSON lines
  intent-mapper-agent envoy --url URL [--interval D] [--count N] [--ztunnel]
                                           scrape one proxy N times; print what grew as JSON lines
  intent-mapper-agent probe --heartbeat-file FILE --max-age D
                                           exit 0 if the running agent's report loop beat within D

Environment: NODE_NAME sets --node.

Flags:
`

// options are the agent's flags.
type options struct {
	report      report.Options
	interfaces  string
	procRoot    string
	scan        time.Duration
	metricsAddr string
	pprofAddr   string
	dns         bool
	connections bool
	istio       bool
	ambient     bool
	kubeconfig  string
	scrape      time.Duration
	scraper     *envoy.Scraper
	ztunnelNS   string
	ztunnelSel  string
	waypointSel string
	syn         bool
	heartbeat   string
	meshSync    time.Duration
}

func flags(o *options, out io.Writer) *flag.FlagSet {
	o.report = report.DefaultOptions()
	r := &o.report
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { _, _ = fmt.Fprint(out, usage); fs.PrintDefaults() }
	fs.StringVar(&r.Node, "node", os.Getenv("NODE_NAME"), "name of this node (env NODE_NAME)")
	fs.StringVar(&r.URL, "manager-url", r.URL, "the manager's report endpoint")
	fs.StringVar(&r.ServerName, "manager-server-name", "", "name to verify the manager's certificate against, if not the URL's host")
	fs.StringVar(&r.CAFile, "ca-file", r.CAFile, "CA bundle the manager publishes (ConfigMap intent-mapper-ca)")
	fs.StringVar(&r.TokenFile, "token-file", r.TokenFile, "projected ServiceAccount token, audience intent-mapper")
	fs.DurationVar(&r.Interval, "report-interval", r.Interval, "how often to send a report")
	fs.IntVar(&r.BufferSize, "buffer-size", r.BufferSize, "observations kept while the manager is away; the oldest go first")
	fs.StringVar(&o.interfaces, "interfaces", "", "comma-separated interfaces to capture on; all when empty")
	fs.StringVar(&o.procRoot, "proc-root", "/proc", "the host's proc file system (/host/proc in the DaemonSet)")
	fs.DurationVar(&o.scan, "scan-interval", 30*time.Second, "how often to scan /proc for established connections (SYNs show new ones as they open)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "127.0.0.1:9090", "address of the agent's Prometheus metrics, served without authentication: on the host network, keep it on loopback; 0 turns it off")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of Go's profiles (/debug/pprof/), for finding where CPU and memory go; off (0) by default, keep it on loopback")
	fs.BoolVar(&o.dns, "dns", true, "capture DNS answers")
	fs.BoolVar(&o.connections, "connections", true, "scan /proc and capture SYNs for connections")
	fs.BoolVar(&o.istio, "istio", false, "scrape this node's Istio sidecars for HTTP paths and methods (needs API access)")
	fs.BoolVar(&o.ambient, "ambient", false, "also scrape this node's ztunnel (L4) and waypoints (L7)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for watching this node's pods; in-cluster when empty")
	fs.DurationVar(&o.scrape, "scrape-interval", 15*time.Second, "how often to scrape mesh proxies")
	o.scraper = envoy.DefaultScraper()
	fs.IntVar(&o.scraper.Port, "scrape-port", o.scraper.Port, "port of the proxies' merged metrics")
	fs.IntVar(&o.scraper.FallbackPort, "scrape-fallback-port", o.scraper.FallbackPort, "port tried when --scrape-port does not answer (Envoy's own)")
	fs.StringVar(&o.scraper.Path, "scrape-path", o.scraper.Path, "path of the proxies' metrics")
	fs.BoolVar(&o.scraper.Filter, "scrape-filter", o.scraper.Filter, "ask sidecars and waypoints for istio_requests_total alone (Envoy's ?filter=, which pilot-agent passes on from Istio 1.24; older ones send the whole page, read as before); false for a proxy that answers the filter wrongly")
	fs.StringVar(&o.ztunnelNS, "ztunnel-namespace", "istio-system", "namespace of ztunnel")
	fs.StringVar(&o.ztunnelSel, "ztunnel-selector", "app=ztunnel", "labels of ztunnel pods")
	fs.StringVar(&o.waypointSel, "waypoint-selector", "gateway.istio.io/managed=istio.io-mesh-controller", "labels of waypoint pods")
	fs.BoolVar(&o.syn, "syn", true, "capture SYNs, so short connections between scans are seen (with --connections)")
	fs.StringVar(&o.heartbeat, "heartbeat-file", "", "file the report loop writes its heartbeat to, for `agent probe`; none when empty")
	fs.DurationVar(&o.meshSync, "mesh-sync-timeout", 30*time.Second, "longest wait for this node's pods before reporting starts without the mesh source (it joins once they are listed)")
	return fs
}

// Main runs `intent-mapper agent` with its arguments and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "dns":
			return dnsCommand(args[1:], stdout, stderr)
		case "conns":
			return connsCommand(args[1:], stdout, stderr)
		case "envoy":
			return envoyCommand(args[1:], stdout, stderr)
		case "probe":
			return probeCommand(args[1:], stderr)
		}
	}
	var o options
	fs := flags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if o.report.Node == "" {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent: --node (or NODE_NAME) is required")
		return 2
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.heartbeat != "" {
		o.report.Beat = beatTo(o.heartbeat, stderr)
	}
	if err := run(ctx, o, stderr); err != nil {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent:", err)
		return 1
	}
	return 0
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// run starts every source and the reporter; a source that cannot start is an error,
// so a broken agent never reports an empty map.
func run(ctx context.Context, o options, stderr io.Writer) error {
	rep := report.New(o.report)
	var ifaces []string
	if o.interfaces != "" {
		ifaces = strings.Split(o.interfaces, ",")
	}
	var captures []*capture.Capture
	if o.dns {
		c, err := capture.Open(ifaces, packets.DNSFilter, capture.SnaplenDNS)
		if err != nil {
			return fmt.Errorf("cannot capture DNS answers: %w", err)
		}
		captures = append(captures, c)
	}
	if o.connections && o.syn {
		c, err := capture.Open(ifaces, packets.SYNFilter, capture.SnaplenSYN)
		if err != nil {
			return fmt.Errorf("cannot capture SYNs: %w", err)
		}
		captures = append(captures, c)
	}
	if o.connections {
		scanner := &conns.Scanner{Root: o.procRoot}
		if _, err := scanner.Scan(func(conns.Conn) {}); err != nil {
			return fmt.Errorf("cannot read %s: %w", o.procRoot, err)
		}
		go scanEvery(ctx, scanner, o.scan, rep)
	}
	if o.istio || o.ambient {
		if err := startMesh(ctx, o, rep, stderr); err != nil {
			return err
		}
	}
	for _, c := range captures {
		go c.Run(ctx, observe(rep))
		go watchDrops(ctx, c)
	}
	if o.metricsAddr != "0" {
		go serveMetrics(ctx, o.metricsAddr)
	}
	if o.pprofAddr != "0" {
		go serve(ctx, o.pprofAddr, profiles())
	}
	rep.Run(ctx)
	return nil
}

// observe turns decoded packets into observations.
func observe(rep *report.Reporter) capture.Handler {
	captured, decoded, malformed := metrics.Packets.WithLabelValues("captured"), metrics.Packets.WithLabelValues("decoded"),
		metrics.Packets.WithLabelValues("malformed")
	answers, syns := metrics.Observations.WithLabelValues("dns"), metrics.Observations.WithLabelValues("syn")
	return func(data []byte, at time.Time, dec *packets.Decoder) {
		captured.Inc()
		switch dec.Decode(data, at) {
		case packets.DNSAnswer:
			decoded.Inc()
			answers.Inc()
			rep.AddDNS(toDNS(&dec.Answer))
		case packets.SYN:
			decoded.Inc()
			syns.Inc()
			o := dec.Open
			rep.AddConnection(reportv1.Connection{Client: o.Client, Server: o.Server, Port: o.Port, Time: o.Time})
		case packets.Malformed:
			malformed.Inc()
		}
	}
}

func toDNS(a *packets.Answer) reportv1.DNSAnswer {
	return reportv1.DNSAnswer{Client: a.Client, Name: strings.ToLower(string(a.Name)), IPs: slices.Clone(a.IPs), TTL: a.TTL, Time: a.Time}
}

func scanEvery(ctx context.Context, s *conns.Scanner, every time.Duration, rep *report.Reporter) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	observed := metrics.Observations.WithLabelValues("connection")
	for {
		now := time.Now()
		st, err := s.Scan(func(c conns.Conn) {
			observed.Inc()
			rep.AddConnection(reportv1.Connection{Client: c.Client, Server: c.Server, Port: c.Port, Time: now})
		})
		if err == nil {
			metrics.ScanSeconds.Observe(st.Duration.Seconds())
			metrics.ScanSockets.Set(float64(st.Sockets))
			metrics.ScanNamespaces.Set(float64(st.Namespaces))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// startMesh watches this node's pods and scrapes its mesh proxies every interval. It
// waits at most --mesh-sync-timeout for the first list of pods: past that, reporting
// starts without the mesh source, which joins when the list arrives.
func startMesh(ctx context.Context, o options, rep *report.Reporter, stderr io.Writer) error {
	cfg, err := kubeConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("the istio source needs API access: %w", err)
	}
	tracker := &envoy.Tracker{MaxSeries: 50_000}
	sel := envoy.DefaultSelectors()
	sel.Ambient, sel.ZtunnelNamespace = o.ambient, o.ztunnelNS
	if sel.Ztunnel, err = pods.ParseSelector(o.ztunnelSel); err != nil {
		return fmt.Errorf("--ztunnel-selector: %w", err)
	}
	if sel.Waypoint, err = pods.ParseSelector(o.waypointSel); err != nil {
		return fmt.Errorf("--waypoint-selector: %w", err)
	}
	d := envoy.NewDiscovery(cfg, o.report.Node, sel, func(ip netip.Addr) { tracker.Forget(ip.String()) })
	d.Run(ctx)
	poller := &envoy.Poller{Scraper: o.scraper, Tracker: tracker, Concurrency: 8}
	wait, cancel := context.WithTimeout(ctx, o.meshSync)
	defer cancel()
	if d.WaitSynced(wait) {
		go scrapeEvery(ctx, o.scrape, d, poller, rep)
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	metrics.MeshWaiting.Set(1)
	_, _ = fmt.Fprintf(stderr, "intent-mapper agent: this node's pods not listed within %s; reporting without the mesh source until they are\n", o.meshSync)
	go func() {
		if d.WaitSynced(ctx) {
			metrics.MeshWaiting.Set(0)
			_, _ = fmt.Fprintln(stderr, "intent-mapper agent: this node's pods listed; the mesh source joins")
			scrapeEvery(ctx, o.scrape, d, poller, rep)
		}
	}()
	return nil
}

// scrapeEvery scrapes the node's mesh proxies every interval until ctx ends.
func scrapeEvery(ctx context.Context, every time.Duration, d *envoy.Discovery, poller *envoy.Poller, rep *report.Reporter) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		calls, mesh, _ := poller.Poll(ctx, d.Proxies(), time.Now())
		metrics.Observations.WithLabelValues("http").Add(float64(len(calls)))
		metrics.Observations.WithLabelValues("mesh").Add(float64(len(mesh)))
		rep.AddHTTP(calls...)
		rep.AddMesh(mesh...)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func kubeConfig(path string) (*pods.Config, error) {
	if path != "" {
		return pods.FromKubeconfig(path)
	}
	return pods.InCluster()
}

func watchDrops(ctx context.Context, c *capture.Capture) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			dropped := c.Stats().Dropped
			metrics.Packets.WithLabelValues("kernel-dropped").Add(float64(dropped - last))
			last = dropped
		}
	}
}

func serveMetrics(ctx context.Context, addr string) {
	serve(ctx, addr, promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
}

func serve(ctx context.Context, addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	_ = srv.ListenAndServe()
}

// profiles serves Go's runtime profiles on their usual paths.
func profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
