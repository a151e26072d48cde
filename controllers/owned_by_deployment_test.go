package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

var _ = Describe("the manager's own objects", func() {
	It("are owned by the manager's Deployment, so that removing it removes them", func() {
		namespace := newNamespace()
		createDeployment(namespace, "manager", "10.9.0.1") // Deployment → ReplicaSet → pod
		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "manager"}, d)).To(Succeed())
		pods := &corev1.PodList{}
		Expect(k8sClient.List(ctx, pods, client.InNamespace(namespace))).To(Succeed())
		Expect(pods.Items).To(HaveLen(1))

		o := DataPathOptions{CertSecret: "tls", CAConfigMap: "ca"}
		other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "keeper", UID: "0d8a3c2e-1111-4e2f-9a55-3f7d2b6c9e01"}
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "tls"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ca", OwnerReferences: []metav1.OwnerReference{other}}})).To(Succeed())

		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect((&ownedByDeployment{Reader: k8sClient, Client: k8sClient, Namespace: namespace, Pod: pods.Items[0].Name,
				Objects: managerObjects(o), Every: 50 * time.Millisecond, Log: logf.Log}).Start(runCtx)).To(Succeed())
		}()
		defer func() { cancel(); Eventually(done).Should(BeClosed()) }()

		owned := HaveField("OwnerReferences", ContainElement(And(HaveField("Kind", "Deployment"), HaveField("UID", d.UID))))
		By("the Secret and ConfigMap there at the start; another owner is kept")
		Eventually(func(g Gomega) {
			s, cm := &corev1.Secret{}, &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "tls"}, s)).To(Succeed())
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ca"}, cm)).To(Succeed())
			g.Expect(s).To(owned)
			g.Expect(cm).To(owned)
			g.Expect(cm.OwnerReferences).To(ContainElement(other))
		}).Should(Succeed())

		By("the Lease, made later, as leader election makes it")
		Expect(k8sClient.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: LeaderElectionID}})).To(Succeed())
		Eventually(func(g Gomega) {
			l := &coordinationv1.Lease{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: LeaderElectionID}, l)).To(Succeed())
			g.Expect(l).To(owned)
			g.Expect(l.OwnerReferences).To(HaveLen(1), "added once")
		}).Should(Succeed())
	})

	It("leaves them alone when no Deployment runs the manager", func() {
		namespace := newNamespace()
		createPod(namespace, "bare-manager", "10.9.0.2", nil, nil)
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "tls"}})).To(Succeed())
		// Start returns at once: there is nothing to own them.
		Expect((&ownedByDeployment{Reader: k8sClient, Client: k8sClient, Namespace: namespace, Pod: "bare-manager",
			Objects: managerObjects(DataPathOptions{CertSecret: "tls", CAConfigMap: "ca"}), Every: time.Hour, Log: logf.Log}).Start(ctx)).To(Succeed())
		s := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "tls"}, s)).To(Succeed())
		Expect(s.OwnerReferences).To(BeEmpty())
	})
})
