package envoy

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const pageRequests = 250

// sidecarPage is a 20,000-series page in a busy sidecar's proportions: each of 250
// istio_requests_total series comes with Istio's three histograms (duration, request
// and response bytes) of 20 buckets, with the same labels; Envoy's own stats fill the rest.
func sidecarPage() string {
	requests := make([]request, 0, pageRequests)
	for i := range pageRequests {
		requests = append(requests, request{"source", "shop", "client", "shop", fmt.Sprintf("svc-%d", i%50), "GET", fmt.Sprintf("/api/v1/items-%d", i), "200", true, float64(i)})
	}
	var b strings.Builder
	lines := strings.Split(strings.TrimSpace(page(requests, nil)), "\n")
	for _, l := range lines {
		if !strings.Contains(l, "istio_request_duration_milliseconds") { // written in full below
			b.WriteString(l + "\n")
		}
	}
	series := 0
	for _, hist := range []string{"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"} {
		fmt.Fprintf(&b, "# TYPE %s histogram\n", hist)
		for _, l := range lines {
			labels, ok := strings.CutPrefix(l, "istio_requests_total{")
			if !ok {
				continue
			}
			labels = labels[:strings.LastIndexByte(labels, '}')]
			for _, le := range []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "60000", "300000", "600000", "1.8e+06", "3.6e+06", "+Inf"} {
				fmt.Fprintf(&b, "%s_bucket{%s,le=%q} 3\n", hist, labels, le)
				series++
			}
			fmt.Fprintf(&b, "%s_sum{%s} 42\n%s_count{%s} 3\n", hist, labels, hist, labels)
		}
	}
	for i := 0; series+pageRequests+i < 20_000; i++ {
		if i%1000 == 0 {
			fmt.Fprintf(&b, "# TYPE envoy_cluster_stat_%d counter\n", i/1000)
		}
		fmt.Fprintf(&b, "envoy_cluster_stat_%d{envoy_cluster_name=\"outbound|8080||svc-%d.shop.svc.cluster.local\"} %d\n", i/1000, i%1000, i)
	}
	return b.String()
}

// BenchmarkScrapeParse: our parse of a 20,000-series page.
func BenchmarkScrapeParse(b *testing.B) {
	body := sidecarPage()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		series, _, err := Parse(strings.NewReader(body), 64<<20)
		if err != nil || len(series) != pageRequests {
			b.Fatal(err, len(series))
		}
	}
}

// BenchmarkScrapeParseBaseline: the whole page through expfmt, then the families kept.
func BenchmarkScrapeParseBaseline(b *testing.B) {
	body := sidecarPage()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil || len(families[RequestsTotal].GetMetric()) != pageRequests {
			b.Fatal(err)
		}
	}
}

// largePageBytes is a page past the 16 MiB a scrape once refused whole.
const largePageBytes = 20 << 20

// largePage is sidecarPage grown to 20 MiB by the application's own families, which
// pilot-agent appends to the merged page: a web framework's counters by raw URL path.
func largePage() string {
	side := sidecarPage()
	return side + appFamilies(largePageBytes-len(side))
}

// appFamilies is about size bytes of an application's counters by raw URL path.
func appFamilies(size int) string {
	var b strings.Builder
	b.WriteString("# TYPE http_server_requests_seconds_count counter\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "http_server_requests_seconds_count{method=\"GET\",status=\"200\",uri=\"/api/v1/items/%d/reviews?page=%d\"} %d\n", i, i%7, i)
	}
	return b.String()
}

// peakHeap samples the heap in use while run runs and returns its highest point above
// where it was before, in MiB.
func peakHeap(run func()) float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if h := read(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	run()
	close(done)
	<-stopped
	if peak.Load() < base {
		return 0
	}
	return float64(peak.Load()-base) / (1 << 20)
}

// BenchmarkScrapeParseLarge: our streaming parse of a 20 MiB page; MiB is the peak
// heap it used above the page held in memory.
func BenchmarkScrapeParseLarge(b *testing.B) {
	body := largePage()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var peak float64
	for b.Loop() {
		peak = max(peak, peakHeap(func() {
			series, _, err := Parse(strings.NewReader(body), 16<<20)
			if err != nil || len(series) != pageRequests {
				b.Fatal(err, len(series))
			}
		}))
	}
	b.ReportMetric(peak, "MiB")
}

// BenchmarkScrapeParseLargeBaseline: the 20 MiB page through expfmt whole.
func BenchmarkScrapeParseLargeBaseline(b *testing.B) {
	body := largePage()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var peak float64
	for b.Loop() {
		peak = max(peak, peakHeap(func() {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(strings.NewReader(body))
			if err != nil || len(families[RequestsTotal].GetMetric()) != pageRequests {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(peak, "MiB")
}
