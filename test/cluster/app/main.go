// Command app is the cluster tier's scenario workload, one static binary in one image:
//
//	app run      serves on $LISTEN (when set) and makes the calls in $CALLS, every
//	             $EVERY, $ROUNDS times (0: until stopped), through $PROXY when set,
//	             logging each call's successes and failures every $TALLY rounds;
//	app probe HOST:PORT  one TCP call, as run makes them: exit 0 when answered;
//	app sidecar  a mesh sidecar: proxies the app's outbound HTTP (127.0.0.1:15001) and its
//	             inbound port ($INBOUND=PORT:APPPORT), counting requests as Istio's
//	             proxies do, and serves them on :15020/stats/prometheus.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	role := "run"
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	var err error
	switch role {
	case "run":
		err = run(ctx)
	case "sidecar":
		err = sidecar(ctx)
	case "probe":
		err = probe(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown role %q: run or sidecar", role)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// Call is one server the app calls each round: a TCP connection, or HTTP requests.
type Call struct {
	Host string    `json:"host"`
	Port int       `json:"port"`
	HTTP []Request `json:"http,omitempty"`
}

// Request is one HTTP request of a call.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

func run(ctx context.Context) error {
	var calls []Call
	if raw := os.Getenv("CALLS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &calls); err != nil {
			return fmt.Errorf("CALLS: %w", err)
		}
	}
	every, err := time.ParseDuration(envOr("EVERY", "2s"))
	if err != nil {
		return fmt.Errorf("EVERY: %w", err)
	}
	rounds, err := strconv.Atoi(envOr("ROUNDS", "0"))
	if err != nil {
		return fmt.Errorf("ROUNDS: %w", err)
	}
	tallyEvery, err := strconv.Atoi(envOr("TALLY", "5"))
	if err != nil || tallyEvery < 1 {
		return fmt.Errorf("TALLY %q: want a number of rounds, 1 or more", os.Getenv("TALLY"))
	}
	if addr := os.Getenv("LISTEN"); addr != "" {
		srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(answer), ReadHeaderTimeout: 5 * time.Second}
		go func() { log.Print(srv.ListenAndServe()) }()
		defer func() { _ = srv.Close() }()
	}
	client := httpClient(os.Getenv("PROXY"))
	counts, answered := make([]tally, len(calls)), make([]bool, len(calls))
	for round := 1; rounds == 0 || round <= rounds; round++ {
		for i, c := range calls {
			err := call(ctx, client, c)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				// A new Service answers "no route" until kube-proxy programs it: say so
				// and try on the next round.
				log.Printf("call %s:%d: %v", c.Host, c.Port, err)
				counts[i].failed++
			default:
				if counts[i].ok == 0 && !answered[i] {
					// A NetworkPolicy enforcer may allow a new pod's calls only after it
					// started: the log says from when on they went through.
					log.Printf("first answer from %s:%d", c.Host, c.Port)
					answered[i] = true
				}
				counts[i].ok++
			}
		}
		if len(calls) > 0 && (round%tallyEvery == 0 || round == rounds) {
			logTally(calls, counts)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
	if len(calls) > 0 && os.Getenv("LISTEN") == "" {
		return nil // a Job's work is done
	}
	<-ctx.Done()
	return nil
}

// tally counts a call's outcomes between two log lines: the log then says which calls
// succeeded after a given time.
type tally struct{ ok, failed int }

// logTally logs "tally HOST:PORT ok=N failed=N, ..." and starts the counts again.
func logTally(calls []Call, counts []tally) {
	parts := make([]string, len(calls))
	for i, c := range calls {
		parts[i] = fmt.Sprintf("%s:%d ok=%d failed=%d", c.Host, c.Port, counts[i].ok, counts[i].failed)
		counts[i] = tally{}
	}
	log.Printf("tally %s", strings.Join(parts, ", "))
}

// probe makes one call to args[0] (HOST:PORT), as run does, for a test to learn from
// inside a pod whether the network lets that call through.
func probe(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: app probe HOST:PORT")
	}
	host, port, err := net.SplitHostPort(args[0])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q: %w", port, err)
	}
	if err := call(ctx, nil, Call{Host: host, Port: n}); err != nil {
		return err
	}
	fmt.Printf("%s answered\n", args[0])
	return nil
}

func answer(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	_, _ = io.WriteString(w, "ok\n")
}

func httpClient(proxy string) *http.Client {
	tr := freshTransport()
	if proxy != "" {
		u := &url.URL{Scheme: schemeHTTP, Host: proxy}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// freshTransport opens a connection per request: a call made after a NetworkPolicy
// changed then proves that the policy lets new connections through, where a kept-alive
// one would pass as established.
func freshTransport() *http.Transport {
	return &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
}

func call(ctx context.Context, client *http.Client, c Call) error {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	if len(c.HTTP) == 0 {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, io.LimitReader(conn, 1<<10))
		return err
	}
	for _, r := range c.HTTP {
		req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.Path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s", r.Method, r.Path, resp.Status)
		}
	}
	return nil
}

