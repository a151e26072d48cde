package envoy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intent-mapper/intent-mapper/agent/envoy/envoytest"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// requestTags are the tags Istio's stats filter puts on a request's stats.
func requestTags(r request) []envoytest.Tag {
	policy := "none"
	if r.mtls {
		policy = "mutual_tls"
	}
	return envoytest.Tags(
		"reporter", r.reporter, "source_workload", r.src, "source_workload_namespace", r.srcNS,
		"source_principal", "spiffe://cluster.local/ns/"+r.srcNS+"/sa/"+r.src, "source_app", r.src,
		"source_version", "unknown", "source_cluster", "Kubernetes",
		"destination_workload", r.dst, "destination_workload_namespace", r.dstNS,
		"destination_service", r.dst+"."+r.dstNS+".svc.cluster.local", "destination_service_name", r.dst,
		"request_protocol", "http", "response_code", r.code, "response_flags", "-",
		"connection_security_policy", policy, "request_method", r.method, "request_path", r.path,
	)
}

// sidecarStats are a sidecar's stats as Envoy holds them: per request, Istio's counter
// and histogram; Istio's TCP counters; Envoy's own stats of clusters and listeners.
func sidecarStats(requests []request) []*envoytest.Page {
	stats := make([]envoytest.Stat, 0, 3*len(requests)+3*200+1)
	for _, r := range requests {
		tags := requestTags(r)
		stats = append(stats, envoytest.Istio("istio_requests_total", tags, r.count))
		h := envoytest.Istio("istio_request_duration_milliseconds", tags, 40*r.count)
		for _, le := range []string{"1", "10", "100", "1000", "+Inf"} {
			h.Buckets = append(h.Buckets, envoytest.Bucket{Le: le, Count: uint64(r.count)})
		}
		stats = append(stats, h)
		stats = append(stats, envoytest.Istio("istio_tcp_connections_opened_total", tags[:11], r.count))
	}
	for i := range 200 {
		cluster := fmt.Sprintf("outbound|80||svc-%d.shop.svc.cluster.local", i)
		for _, s := range []string{"upstream_rq_total", "upstream_cx_total", "upstream_rq_time"} {
			stats = append(stats, envoytest.Cluster(cluster, s, float64(i)))
		}
	}
	stats = append(stats, envoytest.Stat{Name: "http.inbound_0.0.0.0_8080.downstream_rq_total", Extracted: "http.downstream_rq_total",
		Tags: envoytest.Tags("http_conn_manager_prefix", "inbound_0.0.0.0_8080"), Value: 9})
	return []*envoytest.Page{envoytest.NewPage(stats)}
}

// sidecar is a sidecar whose requests the test sets; it records the queries it gets.
type sidecar struct {
	envoytest.Sidecar
	mu       sync.Mutex
	requests []request
	queries  []string
}

func newSidecar() *sidecar {
	s := &sidecar{}
	s.Envoy = func() []*envoytest.Page {
		s.mu.Lock()
		defer s.mu.Unlock()
		return sidecarStats(s.requests)
	}
	return s
}

func (s *sidecar) set(r ...request) { s.mu.Lock(); s.requests = r; s.mu.Unlock() }

func (s *sidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.queries = append(s.queries, r.URL.RawQuery)
	s.mu.Unlock()
	s.Sidecar.ServeHTTP(w, r)
}

// pollTwice scrapes the sidecar at addr, then again after its requests grew, and
// returns the calls of both polls (sorted) and the page bytes read.
func pollTwice(t *testing.T, s *sidecar, addr string, filter bool) ([]reportv1.HTTPCall, float64) {
	t.Helper()
	p := poller(mustPort(t, addr))
	p.Scraper.Filter = filter
	proxies := []Proxy{{IP: netip.MustParseAddrPort(addr).Addr()}}
	before := testutil.ToFloat64(bytesScraped)
	var all []reportv1.HTTPCall
	for round := range 2 {
		s.set(clientGet(float64(3+4*round)), request{"destination", "web", "front", "shop", "nginx", "POST", "/orders", "201", true, float64(1 + round)})
		calls, _, failed := p.Poll(context.Background(), proxies, t0.Add(time.Duration(round)*15*time.Second))
		if len(failed) != 0 {
			t.Fatalf("failed %v", failed)
		}
		all = append(all, calls...)
	}
	sort.Slice(all, func(i, j int) bool { return fmt.Sprint(all[i]) < fmt.Sprint(all[j]) })
	return all, testutil.ToFloat64(bytesScraped) - before
}

