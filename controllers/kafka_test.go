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
