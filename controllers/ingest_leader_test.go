package controllers

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	"github.com/intent-mapper/intent-mapper/controllers/certs"
	"github.com/intent-mapper/intent-mapper/controllers/ingest"
)

// managerPod is a pod as the manager Deployment's template makes it.
func managerPod(namespace, name, image string, leader bool) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{labelName: projectName, labelComponent: "manager"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "log-shipper", Image: "registry.example/shipper:1"},
			{Name: ManagerContainer, Image: image},
		}},
	}
	if leader {
		pod.Labels[LabelIngestLeader] = "true"
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
}

// selected lists the pods a Service's selector picks, as its endpoints would.
func selected(g Gomega, namespace string, selector map[string]string) []string {
	pods := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(selector)})).To(Succeed())
	names := make([]string, 0, len(pods.Items))
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

var _ = Describe("the ingest leader", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	run := func(l *ingestLeader) (stop func()) {
		runCtx, cancelRun := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(l.Start(runCtx)).To(Succeed())
		}()
		return func() { cancelRun(); Eventually(done).Should(BeClosed()) }
	}

	It("moves the label the ingest Service selects to the pod that leads, and takes it away when it stops", func() {
		managerPod(namespace, "manager-old", "intent-mapper:0.1.0", true)
		managerPod(namespace, "manager-new", "intent-mapper:0.2.0", false)
		elected := make(chan struct{})
		server := &ingest.Server{}
		stop := run(&ingestLeader{Client: k8sClient, Reader: k8sClient, Server: server, Elected: elected, Namespace: namespace, Pod: "manager-new", Retry: 50 * time.Millisecond})

		By("waiting for the lease: reports refused, the old leader still selected")
		Consistently(server.Leading).WithTimeout(300 * time.Millisecond).Should(BeFalse())
		Expect(selected(Default, namespace, ingestSelector())).To(ConsistOf("manager-old"))

		By("winning the lease")
		close(elected)
		Eventually(server.Leading).Should(BeTrue())
		Eventually(func(g Gomega) { g.Expect(selected(g, namespace, ingestSelector())).To(ConsistOf("manager-new")) }).Should(Succeed())

		By("stopping")
		stop()
		Expect(server.Leading()).To(BeFalse())
		Expect(selected(Default, namespace, ingestSelector())).To(BeEmpty())
	})

	It("drops a stale label from its own pod while it does not lead", func() {
		managerPod(namespace, "manager-restarted", "intent-mapper:0.1.0", true)
		stop := run(&ingestLeader{Client: k8sClient, Reader: k8sClient, Server: &ingest.Server{}, Elected: make(chan struct{}), Namespace: namespace, Pod: "manager-restarted", Retry: 50 * time.Millisecond})
		defer stop()
		Eventually(func(g Gomega) { g.Expect(selected(g, namespace, ingestSelector())).To(BeEmpty()) }).Should(Succeed())
	})

	It("is what config/manager's ingest Service selects, as the Service IntentMapper keeps does", func() {
		raw, err := os.ReadFile("../config/manager/ingest_service.yaml")
		Expect(err).NotTo(HaveOccurred())
		svc := &corev1.Service{}
		Expect(yaml.UnmarshalStrict(raw, svc)).To(Succeed())
		Expect(svc.Spec.Selector).To(Equal(ingestSelector()))
	})

	It("lets a replica that does not lead be Ready, serve TLS with the leader's certificate, and answer 503 with Retry-After", func() {
		follower := &certs.SelfSigned{
			Client: k8sClient, Reader: k8sClient, Namespace: managerNamespace, SecretName: "intent-mapper-ingest-tls",
			Check: time.Hour, Elected: make(chan struct{}), // never elected
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		server := &ingest.Server{Listener: ln, GetCertificate: follower.GetCertificate, MaxBody: ingest.DefaultMaxBody}
		runCtx, cancelRun := context.WithCancel(ctx)
		defer cancelRun()
		for _, r := range []interface{ Start(context.Context) error }{follower, server} {
			go func() { defer GinkgoRecover(); Expect(r.Start(runCtx)).To(Succeed()) }()
		}
		secret := &corev1.Secret{}
		Eventually(func() error { // the suite's manager leads and keeps the Secret
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: "intent-mapper-ingest-tls"}, secret)
		}).Should(Succeed())

		Eventually(func() error { return server.Ready(nil) }).Should(Succeed(), "ready without the lease")
		Expect(server.Leading()).To(BeFalse())
		before := testutil.ToFloat64(ingest.ReportsTotal(ingest.NotLeader))
		var resp *http.Response
		Eventually(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ln.Addr().String()+ingest.Path, bytes.NewReader(reportJSON(&reportv1.Report{})))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+agentToken())
			resp, err = ingestClient().Do(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			return err
		}).Should(Succeed(), "TLS with the certificate the leader keeps")
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
		Expect(resp.Header.Get("Retry-After")).To(Equal(ingest.RetryAfter))
		Expect(testutil.ToFloat64(ingest.ReportsTotal(ingest.NotLeader))).To(BeNumerically(">", before), "counted")

		after := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(secret), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(secret.ResourceVersion), "a replica that does not lead writes nothing")
	})
})

var _ = Describe("the agents' image", func() {
	It("is the manager's own container's image, unless one is named", func() {
		namespace := newNamespace()
		managerPod(namespace, "manager-abc", "registry.example/intent-mapper:0.1.0", false)
		image, err := AgentImage(ctx, k8sClient, "", namespace, "manager-abc", "intent-mapper:latest")
		Expect(err).NotTo(HaveOccurred())
		Expect(image).To(Equal("registry.example/intent-mapper:0.1.0"))

		image, err = AgentImage(ctx, k8sClient, "registry.example/agent:9", namespace, "manager-abc", "intent-mapper:latest")
		Expect(err).NotTo(HaveOccurred())
		Expect(image).To(Equal("registry.example/agent:9"), "--agent-image or AGENT_IMAGE wins")

		image, err = AgentImage(ctx, k8sClient, "", namespace, "", "intent-mapper:latest")
		Expect(err).NotTo(HaveOccurred())
		Expect(image).To(Equal("intent-mapper:latest"), "outside a pod")

		_, err = AgentImage(ctx, k8sClient, "", namespace, "manager-gone", "intent-mapper:latest")
		Expect(err).To(MatchError(ContainSubstring("manager-gone")), "a pod that cannot be read is an error, not a silent :latest")
	})
})
