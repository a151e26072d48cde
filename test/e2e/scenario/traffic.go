package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Traffic runs the scenario's servers, sidecar pages, DNS server and clients, all on
// loopback addresses.
type Traffic struct {
	s        *Scenario
	dnsAddr  string
	every    time.Duration
	sidecars map[string]*sidecar // by workload key
	closers  []io.Closer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	errors   []error
}

// TrafficOptions place the traffic.
type TrafficOptions struct {
	// DNSAddr is where the DNS server listens: port 53 for the agent to capture answers.
	DNSAddr string
	// ScrapePort is where each sidecar's metrics page listens on its pod IP.
	ScrapePort int
	// Every is the time between two rounds of a client's calls.
	Every time.Duration
}

// StartTraffic starts every server, then every client.
func (s *Scenario) StartTraffic(o TrafficOptions) (*Traffic, error) {
	if len(s.Outside) > 0 {
		return nil, fmt.Errorf("scenario %s has outside servers: only the cluster tier stages them", s.Name)
	}
	for _, w := range s.Workloads {
		if w.istioName == "" || (w.Port > 0 && w.ServiceIP == "") {
			return nil, fmt.Errorf("workload %s is not staged: call Stage first", w.Key())
		}
	}
	t := &Traffic{s: s, dnsAddr: o.DNSAddr, every: o.Every, sidecars: map[string]*sidecar{}}
	if err := t.serveDNS(); err != nil {
		return nil, err
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Sidecar {
			sc := &sidecar{counters: map[string]float64{}}
			t.sidecars[w.Key()] = sc
			if err := t.listenHTTP(net.JoinHostPort(w.IP, strconv.Itoa(o.ScrapePort)), sc); err != nil {
				t.Stop()
				return nil, err
			}
		}
		if w.Port > 0 {
			for _, ip := range []string{w.IP, w.ServiceIP} { // the pod, and its Service's ClusterIP
				if err := t.listenHTTP(net.JoinHostPort(ip, strconv.Itoa(w.Port)), t.server(w)); err != nil {
					t.Stop()
					return nil, err
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for _, c := range s.Calls {
		t.StartCall(ctx, c)
	}
	return t, nil
}

// StartCall starts one more client loop (the scenario can grow while it runs).
func (t *Traffic) StartCall(ctx context.Context, c Call) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.callLoop(ctx, c)
	}()
}

// Errors returns what went wrong in the clients so far.
func (t *Traffic) Errors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errors...)
}

// Stop stops the clients, then the servers.
func (t *Traffic) Stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	for _, c := range t.closers {
		_ = c.Close()
	}
}

func (t *Traffic) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errors) < 100 {
		t.errors = append(t.errors, err)
	}
}

func (t *Traffic) listenHTTP(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.closers = append(t.closers, srv)
	return nil
}

// server answers every request, counting it in the server's sidecar as Istio's
// destination reporter would.
func (t *Traffic) server(w *Workload) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		if sc := t.sidecars[w.Key()]; sc != nil {
			if from := t.byIP(r.RemoteAddr); from != nil {
				sc.count(istioLabels("destination", from, w, r.Method, r.URL.Path, from.Sidecar))
			}
		}
		_, _ = io.WriteString(rw, "ok\n")
	})
}

func (t *Traffic) byIP(remote string) *Workload {
	host, _, _ := net.SplitHostPort(remote)
	for i := range t.s.Workloads {
		if t.s.Workloads[i].IP == host {
			return &t.s.Workloads[i]
		}
	}
	return nil
}

// callLoop makes a call every round: resolve the name from the client's address,
// then connect from it, and count what the client's sidecar would.
func (t *Traffic) callLoop(ctx context.Context, c Call) {
	from, to := t.s.Workload(c.From), t.s.Workload(c.To)
	local := net.ParseIP(from.IP)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: local}}
		return d.DialContext(ctx, "udp", t.dnsAddr)
	}}
	for {
		if err := t.round(ctx, c, from, to, resolver, dialer, client); err != nil && ctx.Err() == nil {
			t.fail(fmt.Errorf("%s -> %s: %w", c.From, c.To, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(t.every):
		}
	}
}

func (t *Traffic) round(ctx context.Context, c Call, from, to *Workload, r *net.Resolver, d *net.Dialer, client *http.Client) error {
	ips, err := r.LookupHost(ctx, c.DNS)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(ips[0], strconv.Itoa(c.Port))
	if len(c.HTTP) == 0 {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		_, _ = conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<10))
		return conn.Close()
	}
	for _, req := range c.HTTP {
		r, err := http.NewRequestWithContext(ctx, req.Method, "http://"+addr+req.Path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if sc := t.sidecars[from.Key()]; sc != nil {
			sc.count(istioLabels("source", from, to, req.Method, strings.SplitN(req.Path, "?", 2)[0], to.Sidecar))
		}
	}
	return nil
}

