package pods

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/intent-mapper/intent-mapper/agent/pods/podstest"
)

// apiServer starts a real kube-apiserver; it returns a client for the test and the
// agent's config, read from a kubeconfig as a user writes it.
func apiServer(t *testing.T) (kubernetes.Interface, *Config) {
	t.Helper()
	cs, path := podstest.APIServer(t)
	cfg, err := FromKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cfg
}

func createPod(t *testing.T, cs kubernetes.Interface, name, node, ip string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "c"}}},
	}
	created, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// names lists the watcher's pods as "name ip running labels", sorted.
func names(w *Watcher) []string {
	pods := w.List()
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, fmt.Sprintf("%s/%s %s %v %v", p.Namespace, p.Name, p.IP, p.Running, p.Labels))
	}
	slices.Sort(out)
	return out
}

func TestWatcherKeepsOneNodesPods(t *testing.T) {
	cs, cfg := apiServer(t)
	for i := range 5 { // more than a page: the list is read in pages of two
		createPod(t, cs, fmt.Sprintf("a%d", i), "node-a", fmt.Sprintf("10.244.1.%d", i+1), nil)
	}
	createPod(t, cs, "b0", "node-b", "10.244.2.1", nil)

	var mu sync.Mutex
	var gone []string
	w := NewWatcher(cfg, "node-a", func(p Pod) { mu.Lock(); gone = append(gone, p.Name+" "+p.IP.String()); mu.Unlock() })
	w.pageSize = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	if !w.WaitSynced(ctx) {
		t.Fatal("never listed")
	}
	want := []string{}
	for i := range 5 {
		want = append(want, fmt.Sprintf("default/a%d 10.244.1.%d true map[]", i, i+1))
	}
	if got := names(w); !slices.Equal(got, want) {
		t.Fatalf("after the list:\n got %q\nwant %q", got, want)
	}

	createPod(t, cs, "a5", "node-a", "10.244.1.6", map[string]string{"security.istio.io/tlsMode": "istio"})
	createPod(t, cs, "b1", "node-b", "10.244.2.2", nil)
	if err := cs.CoreV1().Pods("default").Delete(ctx, "a0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	want = append(want[1:], "default/a5 10.244.1.6 true map[security.istio.io/tlsMode:istio]")
	podstest.WaitFor(t, "the watch to add a5 and remove a0", func() bool { return slices.Equal(names(w), want) })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(gone, []string{"a0 10.244.1.1"}) {
		t.Errorf("gone was told %q, want only a0", gone)
	}
}

func TestWatcherRefusedIsAnErrorNotAnEmptyNode(t *testing.T) {
	_, cfg := apiServer(t)
	cfg.TLS = cfg.TLS.Clone()
	cfg.TLS.Certificates = nil // anonymous: the API server refuses the list
	w := NewWatcher(cfg, "node-a", nil)
	_, err := w.list(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") {
		t.Fatalf("an anonymous list gave %v, want a refusal", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go w.Run(ctx)
	if w.WaitSynced(ctx) {
		t.Fatal("synced without a list")
	}
}

// A watch stream as the API server writes it: one JSON event after another.
const stream = `{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"shop","uid":"u1","resourceVersion":"101","labels":{"app":"web"}},"spec":{"nodeName":"node-a"},"status":{"phase":"Pending"}}}
{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"shop","uid":"u1","resourceVersion":"102","labels":{"app":"web"}},"spec":{"nodeName":"node-a"},"status":{"phase":"Running","podIP":"fd00::7"}}}
{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"150"}}}
`

func TestFollowAppliesEventsAndKeepsTheVersion(t *testing.T) {
	w := NewWatcher(&Config{}, "node-a", nil)
	rv, err := w.follow(strings.NewReader(stream), "100")
	if err != nil || rv != "150" {
		t.Fatalf("follow: %q, %v; want version 150 (the bookmark's)", rv, err)
	}
	got := w.List()
	if len(got) != 1 || got[0].IP != netip.MustParseAddr("fd00::7") || !got[0].Running || got[0].Labels["app"] != "web" {
		t.Fatalf("pods %+v, want web running at fd00::7", got)
	}
}

func TestFollowExpiredAsksForANewList(t *testing.T) {
	w := NewWatcher(&Config{}, "node-a", nil)
	expired := `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (120)","reason":"Expired","code":410}}` + "\n"
	if _, err := w.follow(strings.NewReader(expired), "5"); !errors.Is(err, errExpired) {
		t.Fatalf("a 410 event gave %v, want errExpired", err)
	}
	if _, err := w.follow(strings.NewReader(`{"type":"ADDED","object":{"metadata":{"name":`), "5"); err == nil {
		t.Fatal("a cut stream was taken whole")
	}
}

func FuzzFollow(f *testing.F) {
	f.Add([]byte(stream))
	f.Add([]byte(`{"type":"DELETED","object":{"metadata":{"uid":"u1","resourceVersion":"9"}}}`))
	f.Add([]byte(`{"type":"ERROR","object":{"code":500}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := NewWatcher(&Config{}, "node-a", func(Pod) {})
		_, _ = w.follow(strings.NewReader(string(raw)), "1")
		for _, p := range w.List() {
			_ = p.IP.String()
		}
	})
}

func TestFromKubeconfigRefusesWhatItCannotUse(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no context":  "apiVersion: v1\nkind: Config\ncurrent-context: gone\n",
		"no server":   "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {}\n",
		"bad CA":      "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: bm90IGEgY2VydA==}\n",
		"not yaml":    "current-context: [",
		"missing key": "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443'}\nusers:\n- name: u\n  user: {client-key: nowhere.key}\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := FromKubeconfig(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
