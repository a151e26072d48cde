package envoytest

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func stats() []*Page {
	h := Istio("istio_request_duration_milliseconds", Tags("reporter", "source"), 12)
	h.Buckets = []Bucket{{Le: "10", Count: 1}, {Le: "+Inf", Count: 2}}
	return []*Page{NewPage([]Stat{
		Cluster("outbound|80||nginx.shop.svc.cluster.local", "upstream_rq_total", 4),
		Istio("istio_requests_total", Tags("reporter", "source", "request_path", "/a"), 3),
		h,
		Istio("istio_requests_total", Tags("reporter", "source", "request_path", "/b"), 5),
	})}
}

func families(t *testing.T, query string, s *Sidecar) map[string]int {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/stats/prometheus"+query, nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("%v in\n%s", err, rec.Body)
	}
	out := map[string]int{}
	for name, f := range fams {
		out[name] = len(f.GetMetric())
	}
	return out
}

// The page is Prometheus' text format, with Istio's names as they are and Envoy's own
// prefixed; the filter keeps the stats whose internal name it matches anywhere.
func TestSidecarServesWhatEnvoyAndPilotAgentServe(t *testing.T) {
	s := &Sidecar{Envoy: stats, App: []byte("# TYPE app_up gauge\napp_up 1\n")}
	all := families(t, "", s)
	want := map[string]int{"envoy_cluster_upstream_rq_total": 1, "istio_requests_total": 2, "istio_request_duration_milliseconds": 1, "app_up": 1}
	if len(all) != len(want) {
		t.Errorf("families %v, want %v", all, want)
	}
	for name, n := range want {
		if all[name] != n {
			t.Errorf("families %v, want %v", all, want)
		}
	}
	if got := families(t, "?filter=istio_requests_total", s); len(got) != 2 || got["istio_requests_total"] != 2 || got["app_up"] != 1 {
		t.Errorf("filtered: %v", got)
	}
	if got := families(t, "?filter=%5Ecluster%5C.outbound%5C%7C", s); len(got) != 2 || got["envoy_cluster_upstream_rq_total"] != 1 {
		t.Errorf("filtered on the cluster's name: %v", got)
	}
	if got := families(t, "?filter=request_path%5C.%2Fb", s); got["istio_requests_total"] != 1 {
		t.Errorf("filtered on a tag: %v", got)
	}
	if got := families(t, "?filter=(", s); len(got) != 1 || got["app_up"] != 1 {
		t.Errorf("a filter Envoy refuses leaves the app's metrics alone: %v", got)
	}
	s.IgnoreQuery = true
	if got := families(t, "?filter=istio_requests_total", s); len(got) != len(want) {
		t.Errorf("the query ignored: %v", got)
	}
}
