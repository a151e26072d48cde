package system

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/agent/envoy"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// One node's load on the agent (issue 17): DNS answers per second on the interface it
// captures, connections in network namespaces it finds through /proc, sidecar pages.
const (
	loadNamespace     = "load"
	netnsCount        = 50
	connsPerNetns     = 200
	loadServers       = 10
	serverPort        = 8080
	sidecarCount      = 100
	dnsAnswersPerSec  = 1000
	dnsServerAddr     = "127.77.0.53:53"
	agentScrapeEvery  = 15 * time.Second // the agent's defaults
	agentReportEvery  = 10 * time.Second
	holderEnv         = "INTENT_MAPPER_HOLD_CONNECTIONS"
	sidecarLabel      = "security.istio.io/tlsMode"
	rssTargetMiB      = 50
	cpuTargetPercent  = 5
	defaultWindowSecs = 60
)

// Pod IPs are loopback addresses, as the e2e harness gives its pods; inside each
// namespace the test makes, its own loopback carries the client's and servers' IPs.
func loadClientIP(i int) string { return fmt.Sprintf("127.77.1.%d", i+1) }
func loadServerIP(j int) string { return fmt.Sprintf("127.77.2.%d", j+1) }
func sidecarIP(k int) string    { return fmt.Sprintf("127.77.3.%d", k+1) }

// TestMain lets the test binary hold a namespace's connections when started in it.
func TestMain(m *testing.M) {
	if os.Getenv(holderEnv) != "" {
		os.Exit(holdConnections())
	}
	os.Exit(m.Run())
}

