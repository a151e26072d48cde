package controllers

import (
	"fmt"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// queueDepth is the DiscoveredIntents controller's work queue depth, as the manager
// exports it in workqueue_depth.
func queueDepth() float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	depth, found := 0.0, false
	for _, f := range families {
		if f.GetName() != "workqueue_depth" {
			continue
		}
		for _, m := range f.GetMetric() { // one series per priority, when the queue has them
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == "discoveredintents" {
					depth, found = depth+m.GetGauge().GetValue(), true
				}
			}
		}
	}
	Expect(found).To(BeTrue(), "no workqueue_depth for the discoveredintents controller")
	return depth
}

var _ = Describe("a burst of ClientIntents", func() {
	It("does not hold up reports, and queues each object at most once", func() {
		crds, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "cmd", "kubectl-intents", "testdata", "clientintents-crd.yaml")}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			Expect(envtest.UninstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: crds})).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: "clientintents.k8s.otterize.com"}, &apiextensionsv1.CustomResourceDefinition{}))
			}).Should(BeTrue())
		})
		namespace := newNamespace()
		clientIP, serverIP := nextIP(), nextIP()
		createDeployment(namespace, "client", clientIP)
		createDeployment(namespace, "nginx", serverIP)

		By("creating 1,000 ClientIntents while reports arrive")
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			for i := range 1000 {
				ci := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "k8s.otterize.com/v1alpha3", "kind": "ClientIntents",
					"metadata": map[string]any{"name": fmt.Sprintf("declared-%04d", i), "namespace": namespace},
					"spec":     map[string]any{"service": map[string]any{"name": fmt.Sprintf("declared-%04d", i)}, "calls": []any{}},
				}}
				Expect(k8sClient.Create(ctx, ci)).To(Succeed())
			}
		}()
		var ports []int32
		maxDepth := 0.0
		// One port per report, at most 60 of them: a call lists at most 64 ports.
		for port := int32(1000); port < 1060; port++ {
			send(&reportv1.Report{Connections: []reportv1.Connection{conn(clientIP, serverIP, uint16(port), time.Now())}})
			ports = append(ports, port)
			maxDepth = max(maxDepth, queueDepth())
			select {
			case <-done:
			case <-time.After(200 * time.Millisecond):
				continue
			}
			break
		}
		Eventually(done).WithTimeout(2 * time.Minute).Should(BeClosed())

		all := &discoveryv1alpha1.DiscoveredIntentsList{}
		Expect(k8sClient.List(ctx, all)).To(Succeed())
		GinkgoWriter.Printf("%d reports during the burst; queue depth at most %v for %d objects\n", len(ports), maxDepth, len(all.Items))
		Expect(maxDepth).To(BeNumerically("<=", len(all.Items)), "an object queued more than once")
		Eventually(func(g Gomega) {
			g.Expect(callTo(g, intents(g, namespace, "client"), namespace, "nginx").Ports).To(ConsistOf(ports))
		}).Should(Succeed())
	})
})