// The filter keeps what the agent reads of a sidecar's page: the same calls come in
// far fewer bytes.
func TestTheFilterFindsTheSameCallsInFewerBytes(t *testing.T) {
	s := newSidecar()
	addr := serve(t, "127.45.6.1:0", s)
	whole, wholeBytes := pollTwice(t, s, addr, false)
	filtered, filteredBytes := pollTwice(t, s, addr, true)
	if len(whole) != 4 || !reflect.DeepEqual(whole, filtered) {
		t.Fatalf("calls of the whole page %+v\nwith the filter %+v", whole, filtered)
	}
	if filteredBytes <= 0 || filteredBytes*5 > wholeBytes {
		t.Errorf("read %.0f bytes with the filter, %.0f without: want a fifth at most", filteredBytes, wholeBytes)
	}
	if s.queries[0] != "" || s.queries[len(s.queries)-1] != "filter=istio_requests_total" {
		t.Errorf("queries %q", s.queries)
	}
}

// pilot-agent before Istio 1.24 does not pass the query on: the whole page comes, and
// reads the same.
func TestAProxyThatIgnoresTheFilterGivesTheWholePage(t *testing.T) {
	s := newSidecar()
	s.IgnoreQuery = true
	addr := serve(t, "127.45.6.2:0", s)
	whole, wholeBytes := pollTwice(t, s, addr, false)
	filtered, filteredBytes := pollTwice(t, s, addr, true)
	if len(whole) != 4 || !reflect.DeepEqual(whole, filtered) || filteredBytes != wholeBytes {
		t.Errorf("whole page: %.0f bytes, %+v\nasked with the filter: %.0f bytes, %+v", wholeBytes, whole, filteredBytes, filtered)
	}
}

// pilot-agent appends the application's own metrics whole, whatever the query: they
// cost their bytes, and the calls are still all found.
func TestTheAppsMetricsAreNotFiltered(t *testing.T) {
	s := newSidecar()
	s.App = []byte(appended(200 << 10))
	addr := serve(t, "127.45.6.3:0", s)
	whole, wholeBytes := pollTwice(t, s, addr, false)
	filtered, filteredBytes := pollTwice(t, s, addr, true)
	if len(whole) != 4 || !reflect.DeepEqual(whole, filtered) {
		t.Fatalf("calls of the whole page %+v\nwith the filter %+v", whole, filtered)
	}
	if app := float64(2 * len(s.App)); filteredBytes < app || filteredBytes >= wholeBytes {
		t.Errorf("read %.0f bytes with the filter, %.0f without, of which %.0f the app's", filteredBytes, wholeBytes, app)
	}
}

