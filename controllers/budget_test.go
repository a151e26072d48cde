package controllers

import (
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/budget"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
	"github.com/intent-mapper/intent-mapper/controllers/written"
)

// busyCalls records calls × paths HTTP observations of one client into store, call i
// last seen i minutes after start, so that the higher calls are the more recent.
func busyCalls(store *pending.Store, namespace string, calls, paths int, start time.Time) {
	busy := resolve.Workload{Namespace: namespace, Name: "busy", Kind: discoveryv1alpha1.KindDeployment}
	for i := range calls {
		server := resolve.Workload{Namespace: namespace, Name: fmt.Sprintf("server-%04d", i), Kind: discoveryv1alpha1.KindDeployment}
		for j := range paths {
			store.Add(resolve.Call{Client: busy, Server: server, Type: discoveryv1alpha1.CallHTTP, Port: 8080, Method: "GET",
				Path: fmt.Sprintf("/api/v1/catalogue/section-%03d/items", j), Time: start.Add(time.Duration(i) * time.Minute)})
		}
	}
}

var _ = Describe("the size of one DiscoveredIntents", func() {
	It("stays under its budget at 2,000 calls × 100 paths, the least recently seen dropped first", func() {
		namespace := newNamespace()
		start := time.Now().Add(-48 * time.Hour).Truncate(time.Minute)
		By("recording 2,000 calls of 100 paths each")
		busyCalls(dataPath.Pending, namespace, 2000, 100, start)

		key := client.ObjectKey{Namespace: namespace, Name: "busy"}
		di := &discoveryv1alpha1.DiscoveredIntents{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, di)).To(Succeed())
			g.Expect(dataPath.Pending.Pending(pending.Key{Namespace: namespace, Name: "busy"})).To(BeFalse())
			g.Expect(di.Status.Find(namespace, "server-1999")).NotTo(BeNil())
		}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

		// As a user measures it: the object the API server returns, managed fields and all.
		raw, err := json.Marshal(di)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("stored object: %d bytes, %d calls\n", len(raw), len(di.Status.Calls))
		Expect(len(raw)).To(BeNumerically("<=", budget.Default))

		cond := meta.FindStatusCondition(di.Status.Conditions, discoveryv1alpha1.ConditionTruncated)
		Expect(cond).NotTo(BeNil())
		Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		Expect(cond.Message).To(MatchRegexp(`^[1-9]\d* paths and \d+ calls, the least recently seen, dropped to stay under 1048576 bytes$`))

		By("the most recent call keeps its paths; the oldest lost its paths, or went")
		newest := di.Status.Find(namespace, "server-1999")
		Expect(newest.HTTP).To(HaveLen(100))
		Expect(newest.Truncated).To(BeFalse())
		if oldest := di.Status.Find(namespace, "server-0000"); oldest != nil {
			Expect(oldest.HTTP).To(BeEmpty())
			Expect(oldest.Truncated).To(BeTrue())
		}
		Expect(di.Status.CallCount).To(BeEquivalentTo(len(di.Status.Calls)))
	})

	It("drops a write the API server refuses, says so, and does not retry it", func() {
		namespace := newNamespace()
		store := pending.NewStore(nil)
		r := &DiscoveredIntentsReconciler{
			Client: k8sClient, Pending: store, Now: time.Now, SizeBudget: 1 << 30, // no trimming: etcd refuses
			Settings: NewSettings(pending.MergeOptions{Step: time.Minute, MaxPaths: 100}, 0),
			Written:  &written.Store{}, APIReader: k8sClient,
		}
		busyCalls(store, namespace, 2000, 100, time.Now().Add(-48*time.Hour))
		req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: namespace, Name: "busy"}}
		before := testutil.ToFloat64(refusedTotal)
		_, err := r.Reconcile(ctx, req) // creates the object and writes its status at once
		Expect(err).NotTo(HaveOccurred(), "a refused write is not an error to retry")
		Expect(testutil.ToFloat64(refusedTotal)).To(Equal(before + 1))
		Expect(store.Pending(pending.Key{Namespace: namespace, Name: "busy"})).To(BeFalse(), "nothing kept to retry")

		di := &discoveryv1alpha1.DiscoveredIntents{}
		Expect(k8sClient.Get(ctx, req.NamespacedName, di)).To(Succeed())
		cond := meta.FindStatusCondition(di.Status.Conditions, discoveryv1alpha1.ConditionWritten)
		Expect(cond).NotTo(BeNil())
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(discoveryv1alpha1.ReasonRefused))
	})
})
