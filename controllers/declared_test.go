package controllers

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var _ = Describe("observed against declared", Ordered, func() {
	var (
		namespace string
		di        *discoveryv1alpha1.DiscoveredIntents
	)
	declaredCondition := func(g Gomega) (*metav1.Condition, *discoveryv1alpha1.DiscoveredIntents) {
		got := &discoveryv1alpha1.DiscoveredIntents{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), got)).To(Succeed())
		return meta.FindStatusCondition(got.Status.Conditions, discoveryv1alpha1.ConditionDeclared), got
	}
	clientIntents := func(calls ...map[string]any) *unstructured.Unstructured {
		list := make([]any, len(calls))
		for i := range calls {
			list[i] = calls[i]
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "k8s.otterize.com/v1alpha3", "kind": "ClientIntents",
			"metadata": map[string]any{"name": clientName, "namespace": namespace},
			"spec":     map[string]any{"service": map[string]any{"name": clientName}, "calls": list},
		}}
	}

	BeforeAll(func() {
		namespace = newNamespace()
		di = newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			s.Calls = []discoveryv1alpha1.Call{
				{Name: server, Namespace: namespace, Type: discoveryv1alpha1.CallHTTP, HTTP: []discoveryv1alpha1.HTTPPath{{Path: "/a", Methods: []string{"GET"}}}},
				{Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, Internet: &discoveryv1alpha1.InternetTarget{Domains: []string{"api.stripe.com"}}},
			}
		})).To(Succeed())
	})

	It("says nothing of declarations while the ClientIntents API does not exist", func() {
		Consistently(func(g Gomega) {
			cond, got := declaredCondition(g)
			g.Expect(cond).To(BeNil())
			g.Expect(got.Status.UndeclaredCount).To(BeNil())
		}).WithTimeout(3 * testDeclaredPoll).Should(Succeed())
	})

	It("compares once the API is installed, after the manager started", func() {
		crds, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "cmd", "kubectl-intents", "testdata", "clientintents-crd.yaml")}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			Expect(envtest.UninstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: crds})).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: "clientintents.k8s.otterize.com"}, &apiextensionsv1.CustomResourceDefinition{}))
			}).Should(BeTrue())
			Eventually(func(g Gomega) { // uninstalled: back to not knowing
				cond, got := declaredCondition(g)
				g.Expect(cond).To(BeNil())
				g.Expect(got.Status.UndeclaredCount).To(BeNil())
			}).Should(Succeed())
		})
		Eventually(func(g Gomega) {
			cond, got := declaredCondition(g)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(cond.Message).To(Equal("2 of 2 calls not declared"))
			g.Expect(got.Status.UndeclaredCount).To(HaveValue(BeEquivalentTo(2)))
		}).Should(Succeed())

		By("declaring the HTTP call")
		ci := clientIntents(map[string]any{"name": server, "type": "http", "HTTPResources": []any{map[string]any{"path": "/a", "methods": []any{"GET"}}}})
		Expect(k8sClient.Create(ctx, ci)).To(Succeed())
		Eventually(func(g Gomega) {
			cond, got := declaredCondition(g)
			g.Expect(cond.Message).To(Equal("1 of 2 calls not declared"))
			g.Expect(got.Status.Find(namespace, server).Declared).To(HaveValue(BeTrue()))
			g.Expect(got.Status.Find("", "api.stripe.com").Declared).To(HaveValue(BeFalse()))
			g.Expect(got.Status.UndeclaredCount).To(HaveValue(BeEquivalentTo(1)))
			g.Expect(tableRow(g, namespace, clientName)).To(HaveKeyWithValue("Undeclared", BeNumerically("==", 1)))
		}).Should(Succeed())

		By("declaring the internet call too")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ci), ci)).To(Succeed())
		ci.Object["spec"].(map[string]any)["calls"] = append(ci.Object["spec"].(map[string]any)["calls"].([]any),
			map[string]any{"type": "internet", "internet": map[string]any{"domains": []any{"api.stripe.com"}}})
		Expect(k8sClient.Update(ctx, ci)).To(Succeed())
		Eventually(func(g Gomega) {
			cond, got := declaredCondition(g)
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(got.Status.UndeclaredCount).To(HaveValue(BeEquivalentTo(0)))
		}).Should(Succeed())
	})
})
