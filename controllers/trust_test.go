package controllers

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/ingest"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
)

var _ = Describe("an agent's word", func() {
	var namespace, clientIP, serverIP string
	BeforeEach(func() {
		namespace = newNamespace()
		clientIP, serverIP = nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)
	})

	// nothingFor expects no trace of the client: neither pending nor written.
	nothingFor := func(g Gomega) {
		g.Expect(dataPath.Pending.Pending(pending.Key{Namespace: namespace, Name: "client"})).To(BeFalse())
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "client"}, &discoveryv1alpha1.DiscoveredIntents{})).
			To(MatchError(apierrors.IsNotFound, "nothing written"))
	}
	reportFrom := func(node string, at time.Time) []byte {
		rep := &reportv1.Report{Version: reportv1.Version, Node: node, AgentTime: time.Now(),
			Connections: []reportv1.Connection{conn(clientIP, serverIP, 80, at)}}
		body, err := json.Marshal(rep)
		Expect(err).NotTo(HaveOccurred())
		return gzipped(body)
	}

	It("speaks only for the node its pod-bound token names", func() {
		tokenA := agentTokenOn(testNode) // the API server binds it to a pod scheduled on node-a

		By("a report from node-a's agent that says it is node-b")
		refusedBefore := testutil.ToFloat64(ingest.ReportsTotal(ingest.NodeMismatch))
		Expect(post(reportFrom("node-b", time.Now()), tokenA, true)).To(Equal(http.StatusForbidden))
		Expect(testutil.ToFloat64(ingest.ReportsTotal(ingest.NodeMismatch))).To(Equal(refusedBefore + 1))
		Consistently(nothingFor).WithTimeout(4 * testFlush).Should(Succeed())

		By("the same report naming its own node")
		Expect(post(reportFrom(testNode, time.Now()), tokenA, true)).To(Equal(http.StatusAccepted))
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "client"), namespace, "nginx") }).Should(Succeed())
	})

	It("does not let node-b's agent report node-a's pods", func() {
		tokenB := agentTokenOn("node-b")
		Expect(post(reportFrom("node-b", time.Now()), tokenB, true)).To(Equal(http.StatusAccepted),
			"node-b may report, but the client runs on node-a")
		Expect(post(reportFrom(testNode, time.Now()), tokenB, true)).To(Equal(http.StatusForbidden))
		Consistently(nothingFor).WithTimeout(4 * testFlush).Should(Succeed())
	})

	It("refuses the agent's token when it is bound to no pod", func() {
		before := testutil.ToFloat64(ingest.ReportsTotal(ingest.Unbound))
		Expect(post(reportFrom(testNode, time.Now()), token(managerNamespace, agentAccount, "intent-mapper"), true)).
			To(Equal(http.StatusForbidden))
		Expect(testutil.ToFloat64(ingest.ReportsTotal(ingest.Unbound))).To(Equal(before + 1))
		nothingFor(Default)
	})

	It("clamps a time from the future to when the report arrived", func() {
		before := testutil.ToFloat64(ingest.ObservationTimes(ingest.ClampedFuture))
		sent := time.Now()
		Expect(post(reportFrom(testNode, sent.AddDate(10, 0, 0)), agentToken(), true)).To(Equal(http.StatusAccepted))
		Expect(testutil.ToFloat64(ingest.ObservationTimes(ingest.ClampedFuture))).To(Equal(before + 1))
		Eventually(func(g Gomega) {
			call := callTo(g, intents(g, namespace, "client"), namespace, "nginx")
			g.Expect(call.LastSeen).NotTo(BeNil())
			g.Expect(call.LastSeen.Time).NotTo(BeTemporally(">", time.Now()), "lastSeen is never in the future")
			g.Expect(call.FirstSeen.Time).NotTo(BeTemporally(">", time.Now()))
		}).Should(Succeed())
	})

	It("drops an observation older than pods are remembered", func() {
		before := testutil.ToFloat64(ingest.ObservationTimes(ingest.DroppedOld))
		tooOld := time.Now().Add(-DefaultDataPathOptions().Resolve.TombstoneTTL - time.Minute)
		Expect(post(reportFrom(testNode, tooOld), agentToken(), true)).To(Equal(http.StatusAccepted))
		Expect(testutil.ToFloat64(ingest.ObservationTimes(ingest.DroppedOld))).To(Equal(before + 1))
		Consistently(nothingFor).WithTimeout(4 * testFlush).Should(Succeed())
	})
})
