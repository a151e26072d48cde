package system

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// A busy sidecar's page, in the proportions `make bench` uses for agent/envoy:
// pageRequests istio_requests_total series, each with Istio's three histograms of 20
// buckets, and Envoy's own stats up to pageSeries series in all.
const (
	pageRequests = 250
	pageSeries   = 20_000
)

var histogramBounds = []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
	"10000", "30000", "60000", "300000", "600000", "1.8e+06", "3.6e+06", "+Inf"}

// requestLabels are the labels Istio's stats put on a request series, as the mesh
// writes them once a Telemetry adds request_method and request_path.
func requestLabels(source string, i int) string {
	dest := fmt.Sprintf("server-%d", i%loadServers)
	return fmt.Sprintf(`reporter="source",source_workload=%q,source_workload_namespace=%q,source_principal="spiffe://cluster.local/ns/%[2]s/sa/default",source_app=%[1]q,source_version="unknown",source_cluster="Kubernetes",source_canonical_service=%[1]q,source_canonical_revision="latest",destination_workload=%[3]q,destination_workload_namespace=%[2]q,destination_principal="spiffe://cluster.local/ns/%[2]s/sa/default",destination_app=%[3]q,destination_version="unknown",destination_service="%[3]s.%[2]s.svc.cluster.local",destination_service_name=%[3]q,destination_service_namespace=%[2]q,destination_canonical_service=%[3]q,destination_canonical_revision="latest",destination_cluster="Kubernetes",request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls",request_method="GET",request_path="/api/v1/items-%[4]d"`,
		source, loadNamespace, dest, i)
}

// sidecarStatic is the part of a page that does not change between scrapes (the agent
// skips these families, so their values do not matter, only their bytes).
func sidecarStatic() []byte {
	var b strings.Builder
	series := pageRequests
	for _, h := range []string{"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"} {
		fmt.Fprintf(&b, "# TYPE %s histogram\n", h)
		for i := range pageRequests {
			labels := requestLabels("sidecar", i)
			for _, le := range histogramBounds {
				fmt.Fprintf(&b, "%s_bucket{%s,le=%q} %d\n", h, labels, le, i)
			}
			fmt.Fprintf(&b, "%s_sum{%s} %d\n%s_count{%s} %d\n", h, labels, 40*i, h, labels, i)
			series += len(histogramBounds) + 2
		}
	}
	for n := 0; series < pageSeries; n, series = n+1, series+1 {
		if n%500 == 0 {
			fmt.Fprintf(&b, "# TYPE envoy_cluster_upstream_stat_%d counter\n", n/500)
		}
		fmt.Fprintf(&b, "envoy_cluster_upstream_stat_%d{envoy_cluster_name=\"outbound|%d||server-%d.%s.svc.cluster.local\"} %d\n",
			n/500, serverPort, n%500, loadNamespace, n)
	}
	return []byte(b.String())
}

// sidecarPage serves one sidecar's page; every request series grows between scrapes,
// as on a busy sidecar.
type sidecarPage struct {
	workload string
	static   []byte
	scrapes  atomic.Int64
}

func (s *sidecarPage) requests() []byte {
	n := s.scrapes.Load()
	var b strings.Builder
	b.WriteString("# TYPE istio_requests_total counter\n")
	for i := range pageRequests {
		fmt.Fprintf(&b, "istio_requests_total{%s} %d\n", requestLabels(s.workload, i), n*int64(i+1))
	}
	return []byte(b.String())
}

func (s *sidecarPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	s.scrapes.Add(1)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write(s.requests())
	_, _ = w.Write(s.static)
}

// queryA is a DNS query for name's A record.
func queryA(id uint16, name string) []byte {
	q := &layers.DNS{ID: id, RD: true, Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := q.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		panic(err) // a fixed, valid query
	}
	return buf.Bytes()
}

// answerA answers an A query with one of the load's servers, as cluster DNS answers a
// Service name; anything else gets nothing.
func answerA(query []byte) []byte {
	q := &layers.DNS{}
	if q.DecodeFromBytes(query, gopacket.NilDecodeFeedback) != nil || q.QR || len(q.Questions) != 1 || q.Questions[0].Type != layers.DNSTypeA {
		return nil
	}
	ip := netip.MustParseAddr(loadServerIP(int(q.ID) % loadServers)).AsSlice()
	q.QR, q.RA = true, true
	q.Answers = []layers.DNSResourceRecord{{Name: q.Questions[0].Name, Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: ip}}
	out := gopacket.NewSerializeBuffer()
	if q.SerializeTo(out, gopacket.SerializeOptions{FixLengths: true}) != nil {
		return nil
	}
	return out.Bytes()
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