// TestSystemAgent runs the agent binary as a process under one node's load, against
// a real API server and the manager, and measures the process.
func TestSystemAgent(t *testing.T) {
	if os.Getenv("INTENT_MAPPER_SYSTEM") == "" {
		t.Skip("system runs take minutes and run with make bench-system")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and packet capture")
	}
	ctx := context.Background()
	t.Logf("staging %d network namespaces with %d connections each", netnsCount, connsPerNetns)
	childEhash := size("SYSTEM_AGENT_CHILD_EHASH", 0) // the node tuning docs/performance.md describes
	stageNamespaces(t, childEhash)
	agentEnv := strings.Fields(os.Getenv("SYSTEM_AGENT_ENV")) // GOGC=50 GOMEMLIMIT=40MiB, say
	agentScanEvery := 30 * time.Second                        // the agent's default; SYSTEM_AGENT_SCAN_SECONDS tries another
	if secs := size("SYSTEM_AGENT_SCAN_SECONDS", 0); secs > 0 {
		agentScanEvery = time.Duration(secs) * time.Second
	}
	agentMetrics, agentArgs := freeAddr(t), []string{}
	profiles := os.Getenv("SYSTEM_AGENT_PROFILE") != "" // costs the agent some CPU: off for the figures
	if profiles {
		a := freeAddr(t)
		agentArgs = append(agentArgs, "--pprof-bind-address", a)
	}
	scrapeFilter := os.Getenv("SYSTEM_AGENT_SCRAPE_FILTER") != "off" // off measures whole pages, as before Istio 1.24
	if !scrapeFilter {
		agentArgs = append(agentArgs, "--scrape-filter=false")
	}
	dir := t.TempDir()
	t.Cleanup(func() { // before dir goes: what the agent and the manager said, when the run failed
		for _, name := range []string{"agent.log", "manager.log"} {
			if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil && t.Failed() {
				t.Logf("%s, last 4 KiB:\n%s", name, raw[max(0, len(raw)-4096):])
			}
		}
	})
	sys, err := scenario.StartSystem(ctx, scenario.SystemOptions{
		Binary: buildBinary(t), AgentBinary: buildAgent(t), Assets: assets(), CRDs: crdDir(), Dir: dir, Capture: true, ScrapePort: 15020,
		AgentEnv: agentEnv,
		AgentArgs: append([]string{"--report-interval", agentReportEvery.String(), "--scan-interval", agentScanEvery.String(),
			"--scrape-interval", agentScrapeEvery.String(), "--metrics-bind-address", agentMetrics}, agentArgs...),
	})
	if sys != nil {
		t.Cleanup(sys.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := stageLoadPods(ctx, sys.Client); err != nil {
		t.Fatal(err)
	}
	pageBytes, filteredBytes := serveSidecars(t)
	dns := startDNSLoad(t)
	if err := sys.StartAgent(ctx); err != nil {
		t.Fatal(err)
	}
	a := &agentProbe{pid: sys.AgentPID(), metrics: "http://" + agentMetrics + "/metrics"}
	t.Log("waiting for the agent's first scan and scrape round")
	a.warmUp(t)
	window := time.Duration(size("SYSTEM_AGENT_SECONDS", defaultWindowSecs)) * time.Second
	t.Logf("measuring the agent (pid %d) for %v", a.pid, window)
	if profiles {
		cpuProfile := make(chan struct{})
		defer func() { <-cpuProfile }()
		go func() { // ends within the window
			defer close(cpuProfile)
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", agentArgs[1], int(window.Seconds())-5)
			if err := fetchTo(url, "../../bench/agent-cpu.pprof"); err != nil {
				t.Log(err)
			}
		}()
	}
	m := a.measure(t, window, dns)
	if profiles {
		saveProfiles(t, "http://"+agentArgs[1])
	}
	m["load"] = map[string]any{"dnsAnswersPerSecondTarget": dnsAnswersPerSec, "networkNamespaces": netnsCount,
		"connections": netnsCount * connsPerNetns, "sidecarPages": sidecarCount, "pageBytes": pageBytes, "pageSeries": pageSeries,
		"scrapeFilter": scrapeFilter, "filteredPageBytes": filteredBytes}
	m["tuning"] = map[string]any{"agentEnv": agentEnv, "tcpChildEhashEntries": childEhash}
	m["intervals"] = map[string]string{"scan": agentScanEvery.String(), "scrape": agentScrapeEvery.String(), "report": agentReportEvery.String()}
	m["targets"] = map[string]float64{"rssMiB": rssTargetMiB, "cpuPercentOfOneCore": cpuTargetPercent}
	waitReported(t, sys.Client)
	t.Logf("agent: peak %.1f MiB, steady %.1f MiB RSS, %.2f%% of a core (targets %d MiB, %d%%); load average %s",
		m["rssPeakMiB"], m["rssSteadyMiB"], m["cpuPercentOfOneCore"], rssTargetMiB, cpuTargetPercent, m["loadAverage"])
	saveResults(t, map[string]any{"agent": m})
}

// stageNamespaces makes the namespaces, each with a process holding its connections,
// as a pod's sandbox holds its network namespace; all go away when the test ends.
// childEhash > 0 gives each its own TCP hash table of that many buckets
// (net.ipv4.tcp_child_ehash_entries, read when a namespace is made; restored after).
func stageNamespaces(t *testing.T, childEhash int) {
	if childEhash > 0 {
		const sysctl = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
		old, err := os.ReadFile(sysctl)
		if err != nil {
			t.Fatalf("this kernel has no per-namespace TCP hash tables (6.1 and later): %v", err)
		}
		if err := os.WriteFile(sysctl, []byte(strconv.Itoa(childEhash)), 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = os.WriteFile(sysctl, old, 0o644) }()
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	servers := make([]string, loadServers)
	for j := range servers {
		servers[j] = loadServerIP(j)
	}
	prefix := fmt.Sprintf("imagent-%d-", os.Getpid())
	for i := range netnsCount {
		name := prefix + strconv.Itoa(i)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
		for _, args := range [][]string{{"netns", "add", name}, {"-n", name, "link", "set", "lo", "up"}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
		cmd := exec.Command("ip", "netns", "exec", name, self)
		cmd.Env = append(os.Environ(), holderEnv+"="+loadClientIP(i)+"/"+strings.Join(servers, ","))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("namespace %s: holder said %q: %v", name, line, err)
		}
	}
}

// holdConnections runs in a namespace: it listens on the servers' IPs, opens
// connsPerNetns connections to them from the client's IP, says ready, and holds them
// until its standard input closes.
func holdConnections() int {
	from, list, _ := strings.Cut(os.Getenv(holderEnv), "/")
	servers := strings.Split(list, ",")
	var held []net.Conn
	accepted := make(chan net.Conn, connsPerNetns)
	for _, ip := range servers {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(serverPort)))
		if err != nil {
			_, _ = fmt.Fprintln(os.Stderr, "holder:", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	for n := range connsPerNetns {
		c, err := d.Dial("tcp", net.JoinHostPort(servers[n%len(servers)], strconv.Itoa(serverPort)))
		if err != nil {
			_, _ = fmt.Fprintln(os.Stderr, "holder:", err)
			return 1
		}
		held = append(held, c, <-accepted)
	}
	_, _ = fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		_ = c.Close()
	}
	return 0
}

// stageLoadPods registers the pods behind the load, running on the agent's node: a
// client per namespace, the servers they call, and the sidecars' pods.
func stageLoadPods(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loadNamespace}}); err != nil {
		return err
	}
	for i := range netnsCount {
		if err := stagePod(ctx, c, fmt.Sprintf("load-%d", i), loadClientIP(i), nil); err != nil {
			return err
		}
	}
	for j := range loadServers {
		if err := stagePod(ctx, c, fmt.Sprintf("server-%d", j), loadServerIP(j), nil); err != nil {
			return err
		}
	}
	for k := range sidecarCount {
		if err := stagePod(ctx, c, fmt.Sprintf("sidecar-%d", k), sidecarIP(k), map[string]string{sidecarLabel: "istio"}); err != nil {
			return err
		}
	}
	return nil
}

