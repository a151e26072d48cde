package system

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/intent-mapper/intent-mapper/agent/envoy/envoytest"
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

// requestTags are the tags Istio's stats put on a request's stats, as the mesh writes
// them once a Telemetry adds request_method and request_path.
func requestTags(source string, i int) []envoytest.Tag {
	dest := fmt.Sprintf("server-%d", i%loadServers)
	ns, principal := loadNamespace, "spiffe://cluster.local/ns/"+loadNamespace+"/sa/default"
	return envoytest.Tags("reporter", "source", "source_workload", source, "source_workload_namespace", ns,
		"source_principal", principal, "source_app", source, "source_version", "unknown", "source_cluster", "Kubernetes",
		"source_canonical_service", source, "source_canonical_revision", "latest",
		"destination_workload", dest, "destination_workload_namespace", ns, "destination_principal", principal,
		"destination_app", dest, "destination_version", "unknown", "destination_service", dest+"."+ns+".svc.cluster.local",
		"destination_service_name", dest, "destination_service_namespace", ns, "destination_canonical_service", dest,
		"destination_canonical_revision", "latest", "destination_cluster", "Kubernetes", "request_protocol", "http",
		"response_code", "200", "grpc_response_status", "", "response_flags", "-", "connection_security_policy", "mutual_tls",
		"request_method", "GET", "request_path", fmt.Sprintf("/api/v1/items-%d", i))
}

// sidecarStatic is the part of a page that does not change between scrapes (the agent
// skips these stats, so their values do not matter, only their bytes), with the
// internal names Envoy filters on.
func sidecarStatic() *envoytest.Page {
	var stats []envoytest.Stat
	series := pageRequests
	for _, h := range []string{"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"} {
		for i := range pageRequests {
			stat := envoytest.Istio(h, requestTags("sidecar", i), float64(40*i))
			for _, le := range histogramBounds {
				stat.Buckets = append(stat.Buckets, envoytest.Bucket{Le: le, Count: uint64(i)})
			}
			stats = append(stats, stat)
			series += len(histogramBounds) + 2
		}
	}
	for n := 0; series < pageSeries; n, series = n+1, series+1 {
		cluster := fmt.Sprintf("outbound|%d||server-%d.%s.svc.cluster.local", serverPort, n%500, loadNamespace)
		stats = append(stats, envoytest.Cluster(cluster, fmt.Sprintf("upstream_stat_%d", n/500), float64(n)))
	}
	return envoytest.NewPage(stats)
}

// sidecarPage serves one sidecar's page as pilot-agent does, filtered as Envoy filters;
// every request series grows between scrapes, as on a busy sidecar.
type sidecarPage struct {
	workload string
	static   *envoytest.Page
	scrapes  atomic.Int64
	tags     [][]envoytest.Tag
	served   envoytest.Sidecar
}

func newSidecarPage(workload string, static *envoytest.Page) *sidecarPage {
	s := &sidecarPage{workload: workload, static: static}
	for i := range pageRequests {
		s.tags = append(s.tags, requestTags(workload, i))
	}
	s.served.Envoy = func() []*envoytest.Page { return []*envoytest.Page{s.requests(), s.static} }
	return s
}

func (s *sidecarPage) requests() *envoytest.Page {
	n := s.scrapes.Load()
	stats := make([]envoytest.Stat, pageRequests)
	for i := range stats {
		stats[i] = envoytest.Istio("istio_requests_total", s.tags[i], float64(n*int64(i+1)))
	}
	return envoytest.NewPage(stats)
}

func (s *sidecarPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stats/prometheus" {
		s.scrapes.Add(1)
	}
	s.served.ServeHTTP(w, r)
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
