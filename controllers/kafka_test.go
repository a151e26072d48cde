package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
	"github.com/intent-mapper/intent-mapper/kafka"
)

// brokerLogs stands in for the kubelet's log stream (envtest has no kubelet): the
// lines a broker pod wrote, with their timestamps, followed until the test ends.
type brokerLogs struct {
	mu    sync.Mutex
	lines map[string][]string // pod → "TIMESTAMP text"
}

func (b *brokerLogs) write(pod, line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines[pod] = append(b.lines[pod], time.Now().UTC().Format(time.RFC3339Nano)+" "+line)
}

func (b *brokerLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(r.URL.Path, "/") // /api/v1/namespaces/NS/pods/POD/log
	if len(parts) != 8 || parts[7] != "log" {
		http.NotFound(w, r)
		return
	}
	b.mu.Lock()
	lines := append([]string(nil), b.lines[parts[6]]...)
	b.mu.Unlock()
	for _, l := range lines {
		_, _ = fmt.Fprintln(w, l)
	}
}

func authorizerLine(host, op, topic string) string {
	return fmt.Sprintf("[%s] INFO Principal = User:CN=client is Allowed Operation = %s from host = %s on resource = Topic:LITERAL:%s for request = Produce with resourceRefCount = 1 (kafka.authorizer.logger)",
		time.Now().UTC().Format("2006-01-02 15:04:05,000"), op, host, topic)
}

var _ = Describe("Kafka topic access from broker logs", func() {
	It("becomes a kafka call from the client to the broker, with topics and operations", func() {
		namespace := newNamespace()
		clientIP, brokerIP := nextIP(), nextIP()
		createDeployment(namespace, "orders", clientIP)
		createDeployment(namespace, "kafka", brokerIP)

		logs := &brokerLogs{lines: map[string][]string{}}
		srv := httptest.NewServer(logs)
		DeferCleanup(srv.Close)
		watcher := &kafka.Watcher{
			Client:   k8sClient,
			Source:   kafka.KubeLogs{Client: kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})},
			Recorder: &kafka.Recorder{Resolver: dataPath.Resolver, Add: dataPath.Pending.Add},
			Servers: func() []discoveryv1alpha1.KafkaServer {
				return []discoveryv1alpha1.KafkaServer{{Namespace: namespace, Name: "kafka"}}
			},
			Every: 200 * time.Millisecond,
		}
		wctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { _ = watcher.Start(wctx) }()

		brokerPod := "kafka-5d8f7c9b4-x7k2p"
		Eventually(func(g Gomega) {
			logs.write(brokerPod, authorizerLine(clientIP, "Write", "orders"))
			logs.write(brokerPod, authorizerLine(clientIP, "Describe", "orders"))
			logs.write(brokerPod, "\tat kafka.server.KafkaApis.handle(KafkaApis.scala:175)")
			logs.write(brokerPod, authorizerLine(clientIP, "Read", "payments"))
			call := callTo(g, intents(g, namespace, "orders"), namespace, "kafka")
			g.Expect(call.Type).To(Equal(discoveryv1alpha1.CallKafka))
			g.Expect(call.Kafka).To(Equal([]discoveryv1alpha1.KafkaTopic{
				{Name: "orders", Operations: []string{"describe", "write"}},
				{Name: "payments", Operations: []string{"read"}},
			}))
		}).Should(Succeed())

		By("exporting it as ClientIntents of type kafka")
		di := intents(Default, namespace, "orders")
		obj, err := declared.Export(di, declared.V1alpha3)
		Expect(err).NotTo(HaveOccurred())
		out, err := yaml.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("kafkaTopics:\n    - name: orders\n      operations:\n      - describe\n      - produce\n"))
		Expect(string(out)).To(ContainSubstring("type: kafka"))
	})
})

// containerLogs serves a multi-container pod's log as the API server does: only for
// a named container, refusing otherwise.
type containerLogs struct {
	*brokerLogs
	container string
}

func (c containerLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("container") {
	case c.container:
		c.brokerLogs.ServeHTTP(w, r)
	case "":
		http.Error(w, "a container name must be specified", http.StatusBadRequest)
	default:
		http.Error(w, "this container logs nothing of interest", http.StatusBadRequest)
	}
}

var _ = Describe("Kafka brokers in multi-container pods, logging as Strimzi and KRaft do", func() {
	It("says which broker it cannot read until spec.kafka names the container, then reads it", func() {
		namespace := newNamespace()
		clientIP, brokerIP := nextIP(), nextIP()
		createDeployment(namespace, "reports", clientIP)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-broker-0", Namespace: namespace, Labels: map[string]string{"strimzi.io/kind": "Kafka"}},
			Spec: corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{
				{Name: "server", Image: "kafka:4"}, {Name: "istio-proxy", Image: "proxy:1"}, {Name: "audit-shipper", Image: "shipper:1"},
			}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: brokerIP, PodIPs: []corev1.PodIP{{IP: brokerIP}}}
		Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
		waitResolvable(brokerIP)

		logs := &brokerLogs{lines: map[string][]string{}}
		srv := httptest.NewServer(containerLogs{logs, "server"})
		DeferCleanup(srv.Close)
		var mu sync.Mutex
		server := discoveryv1alpha1.KafkaServer{Namespace: namespace, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"strimzi.io/kind": "Kafka"}}}
		watcher := &kafka.Watcher{
			Client:   k8sClient,
			Source:   kafka.KubeLogs{Client: kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})},
			Recorder: &kafka.Recorder{Resolver: dataPath.Resolver, Add: dataPath.Pending.Add},
			Servers: func() []discoveryv1alpha1.KafkaServer {
				mu.Lock()
				defer mu.Unlock()
				return []discoveryv1alpha1.KafkaServer{server}
			},
			Every: 200 * time.Millisecond,
		}
		wctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { _ = watcher.Start(wctx) }()

		By("naming no container: the broker is reported, not silently skipped")
		Eventually(watcher.Problems).Should(ConsistOf(ContainSubstring(namespace + "/cluster-broker-0: ")))

		By("naming the container: its Strimzi log4j2 lines with KRaft's operations are read")
		mu.Lock()
		server.Container = "server"
		mu.Unlock()
		Eventually(func(g Gomega) {
			stamp := time.Now().UTC().Format("2006-01-02 15:04:05")
			line := func(op string) string {
				return stamp + " DEBUG [data-plane-kafka-request-handler-1] logger:75 - Principal = User:CN=This is reports is Allowed operation = " + op +
					" from host = " + clientIP + " on resource = Topic:LITERAL:sales for request = DescribeConfigs with resourceRefCount = 1 based on rule DefaultAllow"
			}
			logs.write(pod.Name, line("DESCRIBE_CONFIGS"))
			logs.write(pod.Name, line("ALTER_CONFIGS"))
			call := callTo(g, intents(g, namespace, "reports"), namespace, pod.Name)
			g.Expect(call.Kafka).To(Equal([]discoveryv1alpha1.KafkaTopic{{Name: "sales", Operations: []string{"alterconfigs", "describeconfigs"}}}))
		}).Should(Succeed())
		Expect(watcher.Problems()).To(BeEmpty())

		By("exporting KRaft's operations in ClientIntents' names")
		obj, err := declared.Export(intents(Default, namespace, "reports"), declared.V1alpha3)
		Expect(err).NotTo(HaveOccurred())
		out, err := yaml.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("- name: sales\n      operations:\n      - AlterConfigs\n      - DescribeConfigs\n"))
	})
})
