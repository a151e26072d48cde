package envoy

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/intent-mapper/intent-mapper/agent/pods"
	"github.com/intent-mapper/intent-mapper/agent/pods/podstest"
)

// apiServer starts a real kube-apiserver; it returns a client for the test and the
// agent's config, read from a kubeconfig as a user writes it.
func apiServer(t *testing.T) (kubernetes.Interface, *pods.Config) {
	t.Helper()
	cs, path := podstest.APIServer(t)
	cfg, err := pods.FromKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cfg
}

func runningPod(t *testing.T, cs kubernetes.Interface, ns, name, node, ip string, podLabels map[string]string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: podLabels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "c"}}},
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryFindsThisNodesProxies(t *testing.T) {
	cs, agentCfg := apiServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ns := range []string{"shop", "istio-system"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sidecar := map[string]string{"security.istio.io/tlsMode": "istio"}
	runningPod(t, cs, "shop", "client", "node-a", "10.244.1.7", sidecar)
	runningPod(t, cs, "shop", "plain", "node-a", "10.244.1.8", nil)
	runningPod(t, cs, "shop", "elsewhere", "node-b", "10.244.2.7", sidecar)
	runningPod(t, cs, "shop", "waypoint", "node-a", "10.244.1.9", map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller"})
	runningPod(t, cs, "istio-system", "ztunnel-x1", "node-a", "10.244.1.10", map[string]string{"app": "ztunnel"})

	var mu sync.Mutex
	var gone []netip.Addr
	sel := DefaultSelectors()
	sel.Ambient = true
	d := NewDiscovery(agentCfg, "node-a", sel, func(ip netip.Addr) { mu.Lock(); gone = append(gone, ip); mu.Unlock() })
	if !d.Start(ctx) {
		t.Fatal("never synced")
	}
	want := []Proxy{
		{IP: netip.MustParseAddr("10.244.1.7")},
		{IP: netip.MustParseAddr("10.244.1.9")},
		{IP: netip.MustParseAddr("10.244.1.10"), Ztunnel: true},
	}
	podstest.WaitFor(t, "the node's three proxies", func() bool {
		got := d.Proxies()
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	})

	zero := int64(0)
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "client", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	podstest.WaitFor(t, "the deleted proxy reported gone", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gone) == 1 && gone[0] == netip.MustParseAddr("10.244.1.7")
	})
}