// sidecar serves istio_requests_total as Envoy with Istio's stats does.
type sidecar struct {
	mu       sync.Mutex
	counters map[string]float64
}

func (s *sidecar) count(labels string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters[labels]++
}

func (s *sidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(w, "# HELP istio_requests_total Total requests.\n# TYPE istio_requests_total counter\n")
	for labels, v := range s.counters {
		_, _ = fmt.Fprintf(w, "istio_requests_total{%s} %g\n", labels, v)
	}
}

// istioLabels are the labels Istio's stats put on istio_requests_total, with the
// names Istio gives the staged pods (see istioWorkload).
func istioLabels(reporter string, from, to *Workload, method, path string, mtls bool) string {
	policy := "none"
	if mtls {
		policy = "mutual_tls"
	}
	return fmt.Sprintf(`reporter=%q,source_workload=%q,source_workload_namespace=%q,source_principal="spiffe://cluster.local/ns/%s/sa/default",source_app=%q,source_canonical_service=%q,destination_workload=%q,destination_workload_namespace=%q,destination_app=%q,destination_canonical_service=%q,destination_service="%s.%s.svc.cluster.local",destination_service_name=%q,destination_service_namespace=%q,request_protocol="http",response_code="200",response_flags="-",connection_security_policy=%q,request_method=%q,request_path=%q`,
		reporter, from.istioName, from.Namespace, from.Namespace, from.app, from.istioService, to.istioName, to.Namespace, to.app, to.istioService, to.Name, to.Namespace, to.Name, to.Namespace, policy, method, path)
}

// serveDNS answers A queries for the workloads' Service names with their ClusterIPs,
// as cluster DNS does, and a call's own name (an outside name, say) with the pod's IP.
func (t *Traffic) serveDNS() error {
	names := map[string]net.IP{}
	for _, w := range t.s.Workloads {
		if w.ServiceIP == "" {
			continue // serves nothing, so it has no Service
		}
		ip := net.ParseIP(w.ServiceIP)
		for _, n := range []string{w.Name + "." + w.Namespace + ".svc.cluster.local", w.Name + "." + w.Namespace + ".svc", w.Name + "." + w.Namespace} {
			names[n] = ip
		}
	}
	for _, c := range t.s.Calls {
		if name := strings.TrimSuffix(c.DNS, "."); names[name] == nil {
			names[name] = net.ParseIP(t.s.Workload(c.To).IP)
		}
	}
	pc, err := net.ListenPacket("udp", t.dnsAddr)
	if err != nil {
		return fmt.Errorf("starting the DNS server on %s: %w", t.dnsAddr, err)
	}
	t.closers = append(t.closers, pc)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if answer := dnsAnswer(buf[:n], names); answer != nil {
				_, _ = pc.WriteTo(answer, from)
			}
		}
	}()
	return nil
}

func dnsAnswer(query []byte, names map[string]net.IP) []byte {
	q := &layers.DNS{}
	if q.DecodeFromBytes(query, gopacket.NilDecodeFeedback) != nil || q.QR || len(q.Questions) != 1 {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(string(q.Questions[0].Name)), ".")
	q.QR, q.RA, q.Answers = true, true, nil
	ip, ok := names[name]
	switch {
	case !ok:
		q.ResponseCode = layers.DNSResponseCodeNXDomain
	case q.Questions[0].Type == layers.DNSTypeA:
		q.Answers = []layers.DNSResourceRecord{{Name: q.Questions[0].Name, Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: ip}}
	}
	out := gopacket.NewSerializeBuffer()
	if q.SerializeTo(out, gopacket.SerializeOptions{FixLengths: true}) != nil {
		return nil
	}
	return out.Bytes()
}
