package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/agent/report"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/certs"
	"github.com/intent-mapper/intent-mapper/controllers/ingest"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
)

var ipCounter atomic.Int32

// nextIP is a pod IP no other spec uses. Nothing is sent to it: it is only data.
func nextIP() string {
	n := ipCounter.Add(1)
	return fmt.Sprintf("10.244.%d.%d", n/250, n%250+1)
}

var _ = Describe("the data path", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("makes one DiscoveredIntents per client, naming the workload behind a Service", func() {
		clientIP, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
		svc := createService(namespace, "nginx", 80)

		send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, svc.Spec.ClusterIP, 80, time.Now())}})

		Eventually(func(g Gomega) {
			di := intents(g, namespace, "client")
			g.Expect(di.Spec.Workload).To(Equal(discoveryv1alpha1.WorkloadRef{Name: "client", Kind: discoveryv1alpha1.KindDeployment}))
			g.Expect(di.Status.Calls).To(HaveLen(1))
			call := callTo(g, di, namespace, "nginx")
			g.Expect(call.Kind).To(Equal(discoveryv1alpha1.KindDeployment))
			g.Expect(call.Type).To(Equal(discoveryv1alpha1.CallTCP))
			g.Expect(call.Ports).To(Equal([]int32{80}))
			g.Expect(call.Services).To(Equal([]string{"nginx"}))
			g.Expect(call.FirstSeen).NotTo(BeNil())
			g.Expect(call.LastSeen).NotTo(BeNil())
		}).Should(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "nginx"}, &discoveryv1alpha1.DiscoveredIntents{})).
			To(MatchError(apierrors.IsNotFound, "a server that called no one has no object"))
	})

	It("adds HTTP paths and methods, and does not rewrite the object for the same reports", func() {
		clientIP, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
		at := time.Now()
		rep := &reportv1.Report{
			Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, at)},
			HTTP: []reportv1.HTTPCall{{
				Reporter: reportv1.ReporterSource, Proxy: netip.MustParseAddr(clientIP),
				Source: reportv1.Workload{Namespace: namespace, Name: "client"}, Destination: reportv1.Workload{Namespace: namespace, Name: "nginx"},
				DestinationService: "nginx." + namespace + ".svc.cluster.local",
				Method:             "get", Path: "/client-path?session=1", Port: 80, Count: 3, Time: at,
			}},
		}
		send(rep)
		var written *discoveryv1alpha1.DiscoveredIntents
		Eventually(func(g Gomega) {
			written = intents(g, namespace, "client")
			call := callTo(g, written, namespace, "nginx")
			g.Expect(call.Type).To(Equal(discoveryv1alpha1.CallHTTP))
			g.Expect(call.HTTP).To(HaveLen(1))
			g.Expect(call.HTTP[0].Path).To(Equal("/client-path"))
			g.Expect(call.HTTP[0].Methods).To(Equal([]string{"GET"}))
			g.Expect(call.HTTP[0].LastSeen).NotTo(BeNil())
			g.Expect(call.HTTP[0].LastSeen.Time).To(BeTemporally("==", at.Truncate(time.Minute)))
		}).Should(Succeed())

		By("sending the same reports again, counting this object's writes")
		watcher, err := dynamic.NewForConfigOrDie(cfg).Resource(discoveryv1alpha1.GroupVersion.WithResource("discoveredintents")).
			Namespace(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=client", ResourceVersion: written.ResourceVersion})
		Expect(err).NotTo(HaveOccurred())
		defer watcher.Stop()
		for range 3 {
			send(rep)
		}
		key := pending.Key{Namespace: namespace, Name: "client"}
		Eventually(func() bool { return dataPath.Pending.Pending(key) }).Should(BeFalse())
		Consistently(watcher.ResultChan()).WithTimeout(4*testFlush).ShouldNot(Receive(), "no write to the object")
		Expect(intents(Default, namespace, "client").ResourceVersion).To(Equal(written.ResourceVersion))
	})

	It("resets by deletion: only traffic after it brings the object back", func() {
		clientIP, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
		createDeployment(namespace, "db", nextIP())
		before := time.Now()
		send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, before)}})
		di := &discoveryv1alpha1.DiscoveredIntents{}
		Eventually(func(g Gomega) { di = intents(g, namespace, "client"); callTo(g, di, namespace, "nginx") }).Should(Succeed())

		By("deleting the object")
		Expect(k8sClient.Delete(ctx, di)).To(Succeed())
		key := pending.Key{Namespace: namespace, Name: "client"}
		Eventually(func(g Gomega) {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(di), &discoveryv1alpha1.DiscoveredIntents{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())

		By("a late report of a call from before the deletion")
		send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, before)}})
		Consistently(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(di), &discoveryv1alpha1.DiscoveredIntents{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(4 * testFlush).Should(BeTrue())
		Expect(dataPath.Pending.Pending(key)).To(BeFalse())

		By("new traffic after it")
		dbIP := nextIP()
		createDeployment(namespace, "cache", dbIP)
		Eventually(func(g Gomega) {
			send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, dbIP, 6379, time.Now())}})
			di := intents(g, namespace, "client")
			g.Expect(di.Status.Calls).To(HaveLen(1), "only the new call, nothing from before the reset")
			callTo(g, di, namespace, "cache")
		}).Should(Succeed())
	})

	It("blames a late report on the pod that had the IP then, not the one that has it now", func() {
		reused, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "nginx", serverIP)
		old := createPod(namespace, "old-client", reused, nil, nil)
		then := time.Now()

		Expect(k8sClient.Delete(ctx, old, client.GracePeriodSeconds(0))).To(Succeed()) // no kubelet to finish a graceful delete
		Eventually(func() bool {
			_, ok := dataPath.Resolver.WorkloadAt(netip.MustParseAddr(reused), time.Now())
			return ok
		}).Should(BeFalse())
		createPod(namespace, "new-client", reused, nil, nil)

		send(&reportv1.Report{Connections: []reportv1.Connection{conn(reused, serverIP, 80, then)}})
		Eventually(func(g Gomega) {
			di := intents(g, namespace, "old-client")
			g.Expect(di.Spec.Workload.Kind).To(Equal(discoveryv1alpha1.KindPod))
			callTo(g, di, namespace, "nginx")
		}).Should(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "new-client"}, &discoveryv1alpha1.DiscoveredIntents{})).
			To(MatchError(apierrors.IsNotFound, "new-client made no call"))

		By("a report of now going to the new pod")
		send(&reportv1.Report{Connections: []reportv1.Connection{conn(reused, serverIP, 80, time.Now())}})
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "new-client"), namespace, "nginx") }).Should(Succeed())
	})

	It("names workloads by the override label, CronJob, and bare pod", func() {
		serverIP := nextIP()
		createDeployment(namespace, "nginx", serverIP)
		labelled, cron, bare := nextIP(), nextIP(), nextIP()
		createPod(namespace, "worker-abc", labelled, map[string]string{"intentmapper.io/service-name": "payments"}, nil)
		createCronJobPod(namespace, "nightly-report", cron)
		createPod(namespace, "debug-shell", bare, nil, nil)

		now := time.Now()
		send(&reportv1.Report{Connections: []reportv1.Connection{
			conn(labelled, serverIP, 80, now), conn(cron, serverIP, 80, now), conn(bare, serverIP, 80, now),
		}})
		Eventually(func(g Gomega) {
			g.Expect(intents(g, namespace, "payments").Spec.Workload.Name).To(Equal("payments"))
			g.Expect(intents(g, namespace, "nightly-report").Spec.Workload.Kind).To(Equal(discoveryv1alpha1.KindCronJob))
			g.Expect(intents(g, namespace, "debug-shell").Spec.Workload.Kind).To(Equal(discoveryv1alpha1.KindPod))
			for _, name := range []string{"payments", "nightly-report", "debug-shell"} {
				callTo(g, intents(g, namespace, name), namespace, "nginx")
			}
		}).Should(Succeed())
	})

	It("records a call out of the cluster under the DNS name the client resolved", func() {
		clientIP := nextIP()
		createDeployment(namespace, "client", clientIP)
		stripe := netip.MustParseAddr("203.0.113.10") // documentation range: only data
		now := time.Now()
		send(&reportv1.Report{
			DNS:         []reportv1.DNSAnswer{{Client: netip.MustParseAddr(clientIP), Name: "api.stripe.com", IPs: []netip.Addr{stripe}, TTL: 60, Time: now}},
			Connections: []reportv1.Connection{conn(clientIP, stripe.String(), 443, now)},
		})
		Eventually(func(g Gomega) {
			call := callTo(g, intents(g, namespace, "client"), "", "api.stripe.com")
			g.Expect(call.Type).To(Equal(discoveryv1alpha1.CallInternet))
			g.Expect(call.Internet).NotTo(BeNil())
			g.Expect(call.Internet.Domains).To(Equal([]string{"api.stripe.com"}))
			g.Expect(call.Ports).To(Equal([]int32{443}))
		}).Should(Succeed())
	})

	It("keeps what was written across a manager restart, and goes on merging", func() {
		clientIP, serverIP, dbIP := nextIP(), nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
		createDeployment(namespace, "db", dbIP)
		send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, time.Now())}})
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "client"), namespace, "nginx") }).Should(Succeed())

		stopManager()
		startManager()
		waitResolvable(clientIP)

		send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, dbIP, 5432, time.Now())}})
		Eventually(func(g Gomega) {
			di := intents(g, namespace, "client")
			g.Expect(di.Status.Calls).To(HaveLen(2))
			callTo(g, di, namespace, "nginx")
			callTo(g, di, namespace, "db")
		}).Should(Succeed())
	})
})

