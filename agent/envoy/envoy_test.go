package envoy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// request is one istio_requests_total series as a sidecar writes it.
type request struct {
	reporter, srcNS, src, dstNS, dst, method, path, code string
	mtls                                                 bool
	count                                                float64
}

// page writes a metrics page in Istio's text format, with the full standard label set
// and the other families a real page carries around the ones read.
func page(requests []request, tcp map[[4]string]float64) string {
	var b strings.Builder
	b.WriteString("# HELP envoy_cluster_upstream_cx_total Total connections\n# TYPE envoy_cluster_upstream_cx_total counter\n")
	b.WriteString("envoy_cluster_upstream_cx_total{envoy_cluster_name=\"outbound|80||nginx.shop.svc.cluster.local\"} 12\n")
	b.WriteString("# TYPE istio_requests_total counter\n")
	for _, r := range requests {
		policy := "none"
		if r.mtls {
			policy = "mutual_tls"
		}
		fmt.Fprintf(&b, `istio_requests_total{reporter=%q,source_workload=%q,source_workload_namespace=%q,source_principal="spiffe://cluster.local/ns/%s/sa/%s",source_app=%q,source_version="unknown",source_cluster="Kubernetes",source_canonical_service=%q,source_canonical_revision="latest",destination_workload=%q,destination_workload_namespace=%q,destination_principal="spiffe://cluster.local/ns/%s/sa/%s",destination_app=%q,destination_version="v1",destination_service="%s.%s.svc.cluster.local",destination_service_name=%q,destination_service_namespace=%q,destination_canonical_service=%q,destination_canonical_revision="v1",destination_cluster="Kubernetes",request_protocol="http",response_code=%q,grpc_response_status="",response_flags="-",connection_security_policy=%q,request_method=%q,request_path=%q} %g`+"\n",
			r.reporter, r.src, r.srcNS, r.srcNS, r.src, r.src, r.src, r.dst, r.dstNS, r.dstNS, r.dst, r.dst, r.dst, r.dstNS, r.dst, r.dstNS, r.dst, r.code, policy, r.method, r.path, r.count)
	}
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\nistio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"0.5\"} 3\n")
	if tcp != nil {
		b.WriteString("# TYPE istio_tcp_connections_opened_total counter\n")
		for k, v := range tcp {
			fmt.Fprintf(&b, `istio_tcp_connections_opened_total{reporter="destination",source_workload=%q,source_workload_namespace=%q,destination_workload=%q,destination_workload_namespace=%q,destination_service="%s.%s.svc.cluster.local",connection_security_policy="mutual_tls"} %g`+"\n", k[1], k[0], k[3], k[2], k[3], k[2], v)
		}
	}
	return b.String()
}

// proxyServer serves a page that the test changes, on ip:port.
type proxyServer struct {
	mu   sync.Mutex
	body string
}

func (p *proxyServer) set(body string) { p.mu.Lock(); p.body = body; p.mu.Unlock() }

func (p *proxyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(w, p.body)
}

