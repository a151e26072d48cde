package controllers

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/written"
)

var _ = Describe("the manager's own record of DiscoveredIntents", func() {
	It("is loaded a page at a time, each object with the status the API server holds", func() {
		namespace := newNamespace()
		want := map[types.NamespacedName]*discoveryv1alpha1.DiscoveredIntents{}
		for i := range 5 {
			di := newDiscoveredIntents(namespace)
			di.Name = fmt.Sprintf("client-%d", i)
			Expect(k8sClient.Create(ctx, di)).To(Succeed())
			Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
				s.Calls = []discoveryv1alpha1.Call{{Name: fmt.Sprintf("server-%d", i), Namespace: namespace, Type: discoveryv1alpha1.CallTCP, Ports: []int32{int32(8000 + i)}}}
			})).To(Succeed())
			want[types.NamespacedName{Namespace: namespace, Name: di.Name}] = di
		}

		// The running manager writes these objects too: compare with what the API server
		// holds once they settle.
		Eventually(func(g Gomega) {
			store := &written.Store{PageSize: 2} // three pages at least: the continue token is followed
			g.Expect(store.Load(ctx, k8sClient)).To(Succeed())
			for key := range want {
				cur := &discoveryv1alpha1.DiscoveredIntents{}
				g.Expect(k8sClient.Get(ctx, key, cur)).To(Succeed())
				got, current, err := store.Get(key, cur.ResourceVersion, cur.Generation)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(current).To(BeTrue(), "%s at resourceVersion %s", key, cur.ResourceVersion)
				g.Expect(got.Status).To(Equal(cur.Status))
				g.Expect(got.Spec).To(Equal(cur.Spec))
				g.Expect(got.Status.Calls).To(HaveLen(1))
				g.Expect(got.Status.Calls[0].Name).To(Equal(want[key].Status.Calls[0].Name))
			}
			_, current, _ := store.Get(types.NamespacedName{Namespace: namespace, Name: "client-0"}, "1", 1)
			g.Expect(current).To(BeFalse(), "another resourceVersion is someone else's change: read again")
		}).Should(Succeed())
	})
})