func stagePod(ctx context.Context, c client.Client, name, ip string, labels map[string]string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: loadNamespace, Labels: labels},
		Spec: corev1.PodSpec{NodeName: scenario.Node, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	return c.Status().Update(ctx, pod)
}

// waitReported waits until the manager wrote every namespace's client with a call to
// each server: the agent's scans reached it.
func waitReported(t *testing.T, c client.Client) {
	var missing []string
	for range 60 {
		missing = missing[:0]
		for i := range netnsCount {
			di := &discoveryv1alpha1.DiscoveredIntents{}
			key := client.ObjectKey{Namespace: loadNamespace, Name: fmt.Sprintf("load-%d", i)}
			if err := c.Get(context.Background(), key, di); err != nil || len(di.Status.Calls) < loadServers {
				missing = append(missing, key.Name)
			}
		}
		if len(missing) == 0 {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Errorf("the manager never wrote every server call of %d clients: %v", len(missing), missing)
}

// agentProbe reads the agent process: its metrics page and /proc.
type agentProbe struct {
	pid     int
	metrics string
}

func (a *agentProbe) read(t *testing.T) map[string]*dto.MetricFamily {
	return readMetrics(t, a.metrics)
}

// warmUp waits until a scan has read every namespace and a round of pages was scraped.
func (a *agentProbe) warmUp(t *testing.T) {
	var last string
	for range 120 {
		fams, err := tryMetrics(a.metrics)
		if err == nil && counter(fams, "intentmapper_agent_scan_namespaces") > netnsCount &&
			counter(fams, "intentmapper_agent_scraped_pages_total") >= sidecarCount {
			return
		}
		last = fmt.Sprintf("namespaces %v, pages %v, mesh waiting %v, pod watch errors %v (metrics: %v)",
			counter(fams, "intentmapper_agent_scan_namespaces"), counter(fams, "intentmapper_agent_scraped_pages_total"),
			counter(fams, "intentmapper_agent_mesh_waiting"), counter(fams, "intentmapper_agent_pod_watch_errors_total"), err)
		time.Sleep(time.Second)
	}
	t.Fatal("the agent never scanned every namespace and scraped every sidecar within two minutes; last: " + last)
}

// measure samples the process over window, then checks from the agent's own counters
// that the load was there to measure.
func (a *agentProbe) measure(t *testing.T, window time.Duration, dns *dnsLoad) map[string]any {
	load0 := loadAverage()
	before, served0 := a.read(t), dns.answers.Load()
	start, cpu0 := time.Now(), readProcess(a.pid).cpuSeconds
	var rss, anon []float64
	for time.Since(start) < window {
		time.Sleep(5 * time.Second)
		u := readProcess(a.pid)
		rss, anon = append(rss, u.rssMiB), append(anon, u.anonMiB)
		t.Logf("%3.0fs: agent RSS %.1f MiB (%.1f MiB not from files)", time.Since(start).Seconds(), u.rssMiB, u.anonMiB)
	}
	end := readProcess(a.pid)
	elapsed := time.Since(start)
	after, served := a.read(t), float64(dns.answers.Load()-served0)
	delta := func(name, label, value string) float64 {
		return labelled(after, name, label, value) - labelled(before, name, label, value)
	}
	slices.Sort(rss)
	slices.Sort(anon)
	counted := map[string]float64{
		"dnsAnswersServed":        served,
		"dnsAnswersDecoded":       delta("intentmapper_agent_observations_total", "kind", "dns"),
		"packetsKernelDropped":    delta("intentmapper_agent_packets_total", "outcome", "kernel-dropped"),
		"scans":                   histogramCount(after, "intentmapper_agent_scan_duration_seconds") - histogramCount(before, "intentmapper_agent_scan_duration_seconds"),
		"socketsLastScan":         counter(after, "intentmapper_agent_scan_sockets"),
		"namespacesLastScan":      counter(after, "intentmapper_agent_scan_namespaces"),
		"connectionObservations":  delta("intentmapper_agent_observations_total", "kind", "connection"),
		"pagesScraped":            delta("intentmapper_agent_scraped_pages_total", "", ""),
		"scrapeErrors":            delta("intentmapper_agent_scrape_errors_total", "", ""),
		"pageBytesRead":           delta("intentmapper_agent_scraped_bytes_total", "", ""),
		"httpObservations":        delta("intentmapper_agent_observations_total", "kind", "http"),
		"reportsSent":             delta("intentmapper_agent_reports_total", "result", "sent"),
		"observationsDropped":     delta("intentmapper_agent_dropped_observations_total", "", ""),
		"agentGoHeapMiBAfter":     counter(after, "go_memstats_heap_inuse_bytes") / (1 << 20),
		"agentGoroutinesAfter":    counter(after, "go_goroutines"),
		"dnsAnswersServedPerSec":  served / elapsed.Seconds(),
		"dnsAnswersDecodedPerSec": delta("intentmapper_agent_observations_total", "kind", "dns") / elapsed.Seconds(),
	}
	checkLoad(t, counted, elapsed)
	return map[string]any{
		"measuredAt": start.UTC().Format(time.RFC3339), "windowSeconds": elapsed.Seconds(),
		"rssPeakMiB": end.peakMiB, "rssSteadyMiB": rss[len(rss)/2], "rssMaxInWindowMiB": rss[len(rss)-1],
		"rssAnonSteadyMiB":    anon[len(anon)/2],
		"cpuPercentOfOneCore": (end.cpuSeconds - cpu0) / elapsed.Seconds() * 100,
		"loadAverage":         load0 + " / " + loadAverage(),
		"counted":             counted,
	}
}

// checkLoad fails a run that measured an agent without its load.
func checkLoad(t *testing.T, c map[string]float64, elapsed time.Duration) {
	if c["dnsAnswersServed"] < dnsAnswersPerSec*elapsed.Seconds()/2 {
		t.Errorf("only %.0f DNS answers served in %v: the load generator fell behind", c["dnsAnswersServed"], elapsed)
	}
	if c["dnsAnswersDecoded"] < 0.9*c["dnsAnswersServed"] {
		t.Errorf("the agent decoded %.0f of %.0f DNS answers", c["dnsAnswersDecoded"], c["dnsAnswersServed"])
	}
	if c["namespacesLastScan"] <= netnsCount || c["socketsLastScan"] < 2*netnsCount*connsPerNetns {
		t.Errorf("the last scan read %.0f sockets in %.0f namespaces", c["socketsLastScan"], c["namespacesLastScan"])
	}
	if c["scans"] < 1 || c["connectionObservations"] < c["scans"]*netnsCount*connsPerNetns {
		t.Errorf("%.0f connections observed in %.0f scans", c["connectionObservations"], c["scans"])
	}
	if c["pagesScraped"] < sidecarCount || c["scrapeErrors"] != 0 || c["httpObservations"] == 0 {
		t.Errorf("%.0f pages scraped, %.0f failed, %.0f HTTP observations", c["pagesScraped"], c["scrapeErrors"], c["httpObservations"])
	}
	if c["reportsSent"] < 1 {
		t.Error("no report sent")
	}
}

// saveProfiles keeps the agent's heap profile in bench/.
func saveProfiles(t *testing.T, base string) {
	if err := fetchTo(base+"/debug/pprof/heap", "../../bench/agent-heap.pprof"); err != nil {
		t.Log(err)
	}
}

func fetchTo(from, path string) error {
	resp, err := http.Get(from)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

func loadAverage() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// labelled sums a family's samples whose label has value (all of them when label is "").
func labelled(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	var v float64
	for _, m := range fams[name].GetMetric() {
		if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == label && l.GetValue() == value }) {
			continue
		}
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

func histogramCount(fams map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range fams[name].GetMetric() {
		v += float64(m.GetHistogram().GetSampleCount())
	}
	return v
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// serveSidecars serves every sidecar's page on its pod IP at :15020, as pilot-agent
// does, and returns a page's size, whole and as the agent's filter asks.
func serveSidecars(t *testing.T) (size, filtered int) {
	static := sidecarStatic()
	for k := range sidecarCount {
		sc := newSidecarPage(fmt.Sprintf("sidecar-%d", k), static)
		ln, err := net.Listen("tcp", net.JoinHostPort(sidecarIP(k), "15020"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: sc, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		size, filtered = pageSize(sc, ""), pageSize(sc, "?filter="+url.QueryEscape(envoy.EnvoyFilter))
	}
	return size, filtered
}

// pageSize is the bytes of a sidecar's page, asked with query.
func pageSize(s *sidecarPage, query string) int {
	rec := httptest.NewRecorder()
	s.served.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus"+query, nil))
	return rec.Body.Len()
}

// dnsLoad counts the answers its server sent.
type dnsLoad struct {
	answers atomic.Int64
}

// startDNSLoad answers A queries on dnsServerAddr and sends it dnsAnswersPerSec
// queries a second from the load clients' IPs, until the test ends.
func startDNSLoad(t *testing.T) *dnsLoad {
	d := &dnsLoad{}
	pc, err := net.ListenPacket("udp", dnsServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if answer := answerA(buf[:n]); answer != nil {
				if _, err := pc.WriteTo(answer, from); err == nil {
					d.answers.Add(1)
				}
			}
		}
	}()
	socks := make([]*net.UDPConn, netnsCount)
	for i := range socks {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(loadClientIP(i))}, net.UDPAddrFromAddrPort(mustAddrPort(dnsServerAddr)))
		if err != nil {
			t.Fatal(err)
		}
		socks[i] = c
		t.Cleanup(func() { _ = c.Close() })
		wg.Add(1)
		go func() { // the client reads its answers, as a resolver does
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, err := c.Read(buf); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
	}
	queries := make([][]byte, dnsAnswersPerSec)
	for i := range queries {
		queries[i] = queryA(uint16(i), fmt.Sprintf("svc-%d.%s.svc.cluster.local", i, loadNamespace))
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A node's answers go to many clients at their own times: spread evenly, not in
		// bursts (ten every 10 ms hid the cost of waking for each one).
		tick := time.NewTicker(time.Second / dnsAnswersPerSec)
		defer tick.Stop()
		start, sent := time.Now(), 0
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			// Catch up with the rate, within one second's worth when the machine stalled.
			due := int(time.Since(start).Seconds() * dnsAnswersPerSec)
			sent = max(sent, due-dnsAnswersPerSec)
			for ; sent < due; sent++ {
				_, _ = socks[sent%len(socks)].Write(queries[sent%len(queries)])
			}
		}
	}()
	return d
}