func serve(t testing.TB, addr string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func poller(port int) *Poller {
	s := DefaultScraper()
	s.Port, s.FallbackPort, s.Timeout = port, 0, time.Second
	return &Poller{Scraper: s, Tracker: &Tracker{MaxSeries: 10_000}, Concurrency: 4}
}

func clientGet(n float64) request {
	return request{"source", "shop", "client", "shop", "nginx", "GET", "/client-path", "200", true, n}
}

func TestFirstScrapeIsHistoryThenGrowthIsFresh(t *testing.T) {
	p := &proxyServer{}
	addr := serve(t, "127.45.0.1:0", p)
	port := mustPort(t, addr)
	proxy := Proxy{IP: netip.MustParseAddr("127.45.0.1")}
	pl := poller(port)

	p.set(page([]request{clientGet(5), {"source", "shop", "client", "shop", "nginx", "GET", "/client-path", "503", true, 2}}, nil))
	calls, _, failed := pl.Poll(context.Background(), []Proxy{proxy}, t0)
	if len(failed) != 0 || len(calls) != 1 {
		t.Fatalf("calls %+v failed %v", calls, failed)
	}
	c := calls[0]
	if !c.History || c.Count != 7 || c.Method != "GET" || c.Path != "/client-path" || c.Source.Name != "client" || c.Destination.Name != "nginx" ||
		c.Reporter != "source" || !c.MutualTLS || c.DestinationService != "nginx.shop.svc.cluster.local" || c.Proxy != proxy.IP {
		t.Errorf("first scrape %+v: want history of 7 requests (response codes summed)", c)
	}

	calls, _, _ = pl.Poll(context.Background(), []Proxy{proxy}, t0.Add(15*time.Second))
	if len(calls) != 0 {
		t.Errorf("no growth, yet %+v", calls)
	}

	p.set(page([]request{clientGet(9), {"source", "shop", "client", "shop", "nginx", "GET", "/client-path", "503", true, 2}}, nil))
	calls, _, _ = pl.Poll(context.Background(), []Proxy{proxy}, t0.Add(30*time.Second))
	if len(calls) != 1 || calls[0].History || calls[0].Count != 4 || !calls[0].Time.Equal(t0.Add(30*time.Second)) {
		t.Errorf("growth %+v: want 4 fresh requests at the scrape time", calls)
	}

	p.set(page([]request{clientGet(3)}, nil)) // the sidecar restarted
	calls, _, _ = pl.Poll(context.Background(), []Proxy{proxy}, t0.Add(45*time.Second))
	if len(calls) != 1 || calls[0].Count != 3 || calls[0].History {
		t.Errorf("after a restart %+v: want the 3 requests since", calls)
	}
	p.set(page([]request{clientGet(4)}, nil))
	calls, _, _ = pl.Poll(context.Background(), []Proxy{proxy}, t0.Add(60*time.Second))
	if len(calls) != 1 || calls[0].Count != 1 {
		t.Errorf("the restart's value is the new baseline: %+v", calls)
	}
}

func TestABadProxyCostsOnlyItsOwnObservations(t *testing.T) {
	good, malformed := &proxyServer{}, &proxyServer{}
	port := mustPort(t, serve(t, "127.45.1.1:0", good))
	serve(t, fmt.Sprintf("127.45.1.2:%d", port), malformed)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	serve(t, fmt.Sprintf("127.45.1.3:%d", port), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	var written atomic.Int64
	serve(t, fmt.Sprintf("127.45.1.4:%d", port), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		line := strings.Repeat("x", 1023) + "\n"
		for range 50 << 10 { // a 50 MB page
			n, err := io.WriteString(w, line)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	good.set(page([]request{clientGet(1)}, nil))
	malformed.set("# TYPE istio_requests_total counter\nistio_requests_total{reporter=\"source\" 12 oops\n")

	pl := poller(port)
	pl.Scraper.MaxPage = 1 << 20
	proxies := []Proxy{{IP: netip.MustParseAddr("127.45.1.1")}, {IP: netip.MustParseAddr("127.45.1.2")}, {IP: netip.MustParseAddr("127.45.1.3")}, {IP: netip.MustParseAddr("127.45.1.4")}}
	calls, _, failed := pl.Poll(context.Background(), proxies, t0)
	if len(calls) != 1 || calls[0].Proxy != proxies[0].IP {
		t.Errorf("the good proxy's call is missing: %+v", calls)
	}
	if len(failed) != 3 {
		t.Fatalf("failed %v: want the malformed, silent and huge proxies", failed)
	}
	if !strings.Contains(failed[proxies[1].IP].Error(), "parsing") {
		t.Errorf("malformed: %v", failed[proxies[1].IP])
	}
	if reason(failed[proxies[2].IP]) != "unreachable" {
		t.Errorf("silent: %v", failed[proxies[2].IP])
	}
	if reason(failed[proxies[3].IP]) != "too-large" {
		t.Errorf("huge: %v", failed[proxies[3].IP])
	}
	time.Sleep(100 * time.Millisecond)
	if w := written.Load(); w > 8<<20 {
		t.Errorf("the scraper read %d bytes of a page it should have stopped after 1 MiB", w)
	}
}

func TestFallbackPort(t *testing.T) {
	p := &proxyServer{}
	port := mustPort(t, serve(t, "127.45.2.1:0", p))
	p.set(page([]request{clientGet(2)}, nil))
	s := DefaultScraper()
	s.Port, s.FallbackPort = freePort(t), port
	series, err := s.Scrape(context.Background(), "127.45.2.1")
	if err != nil || len(series) != 1 {
		t.Errorf("fallback scrape: %v %+v", err, series)
	}
}

func TestAmbientZtunnelAndWaypoint(t *testing.T) {
	ztunnel, waypoint := &proxyServer{}, &proxyServer{}
	port := mustPort(t, serve(t, "127.45.3.1:0", ztunnel))
	serve(t, fmt.Sprintf("127.45.3.2:%d", port), waypoint)
	ztunnel.set(page(nil, map[[4]string]float64{{"shop", "client", "shop", "db"}: 3}))
	waypoint.set(page([]request{{"waypoint", "shop", "client", "shop", "nginx", "POST", "/orders", "201", true, 2}}, nil))
	pl := poller(port)
	proxies := []Proxy{{IP: netip.MustParseAddr("127.45.3.1"), Ztunnel: true}, {IP: netip.MustParseAddr("127.45.3.2")}}
	pl.Poll(context.Background(), proxies, t0)
	ztunnel.set(page(nil, map[[4]string]float64{{"shop", "client", "shop", "db"}: 5}))
	waypoint.set(page([]request{{"waypoint", "shop", "client", "shop", "nginx", "POST", "/orders", "201", true, 3}}, nil))
	calls, mesh, failed := pl.Poll(context.Background(), proxies, t0.Add(time.Minute))
	if len(failed) != 0 || len(mesh) != 1 || len(calls) != 1 {
		t.Fatalf("calls %+v mesh %+v failed %v", calls, mesh, failed)
	}
	if m := mesh[0]; m.Source.Name != "client" || m.Destination.Name != "db" || m.Count != 2 || m.History {
		t.Errorf("ztunnel %+v", m)
	}
	if c := calls[0]; c.Reporter != "waypoint" || c.Method != "POST" || c.Path != "/orders" || c.Count != 1 {
		t.Errorf("waypoint %+v", c)
	}
}

func TestParseKeepsOnlyTheNeededFamilies(t *testing.T) {
	series, skipped, err := Parse(strings.NewReader(page([]request{clientGet(1)}, map[[4]string]float64{{"a", "b", "c", "d"}: 1})), 1<<20)
	if err != nil || len(series) != 2 || skipped != (Skipped{}) {
		t.Fatalf("%v %+v %+v", err, series, skipped)
	}
}

// FuzzParse: any page gives series or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(page([]request{clientGet(3)}, map[[4]string]float64{{"a", "b", "c", "d"}: 1}))
	f.Add("# TYPE istio_requests_total counter\nistio_requests_total{a=\"b\"} NaN\n")
	f.Add("istio_requests_total 1\nistio_requests_total 2\n")
	f.Fuzz(func(t *testing.T, body string) {
		series, _, err := Parse(strings.NewReader(body), 1<<16)
		if err == nil && len(series) > MaxSeries {
			t.Fatalf("%d series kept", len(series))
		}
	})
}

func mustPort(t testing.TB, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	_, _ = fmt.Sscan(port, &n)
	return n
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// FuzzParseAgreesWithExpfmt: where Prometheus' own parser reads a page of the two
// families, ours reads the same sums.
func FuzzParseAgreesWithExpfmt(f *testing.F) {
	f.Add(page([]request{clientGet(3), {"destination", "shop", "client", "shop", "nginx", "GET", "/a\\\"b", "200", true, 2}}, map[[4]string]float64{{"a", "b", "c", "d"}: 1}))
	f.Add("istio_requests_total{reporter=\"source\",request_path=\"/x\\\\y\\n\"} 1.5e3 1700000000000\n")
	f.Add("istio_requests_total{ reporter = \"a\" , } +Inf\nistio_requests_total 2\n")
	f.Fuzz(func(t *testing.T, body string) {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil || len(families) == 0 || strings.Contains(body, "#") || strings.Contains(body, "\r") {
			return // expfmt refuses it, or comments and types it checks and we skip
		}
		for _, line := range strings.Split(body, "\n") {
			if _, ok := wanted([]byte(line)); line != "" && !ok {
				return // a line our prefix filter leaves to other families
			}
		}
		want := map[seriesKey]float64{}
		for name, mf := range families {
			if name != RequestsTotal && name != TCPConnectionsTotal {
				return // another family: our prefix filter decides what expfmt never sees
			}
			for _, m := range mf.GetMetric() {
				var l Labels
				for _, lp := range m.GetLabel() {
					if p := l.field([]byte(lp.GetName())); p != nil {
						*p = lp.GetValue()
					}
				}
				want[seriesKey{name, l}] += m.GetUntyped().GetValue()
			}
		}
		series, _, err := Parse(strings.NewReader(body), 1<<20)
		if err != nil {
			t.Fatalf("expfmt reads it, we fail: %v", err)
		}
		got := map[seriesKey]float64{}
		for _, s := range series {
			got[seriesKey{s.Family, s.Labels}] = s.Value
		}
		if len(got) != len(want) {
			t.Fatalf("series %v, expfmt %v", got, want)
		}
		for k, v := range want {
			if g := got[k]; g != v && !(math.IsNaN(g) && math.IsNaN(v)) {
				t.Fatalf("%+v: %v, expfmt %v", k, g, v)
			}
		}
	})
}

// The tracker's series live across scrapes: one that leaves the page is forgotten, so
// its return counts whole; one that went down (a restarted proxy) counts whole too.
func TestTrackerForgetsSeriesThatLeaveThePage(t *testing.T) {
	tr := &Tracker{MaxSeries: 2}
	a := Series{Family: RequestsTotal, Labels: Labels{SourceWorkload: "a"}}
	b := Series{Family: RequestsTotal, Labels: Labels{SourceWorkload: "b"}}
	c := Series{Family: RequestsTotal, Labels: Labels{SourceWorkload: "c"}}
	at := func(s Series, v float64) Series { s.Value = v; return s }
	counts := func(ds []Delta) map[string]uint64 {
		out := map[string]uint64{}
		for _, d := range ds {
			out[d.Labels.SourceWorkload] = d.Count
		}
		return out
	}
	now := time.Now()
	tr.Observe("p", []Series{at(a, 5), at(b, 7)}, now)
	for i, step := range []struct {
		page []Series
		want map[string]uint64
	}{
		{[]Series{at(a, 6)}, map[string]uint64{"a": 1}},                              // b leaves the page
		{[]Series{at(a, 6), at(b, 9)}, map[string]uint64{"b": 9}},                    // b is back: all of it is new
		{[]Series{at(a, 2), at(b, 9)}, map[string]uint64{"a": 2}},                    // a went down: restarted
		{[]Series{at(a, 3), at(b, 10), at(c, 4)}, map[string]uint64{"a": 1, "b": 1}}, // c is beyond MaxSeries
	} {
		if got := counts(tr.Observe("p", step.page, now)); !maps.Equal(got, step.want) {
			t.Errorf("scrape %d: grew %v, want %v", i+2, got, step.want)
		}
	}
}

// TestLabelValuesShareOneStringAndStayBounded: a value seen again is the string kept
// the first time, and values that never repeat (ids in paths) do not grow the table.
func TestLabelValuesShareOneStringAndStayBounded(t *testing.T) {
	in := interner{m: map[string]string{}}
	first := in.get([]byte("/api/v1/cart"))
	if again := in.get([]byte("/api/v1/cart")); unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatal("an equal value got a string of its own")
	}
	for i := range 3 * maxInterned {
		if v := in.get(fmt.Appendf(nil, "/orders/%d", i)); v != fmt.Sprintf("/orders/%d", i) {
			t.Fatalf("value %d read back as %q", i, v)
		}
		if len(in.m) > maxInterned {
			t.Fatalf("%d values kept, over the bound %d", len(in.m), maxInterned)
		}
	}
	long := strings.Repeat("p", maxInternedValue)
	for i := range 3 * maxInternedBytes / maxInternedValue {
		in.get(fmt.Appendf(nil, "%s%d", long[:maxInternedValue-8], i))
		if in.bytes > maxInternedBytes {
			t.Fatalf("%d bytes kept, over the bound %d", in.bytes, maxInternedBytes)
		}
	}
	kept := len(in.m)
	if v := in.get([]byte(long + "/too-long")); v != long+"/too-long" || len(in.m) != kept {
		t.Fatalf("a value over %d bytes was kept (%d values, were %d)", maxInternedValue, len(in.m), kept)
	}
}
