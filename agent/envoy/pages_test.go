package envoy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// appended is what pilot-agent appends to the merged page from the application's
// own metrics endpoint; a label value of one of them may be huge.
func appended(labelBytes int) string {
	return "# TYPE app_cache_entries gauge\n" +
		fmt.Sprintf("app_cache_entries{key=%q} 1\n", strings.Repeat("k", labelBytes)) +
		"app_cache_entries{key=\"small\"} 2\n"
}

// One application line over 64 KiB costs that line, not the proxy's observations.
func TestAnOverlongLineCostsOnlyItself(t *testing.T) {
	proxy := &proxyServer{}
	port := mustPort(t, serve(t, "127.0.0.1:0", proxy))
	p := poller(port)
	before := testutil.ToFloat64(linesSkipped.WithLabelValues("overlong"))
	body := page([]request{clientGet(1)}, nil)
	proxy.set(appended(maxLine+100) + body)
	_, _, failed := p.Poll(context.Background(), []Proxy{{IP: netip.MustParseAddr("127.0.0.1")}}, t0)
	if len(failed) != 0 {
		t.Fatalf("the scrape failed: %v", failed)
	}
	proxy.set(appended(maxLine+100) + page([]request{clientGet(3)}, nil))
	calls, _, failed := p.Poll(context.Background(), []Proxy{{IP: netip.MustParseAddr("127.0.0.1")}}, t0.Add(15e9))
	if len(failed) != 0 || len(calls) != 1 || calls[0].Count != 2 || calls[0].Path != "/client-path" {
		t.Fatalf("calls %+v, failed %v", calls, failed)
	}
	if got := testutil.ToFloat64(linesSkipped.WithLabelValues("overlong")) - before; got != 2 {
		t.Errorf("counted %v overlong lines, want one per scrape", got)
	}
}

// A page past the old 16 MiB limit streams: the families read are all there.
func TestAPageOver16MiBStreams(t *testing.T) {
	proxy := &proxyServer{}
	port := mustPort(t, serve(t, "127.0.0.1:0", proxy))
	s := DefaultScraper()
	s.Port, s.FallbackPort = port, 0
	requests := []request{clientGet(5), {"source", "shop", "client", "shop", "db", "POST", "/tail", "200", true, 7}}
	body := page(requests[:1], nil) + appFamilies(17<<20) + page(requests[1:], nil)
	if len(body) <= 16<<20 {
		t.Fatalf("page of %d bytes", len(body))
	}
	proxy.set(body)
	series, err := s.Scrape(context.Background(), "127.0.0.1")
	if err != nil || len(series) != 2 {
		t.Fatalf("%d series, %v", len(series), err)
	}
	for _, x := range series {
		if x.Labels.Path == "/tail" && x.Value != 7 || x.Labels.Path == "/client-path" && x.Value != 5 {
			t.Errorf("series %+v", x)
		}
	}
}

// Of the families read, what passes the byte bound is cut and counted, not fatal.
func TestKeptBytesBoundCutsAndCounts(t *testing.T) {
	requests := make([]request, 0, 100)
	for i := range 100 {
		requests = append(requests, request{"source", "shop", "client", "shop", "nginx", "GET", fmt.Sprintf("/p/%d", i), "200", true, 1})
	}
	body := page(requests, nil)
	series, skipped, err := Parse(strings.NewReader(body), int64(len(body)/2))
	if err != nil || len(series) == 0 || len(series) >= 100 || skipped.OverLimit != 100-len(series) {
		t.Errorf("%d series, skipped %+v, %v", len(series), skipped, err)
	}
}

// pilot-agent merges Envoy's page with the application's: the same family may come
// twice, each with its # HELP and # TYPE.
func TestRepeatedTypeAndHelpLines(t *testing.T) {
	one := page([]request{clientGet(2)}, nil)
	two := strings.Replace(page([]request{{"destination", "shop", "client", "shop", "nginx", "GET", "/client-path", "200", true, 3}}, nil),
		"# TYPE istio_requests_total counter\n", "# HELP istio_requests_total Total requests\n# TYPE istio_requests_total counter\n", 1)
	series, _, err := Parse(strings.NewReader("# HELP istio_requests_total Total requests\n"+one+two), 1<<20)
	if err != nil || len(series) != 2 {
		t.Fatalf("%d series, %v", len(series), err)
	}
}

// acceptOnly answers 406 to a client that does not ask for the text format.
type acceptOnly struct{ *proxyServer }

func (a acceptOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
		http.Error(w, "ask for text/plain", http.StatusNotAcceptable)
		return
	}
	a.proxyServer.ServeHTTP(w, r)
}

func TestTheScraperAsksForTheTextFormat(t *testing.T) {
	proxy := &proxyServer{}
	proxy.set(page([]request{clientGet(1)}, nil))
	port := mustPort(t, serve(t, "127.0.0.1:0", acceptOnly{proxy}))
	s := DefaultScraper()
	s.Port, s.FallbackPort = port, 0
	if series, err := s.Scrape(context.Background(), "127.0.0.1"); err != nil || len(series) != 1 {
		t.Errorf("%d series, %v", len(series), err)
	}
}

// A page fetched and parsed counts as scraped; one that answers an error does not.
func TestScrapedPagesAreCounted(t *testing.T) {
	proxy := &proxyServer{}
	proxy.set(page([]request{clientGet(1)}, nil))
	port := mustPort(t, serve(t, "127.0.0.1:0", acceptOnly{proxy}))
	s := DefaultScraper()
	s.Port, s.FallbackPort = port, 0
	before := testutil.ToFloat64(pagesScraped)
	if _, err := s.Scrape(context.Background(), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	s.Path = "/missing"
	if _, err := s.Scrape(context.Background(), "127.0.0.1"); err == nil {
		t.Fatal("a missing page scraped without error")
	}
	if got := testutil.ToFloat64(pagesScraped) - before; got != 1 {
		t.Errorf("counted %v pages scraped, want 1", got)
	}
}
