package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// createStatefulSet creates StatefulSet → Pod, as the controller would.
func createStatefulSet(namespace, name, ip string) {
	st := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name + "-st"}},
			Template: podTemplate(name + "-st"),
		},
	}
	Expect(k8sClient.Create(ctx, st)).To(Succeed())
	createPod(namespace, name+"-0", ip, map[string]string{"app": name + "-st"}, ownerRef(st, "StatefulSet", "apps/v1"))
}

var _ = Describe("workloads of the same name", func() {
	It("keeps a Deployment and a StatefulSet named alike in objects of their own", func() {
		namespace := newNamespace()
		deployIP, statefulIP, nginxIP, dbIP := nextIP(), nextIP(), nextIP(), nextIP()
		createDeployment(namespace, "web", deployIP)
		createStatefulSet(namespace, "web", statefulIP)
		createDeployment(namespace, "nginx", nginxIP)
		createDeployment(namespace, "db", dbIP)

		send(&reportv1.Report{Connections: []reportv1.Connection{conn(deployIP, nginxIP, 80, time.Now())}})
		Eventually(func(g Gomega) { callTo(g, intents(g, namespace, "web"), namespace, "nginx") }).Should(Succeed())
		send(&reportv1.Report{Connections: []reportv1.Connection{conn(statefulIP, dbIP, 5432, time.Now())}})

		Eventually(func(g Gomega) {
			web := intents(g, namespace, "web")
			g.Expect(web.Spec.Workload).To(Equal(discoveryv1alpha1.WorkloadRef{Name: "web", Kind: discoveryv1alpha1.KindDeployment}))
			g.Expect(web.Status.Calls).To(HaveLen(1))
			callTo(g, web, namespace, "nginx")

			other := intents(g, namespace, "web-statefulset")
			g.Expect(other.Spec.Workload).To(Equal(discoveryv1alpha1.WorkloadRef{Name: "web", Kind: discoveryv1alpha1.KindStatefulSet}))
			g.Expect(other.Status.Calls).To(HaveLen(1))
			g.Expect(callTo(g, other, namespace, "db").Ports).To(Equal([]int32{5432}))
		}).Should(Succeed())
	})
})
