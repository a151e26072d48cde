package system

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/intent-mapper/intent-mapper/agent/envoy"
)

// The load's sidecar page is valid text format of pageSeries series, and the agent's
// parser finds every request series in it, with the names the manager resolves; asked
// with the agent's filter, the page holds those series alone.
func TestSidecarPageIsWhatTheAgentReads(t *testing.T) {
	page := newSidecarPage("sidecar-7", sidecarStatic())
	page.scrapes.Store(1)
	whole := scrapePage(t, page, "")
	if n := countSeries(t, whole); n != pageSeries {
		t.Errorf("%d series on the page, want %d", n, pageSeries)
	}
	filtered := scrapePage(t, page, "?filter="+url.QueryEscape(envoy.EnvoyFilter))
	if n := countSeries(t, filtered); n != pageRequests || len(filtered)*20 > len(whole) {
		t.Errorf("%d series in %d bytes asked with the filter, want %d in a twentieth of %d", n, len(filtered), pageRequests, len(whole))
	}
	t.Logf("a page of %d bytes whole, %d asked with the filter", len(whole), len(filtered))
	for _, body := range [][]byte{whole, filtered} {
		got, _, err := envoy.Parse(bytes.NewReader(body), 64<<20)
		if err != nil || len(got) != pageRequests {
			t.Fatalf("the agent read %d series (%v), want %d", len(got), err, pageRequests)
		}
		for _, s := range got {
			l := s.Labels
			if l.SourceWorkload != "sidecar-7" || l.SourceNamespace != loadNamespace || l.DestinationNamespace != loadNamespace ||
				l.Method != "GET" || l.DestinationWorkload == "" || s.Value < 2 {
				t.Fatalf("series %+v", s)
			}
		}
	}
}

func scrapePage(t *testing.T, page *sidecarPage, query string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest("GET", "/stats/prometheus"+query, nil))
	if rec.Code != 200 {
		t.Fatalf("answered %d", rec.Code)
	}
	return rec.Body.Bytes()
}

// countSeries counts a page's series as Prometheus does, a histogram's buckets, sum
// and count each one.
func countSeries(t *testing.T, body []byte) int {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				series += len(h.GetBucket()) + 2
			} else {
				series++
			}
		}
	}
	return series
}

// The load's DNS server answers a query with an A record of one of its servers.
func TestLoadDNSAnswersAQueries(t *testing.T) {
	raw := answerA(queryA(3, "svc-3.load.svc.cluster.local"))
	a := &layers.DNS{}
	if err := a.DecodeFromBytes(raw, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if !a.QR || a.ID != 3 || len(a.Answers) != 1 || a.Answers[0].IP.String() != loadServerIP(3) {
		t.Errorf("answer %+v", a)
	}
	if answerA(raw) != nil || answerA([]byte("garbage")) != nil {
		t.Error("answered an answer, or garbage")
	}
}
