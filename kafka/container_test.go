package kafka

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func podWith(containers ...string) *corev1.Pod {
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = "kafka", "broker-0"
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c})
	}
	return pod
}

func TestBrokerContainer(t *testing.T) {
	for _, tc := range []struct {
		containers []string
		named      string
		want       string // "" for an error
	}{
		{[]string{"server"}, "", "server"},
		{[]string{"istio-proxy", "kafka"}, "", "kafka"},                         // a classic Istio sidecar
		{[]string{"broker", "kafka-exporter"}, "", "broker"},                    // Bitnami-style exporter
		{[]string{"cp-server", "istio-proxy", "jmx-exporter"}, "", "cp-server"}, // the only one not a sidecar
		{[]string{"cp-server", "audit-shipper"}, "", ""},                        // cannot tell
		{[]string{"cp-server", "audit-shipper"}, "cp-server", "cp-server"},      // named
		{[]string{"kafka", "istio-proxy"}, "missing", ""},                       // named, absent
	} {
		got, err := brokerContainer(podWith(tc.containers...), tc.named)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("brokerContainer(%v, %q) = %q, %v; want %q", tc.containers, tc.named, got, err, tc.want)
		}
	}
}

// The API server refuses a pod's log without a container when the pod has several;
// the follower says so rather than retrying in silence.
func TestFollowerReportsARefusedLog(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("container") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"a container name must be specified for pod broker-0, choose one of: [kafka istio-proxy]","reason":"BadRequest","code":400}`))
			return
		}
		_, _ = w.Write([]byte(time.Now().UTC().Format(time.RFC3339Nano) + " started\n"))
	}))
	defer srv.Close()
	cs := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	for container, want := range map[string]string{"": "a container name must be specified", "kafka": ""} {
		ctx, cancel := context.WithCancel(context.Background())
		opened := make(chan error, 1)
		f := &Follower{Source: KubeLogs{Client: cs}, Namespace: "kafka", Pod: "broker-0", Container: container, Retry: time.Hour,
			Opened: func(err error) { opened <- err; cancel() }}
		f.Run(ctx, func(time.Time, []byte) {})
		err := <-opened
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("container %q: opened %v, want %q", container, err, want)
		}
	}
}