// ztunnel is not Envoy: it is asked for its whole page, while a waypoint beside it is
// asked for the requests alone.
func TestZtunnelIsAskedForItsWholePage(t *testing.T) {
	var mu sync.Mutex
	queries := map[string]string{}
	record := func(name string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			queries[name] = r.URL.RawQuery
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	ztunnel, waypoint := &proxyServer{}, newSidecar()
	ztunnel.set(page(nil, map[[4]string]float64{{"shop", "client", "shop", "db"}: 3}))
	waypoint.set(request{"waypoint", "shop", "client", "shop", "nginx", "POST", "/orders", "201", true, 2})
	port := mustPort(t, serve(t, "127.45.6.4:0", record("ztunnel", ztunnel)))
	serve(t, fmt.Sprintf("127.45.6.5:%d", port), record("waypoint", waypoint))
	calls, mesh, failed := poller(port).Poll(context.Background(),
		[]Proxy{{IP: netip.MustParseAddr("127.45.6.4"), Ztunnel: true}, {IP: netip.MustParseAddr("127.45.6.5")}}, t0)
	if len(failed) != 0 || len(mesh) != 1 || len(calls) != 1 || calls[0].Path != "/orders" {
		t.Fatalf("calls %+v mesh %+v failed %v", calls, mesh, failed)
	}
	if queries["ztunnel"] != "" || queries["waypoint"] != "filter=istio_requests_total" {
		t.Errorf("queries %q", queries)
	}
}

// A query in --scrape-path is kept beside the filter.
func TestTheFilterJoinsAQueryInThePath(t *testing.T) {
	s := newSidecar()
	s.set(clientGet(1))
	addr := serve(t, "127.45.6.6:0", s)
	p := poller(mustPort(t, addr))
	p.Scraper.Path = "/stats/prometheus?usedonly"
	calls, _, failed := p.Poll(context.Background(), []Proxy{{IP: netip.MustParseAddr("127.45.6.6")}}, t0)
	if len(failed) != 0 || len(calls) != 1 || s.queries[0] != "usedonly&filter=istio_requests_total" {
		t.Errorf("calls %+v, failed %v, queries %q", calls, failed, s.queries)
	}
}

// Envoy matches the filter anywhere in a stat's internal name: the family's name is
// in the native stats filter's names and in the Wasm plugin's, and in no other family's.
func TestTheFilterMatchesEveryFormOfTheFamily(t *testing.T) {
	re := regexp.MustCompile(EnvoyFilter)
	tags := requestTags(clientGet(1))
	for name, want := range map[string]bool{
		envoytest.Istio("istio_requests_total", tags, 1).Name:                                                            true,
		"wasmcustom.reporter=.=source;.;source_workload=.=client;.;request_path=.=/a;.;istio_requests_total":             true,
		"reporter=.=destination;.;destination_service=.=nginx.shop.svc.cluster.local;.;istio_requests_total":             true,
		envoytest.Istio("istio_request_duration_milliseconds", tags, 1).Name:                                             false,
		envoytest.Istio("istio_tcp_connections_opened_total", tags, 1).Name:                                              false,
		envoytest.Cluster("outbound|80||nginx.shop.svc.cluster.local", "upstream_rq_total", 1).Name:                      false,
		"wasmcustom.reporter=.=source;.;source_workload=.=client;.;istio_request_bytes":                                  false,
		strings.TrimSuffix(envoytest.Istio("istio_requests_total", nil, 1).Name, "istio_requests_total") + "istio_build": false,
	} {
		if re.MatchString(name) != want {
			t.Errorf("%q: kept %v, want %v", name, !want, want)
		}
	}
}

// benchmarkScrape scrapes a sidecar of 250 request series over loopback, as pilot-agent
// and Envoy serve it.
func benchmarkScrape(b *testing.B, filter bool) {
	requests := make([]request, 0, pageRequests)
	for i := range pageRequests {
		requests = append(requests, request{"source", "shop", "client", "shop", fmt.Sprintf("svc-%d", i%50), "GET", fmt.Sprintf("/api/v1/items-%d", i), "200", true, float64(i)})
	}
	pages := sidecarStats(requests)
	addr := serve(b, "127.0.0.1:0", &envoytest.Sidecar{Envoy: func() []*envoytest.Page { return pages }})
	s := DefaultScraper()
	s.Port, s.FallbackPort, s.Filter = mustPort(b, addr), 0, filter
	before := testutil.ToFloat64(bytesScraped)
	b.ReportAllocs()
	for b.Loop() {
		series, err := s.ScrapeEnvoy(context.Background(), "127.0.0.1")
		n := 0
		for _, x := range series {
			if x.Family == RequestsTotal {
				n++
			}
		}
		if err != nil || n != pageRequests {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric((testutil.ToFloat64(bytesScraped)-before)/float64(b.N), "page-bytes/op")
}

// BenchmarkScrapeFiltered: a sidecar asked for the requests alone.
func BenchmarkScrapeFiltered(b *testing.B) { benchmarkScrape(b, true) }

// BenchmarkScrapeFilteredBaseline: the same sidecar's whole page.
func BenchmarkScrapeFilteredBaseline(b *testing.B) { benchmarkScrape(b, false) }