func envOr(name, byDefault string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return byDefault
}

// peerHeader carries a sidecar's workload to its peer, as Istio's metadata exchange
// does, so each side can name the other in its counters.
const peerHeader = "X-Scenario-Peer"

const (
	schemeHTTP = "http"
	// unknown is Istio's word for a peer it cannot name.
	unknown = "unknown"
)

// identity is a workload as Istio names it.
type identity struct{ workload, namespace string }

func (i identity) String() string { return i.namespace + "/" + i.workload }

func parseIdentity(s string) identity {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return identity{workload: unknown, namespace: unknown}
	}
	return identity{workload: name, namespace: ns}
}

func sidecar(ctx context.Context) error {
	self := identity{workload: os.Getenv("WORKLOAD"), namespace: os.Getenv("NAMESPACE")}
	if self.workload == "" || self.namespace == "" {
		return fmt.Errorf("WORKLOAD and NAMESPACE are required")
	}
	stats := &counters{values: map[string]float64{}}
	servers := []*http.Server{
		{Addr: ":15020", Handler: stats},
		{Addr: "127.0.0.1:15001", Handler: outbound(self, stats)},
	}
	if in := os.Getenv("INBOUND"); in != "" {
		port, appPort, ok := strings.Cut(in, ":")
		if !ok {
			return fmt.Errorf("INBOUND %q: want PORT:APPPORT", in)
		}
		servers = append(servers, &http.Server{Addr: ":" + port, Handler: inbound(self, "127.0.0.1:"+appPort, stats)})
	}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		s.ReadHeaderTimeout = 5 * time.Second
		go func() { errs <- s.ListenAndServe() }()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	for _, s := range servers {
		_ = s.Close()
	}
	return nil
}

// outbound proxies the app's requests (the app names the sidecar as its HTTP proxy)
// and counts them as the source reporter.
func outbound(self identity, stats *counters) http.Handler {
	rp := &httputil.ReverseProxy{
		Transport: freshTransport(),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = schemeHTTP, pr.In.Host
			pr.Out.Header.Set(peerHeader, self.String())
		},
		ModifyResponse: func(resp *http.Response) error {
			peer := parseIdentity(resp.Header.Get(peerHeader))
			host, _, _ := net.SplitHostPort(resp.Request.URL.Host)
			stats.add(labels("source", self, peer, host, resp.Request.Method, resp.Request.URL.Path, resp.StatusCode))
			return nil
		},
	}
	return rp
}

// inbound proxies requests to the app and counts them as the destination reporter.
func inbound(self identity, app string, stats *counters) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = schemeHTTP, app
		},
		ModifyResponse: func(resp *http.Response) error {
			in := resp.Request
			peer := parseIdentity(in.Header.Get(peerHeader))
			host, _, err := net.SplitHostPort(in.Host)
			if err != nil {
				host = in.Host
			}
			resp.Header.Set(peerHeader, self.String())
			stats.add(labels("destination", peer, self, host, in.Method, in.URL.Path, resp.StatusCode))
			return nil
		},
	}
	return rp
}

// labels are istio_requests_total's labels as Istio's proxies write them (with the
// request_method and request_path labels a telemetry configuration adds).
func labels(reporter string, src, dst identity, service, method, path string, code int) string {
	if !strings.Contains(service, ".") {
		service += "." + dst.namespace + ".svc.cluster.local"
	}
	name, _, _ := strings.Cut(service, ".")
	policy := "mutual_tls"
	if src.workload == unknown || dst.workload == unknown {
		policy = "none"
	}
	return fmt.Sprintf(`reporter=%q,source_workload=%q,source_workload_namespace=%q,source_principal="spiffe://cluster.local/ns/%s/sa/default",source_app=%q,source_canonical_service=%q,destination_workload=%q,destination_workload_namespace=%q,destination_service=%q,destination_service_name=%q,destination_service_namespace=%q,request_protocol="http",response_code="%d",response_flags="-",connection_security_policy=%q,request_method=%q,request_path=%q`,
		reporter, src.workload, src.namespace, src.namespace, src.workload, src.workload, dst.workload, dst.namespace, service, name, dst.namespace, code, policy, method, path)
}

// counters is a sidecar's istio_requests_total page.
type counters struct {
	mu     sync.Mutex
	values map[string]float64
}

func (c *counters) add(labels string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[labels]++
}

func (c *counters) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = io.WriteString(w, "# HELP istio_requests_total Total requests.\n# TYPE istio_requests_total counter\n")
	for l, v := range c.values {
		_, _ = fmt.Fprintf(w, "istio_requests_total{%s} %g\n", l, v)
	}
}