var _ = Describe("the ingest endpoint", func() {
	var (
		namespace string
		valid     []byte
	)
	BeforeEach(func() {
		namespace = newNamespace()
		clientIP, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
		valid = reportJSON(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, time.Now())}})
	})

	// refused posts body and expects it refused with status, counted under result,
	// and nothing recorded for the client.
	refused := func(body []byte, bearer string, gz bool, status int, result string) {
		count := testutil.ToFloat64(ingest.ReportsTotal(result))
		Expect(post(body, bearer, gz)).To(Equal(status))
		Expect(testutil.ToFloat64(ingest.ReportsTotal(result))).To(Equal(count + 1))
		Expect(dataPath.Pending.Pending(pending.Key{Namespace: namespace, Name: "client"})).To(BeFalse())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "client"}, &discoveryv1alpha1.DiscoveredIntents{})).
			To(MatchError(apierrors.IsNotFound, "nothing written"))
	}

	It("refuses a caller with no token", func() {
		refused(valid, "", false, http.StatusUnauthorized, ingest.Unauthenticated)
	})
	It("refuses a token of another ServiceAccount", func() {
		refused(valid, token(namespace, "intruder", "intent-mapper"), false, http.StatusForbidden, ingest.Forbidden)
	})
	It("refuses the agent's token issued for another audience", func() {
		refused(valid, token(managerNamespace, agentAccount, "https://kubernetes.default.svc"), false, http.StatusUnauthorized, ingest.Unauthenticated)
	})
	It("refuses a body over the limit", func() {
		big := []byte(`{"version":"` + reportv1.Version + `","node":"` + strings.Repeat("x", ingest.DefaultMaxBody) + `"}`)
		refused(big, agentToken(), false, http.StatusRequestEntityTooLarge, ingest.TooLarge)
	})
	It("refuses a gzip bomb", func() {
		bomb := gzipped(append(valid[:len(valid)-1], []byte(`,"pad":"`+strings.Repeat("0", 64<<20)+`"}`)...))
		Expect(len(bomb)).To(BeNumerically("<", 1<<20), "small on the wire")
		refused(bomb, agentToken(), true, http.StatusRequestEntityTooLarge, ingest.TooLarge)
	})
	It("refuses garbage", func() {
		refused([]byte("{\"version\": [garbage"), agentToken(), false, http.StatusBadRequest, ingest.BadJSON)
		refused([]byte("\x1f\x8bnot really gzip"), agentToken(), true, http.StatusBadRequest, ingest.BadEncoding)
	})
	It("refuses a report that breaks the format's rules", func() {
		rep := &reportv1.Report{}
		Expect(json.Unmarshal(valid, rep)).To(Succeed())
		rep.Connections[0].Port = 0
		body, err := json.Marshal(rep)
		Expect(err).NotTo(HaveOccurred())
		refused(body, agentToken(), false, http.StatusBadRequest, ingest.Invalid)
	})
	It("takes reports from the agent's own reporter, trusting the published CA", func() {
		dir := GinkgoT().TempDir()
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: "intent-mapper-ca"}, cm)).To(Succeed())
		opts := report.DefaultOptions()
		opts.URL, opts.ServerName, opts.Node = "https://"+ingestAddr+ingest.Path, ingestHost, testNode
		opts.CAFile, opts.TokenFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
		opts.Interval = 100 * time.Millisecond
		Expect(os.WriteFile(opts.CAFile, []byte(cm.Data[certs.CAKey]), 0o600)).To(Succeed())
		Expect(os.WriteFile(opts.TokenFile, []byte(agentToken()), 0o600)).To(Succeed())
		reporter := report.New(opts)
		rctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go reporter.Run(rctx)

		rep := &reportv1.Report{}
		Expect(json.Unmarshal(valid, rep)).To(Succeed())
		reporter.AddConnection(rep.Connections[0])
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "client"), namespace, "nginx") }).Should(Succeed())
	})

	It("accepts the agent's report", func() {
		Expect(post(gzipped(valid), agentToken(), true)).To(Equal(http.StatusAccepted))
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "client"), namespace, "nginx") }).Should(Succeed())
	})
})
