package controllers

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/intent-mapper/intent-mapper/agent/envoy"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var loopbackBlock atomic.Int32

// loopbackIPs are pod IPs a test's sidecars can listen on, in a block no other spec uses.
func loopbackIPs(n int) []string {
	block := loopbackBlock.Add(1)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.46.%d.%d", block, i+1)
	}
	return out
}

// sidecar serves a pod's metrics page in Istio's format, counting requests the test makes.
type sidecar struct {
	mu       sync.Mutex
	counters map[string]float64 // labels → value
}

func (s *sidecar) count(labels string, n float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters[labels] += n
}

func (s *sidecar) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(w, "# TYPE istio_requests_total counter\n")
	for labels, v := range s.counters {
		_, _ = fmt.Fprintf(w, "istio_requests_total{%s} %g\n", labels, v)
	}
}

// startSidecar listens on ip:port until the spec ends.
func startSidecar(ip string, port int) *sidecar {
	s := &sidecar{counters: map[string]float64{}}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{Handler: s, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	DeferCleanup(srv.Close)
	return s
}

// istioLabels are a source sidecar's labels for requests from src to nginx.
func istioLabels(ns, src, method, path string) string {
	const dst = server
	return fmt.Sprintf(`reporter="source",source_workload=%q,source_workload_namespace=%q,source_principal="spiffe://cluster.local/ns/%s/sa/%s",source_app=%q,source_canonical_service=%q,destination_workload=%q,destination_workload_namespace=%q,destination_service="%s.%s.svc.cluster.local",destination_service_name=%q,destination_service_namespace=%q,request_protocol="http",response_code="200",response_flags="-",connection_security_policy="mutual_tls",request_method=%q,request_path=%q`,
		src, ns, ns, src, src, src, dst, ns, dst, ns, dst, ns, method, path)
}

func freeLoopbackPort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

var _ = Describe("Istio HTTP detail", func() {
	var (
		namespace string
		poller    *envoy.Poller
		port      int
	)
	BeforeEach(func() {
		namespace = newNamespace()
		port = freeLoopbackPort()
		s := envoy.DefaultScraper()
		s.Port, s.FallbackPort = port, 0
		poller = &envoy.Poller{Scraper: s, Tracker: &envoy.Tracker{MaxSeries: 1000}, Concurrency: 4}
	})

	// scrape polls the sidecars as the agent does and sends what grew through ingest.
	scrape := func(ips ...string) {
		proxies := make([]envoy.Proxy, 0, len(ips))
		for _, ip := range ips {
			proxies = append(proxies, envoy.Proxy{IP: netip.MustParseAddr(ip)})
		}
		calls, _, failed := poller.Poll(context.Background(), proxies, time.Now())
		Expect(failed).To(BeEmpty())
		if len(calls) > 0 {
			send(&reportv1.Report{HTTP: calls})
		}
	}

	It("gives the Istio tutorial's DiscoveredIntents, history first", func() {
		ips := loopbackIPs(3)
		for i, name := range []string{"client", "client2", "nginx"} {
			createDeployment(namespace, name, ips[i])
		}
		client, client2 := startSidecar(ips[0], port), startSidecar(ips[1], port)
		client.count(istioLabels(namespace, "client", "GET", "/client-path"), 4)
		client2.count(istioLabels(namespace, "client2", "POST", "/client2-path"), 2)

		By("the first scrape: calls from before the agent looked, with no fresh lastSeen")
		scrape(ips[0], ips[1])
		Eventually(func(g Gomega) {
			call := callTo(g, intents(g, namespace, "client"), namespace, "nginx")
			g.Expect(call.Type).To(Equal(discoveryv1alpha1.CallHTTP))
			g.Expect(call.HTTP).To(HaveLen(1))
			g.Expect(call.LastSeen).To(BeNil())
			g.Expect(call.SeenBefore).NotTo(BeNil())
			g.Expect(call.HTTP[0].LastSeen).To(BeNil())
		}).Should(Succeed())

		By("requests made after it")
		client.count(istioLabels(namespace, "client", "GET", "/client-path"), 1)
		client2.count(istioLabels(namespace, "client2", "POST", "/client2-path"), 1)
		scrape(ips[0], ips[1])
		Eventually(func(g Gomega) {
			for _, want := range []struct{ client, method, path string }{{"client", "GET", "/client-path"}, {"client2", "POST", "/client2-path"}} {
				di := intents(g, namespace, want.client)
				g.Expect(di.Status.Calls).To(HaveLen(1))
				call := callTo(g, di, namespace, "nginx")
				g.Expect(call.Services).To(Equal([]string{"nginx"}))
				g.Expect(call.HTTP).To(Equal([]discoveryv1alpha1.HTTPPath{{Path: want.path, Methods: []string{want.method}, LastSeen: call.LastSeen}}))
				g.Expect(call.LastSeen).NotTo(BeNil())
				g.Expect(call.SeenBefore).To(BeNil())
				cond := meta.FindStatusCondition(di.Status.Conditions, discoveryv1alpha1.ConditionHTTPPaths)
				g.Expect(cond).NotTo(BeNil())
				g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
			}
		}).Should(Succeed())
	})

	It("says so when sidecars carry no path labels", func() {
		ips := loopbackIPs(2)
		createDeployment(namespace, "client", ips[0])
		createDeployment(namespace, "nginx", ips[1])
		sc := startSidecar(ips[0], port)
		noPath := istioLabels(namespace, "client", "GET", "/x")
		noPath = noPath[:len(noPath)-len(`,request_method="GET",request_path="/x"`)]
		sc.count(noPath, 1)
		scrape(ips[0])
		sc.count(noPath, 1)
		scrape(ips[0])
		Eventually(func(g Gomega) {
			di := intents(g, namespace, "client")
			cond := meta.FindStatusCondition(di.Status.Conditions, discoveryv1alpha1.ConditionHTTPPaths)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(cond.Reason).To(Equal(discoveryv1alpha1.ReasonNoPathLabels))
			g.Expect(cond.Message).To(ContainSubstring("telemetry.yaml"))
		}).Should(Succeed())
	})
})
