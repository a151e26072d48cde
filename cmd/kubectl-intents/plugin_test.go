package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
)

var (
	kubeconfig string
	k8s        client.Client
	restConfig *rest.Config
	ctx        = context.Background()
	now        = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
)

func TestMain(m *testing.M) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs("../../bin/k8s")
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{"../../config/crd/bases", "testdata/otterize-clientintents-crd.yaml"},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		panic(err)
	}
	restConfig = cfg
	code := func() int {
		defer func() { _ = env.Stop() }()
		user, err := env.AddUser(envtest.User{Name: "tester", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			panic(err)
		}
		raw, err := user.KubeConfig()
		if err != nil {
			panic(err)
		}
		dir, _ := os.MkdirTemp("", "kubectl-intents")
		defer func() { _ = os.RemoveAll(dir) }()
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
			panic(err)
		}
		if k8s, err = client.New(cfg, client.Options{Scheme: scheme()}); err != nil {
			panic(err)
		}
		return m.Run()
	}()
	os.Exit(code)
}

func ts(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

// seed writes the Istio tutorial's DiscoveredIntents into a namespace of its own.
func seed(t *testing.T, ns string) {
	t.Helper()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		client, method, path string
		seen                 time.Time
	}{{"client", "GET", "/client-path", now.Add(-5 * time.Minute)}, {"client2", "POST", "/client2-path", now.Add(-3 * time.Hour)}} {
		di := &discoveryv1alpha1.DiscoveredIntents{
			ObjectMeta: metav1.ObjectMeta{Name: d.client, Namespace: ns},
			Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: d.client, Kind: discoveryv1alpha1.KindDeployment}},
		}
		if err := k8s.Create(ctx, di); err != nil {
			t.Fatal(err)
		}
		di.Status.Calls = []discoveryv1alpha1.Call{{
			Name: "nginx", Namespace: ns, Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallHTTP,
			Ports: []int32{80}, HTTP: []discoveryv1alpha1.HTTPPath{{Path: d.path, Methods: []string{d.method}, LastSeen: ts(d.seen)}},
			FirstSeen: ts(d.seen), LastSeen: ts(d.seen),
		}}
		if d.client == "client" {
			di.Status.Calls = append(di.Status.Calls, discoveryv1alpha1.Call{
				Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
				Internet: &discoveryv1alpha1.InternetTarget{Domains: []string{"api.stripe.com"}}, FirstSeen: ts(d.seen), LastSeen: ts(d.seen),
			})
		}
		if err := k8s.Status().Update(ctx, di); err != nil {
			t.Fatal(err)
		}
	}
}

// kubectlIntents runs the plugin as `kubectl intents ARGS` would, with the test's kubeconfig.
func kubectlIntents(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	out, errOut, code := kubectlIntentsErr(t, stdin, args...)
	if code == 2 {
		t.Logf("stderr: %s", errOut)
	}
	return out, code
}

// kubectlIntentsErr also returns what the plugin wrote to standard error.
func kubectlIntentsErr(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runAt(append([]string{"--kubeconfig", kubeconfig}, args...), strings.NewReader(stdin), &out, &errOut, func() time.Time { return now })
	return out.String(), errOut.String(), code
}

func golden(t *testing.T, got, name string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		_ = os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestListAndExport(t *testing.T) {
	seed(t, "tutorial")
	out, code := kubectlIntents(t, "", "list", "-n", "tutorial")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	golden(t, out, "list.golden")

	out, _ = kubectlIntents(t, "", "list", "-n", "tutorial", "--since", "1h")
	if strings.Contains(out, "client2") || !strings.Contains(out, "client in namespace tutorial calls:") {
		t.Errorf("--since 1h keeps only client:\n%s", out)
	}

	out, code = kubectlIntents(t, "", "export", "-n", "tutorial")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The test CRD serves all five versions; Kubernetes prefers the newest, v2beta1.
	golden(t, out, "export-v2beta1.golden")
	out, _ = kubectlIntents(t, "", "export", "-n", "tutorial", "--api-version", declared.V1alpha3)
	golden(t, out, "export-v1alpha3.golden")

	out, _ = kubectlIntents(t, "", "export", "-A", "--server", "nginx.tutorial", "--format", "json")
	list := map[string]any{}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list["kind"] != "List" || list["apiVersion"] != "v1" {
		t.Errorf("json export is not a v1 List: %v\n%s", err, out)
	}
	objs, err := declared.ParseYAML(strings.NewReader(out))
	if err != nil || len(objs) != 2 {
		t.Errorf("json export of nginx's clients: %v %d", err, len(objs))
	}
}

func TestReset(t *testing.T) {
	seed(t, "reset")
	out, _ := kubectlIntents(t, "n\n", "reset", "-n", "reset")
	if !strings.Contains(out, "nothing deleted") {
		t.Errorf("declined: %s", out)
	}
	if _, code := kubectlIntents(t, "", "reset", "-n", "reset", "client2", "--yes"); code != 0 {
		t.Fatal("reset one client")
	}
	list := &discoveryv1alpha1.DiscoveredIntentsList{}
	_ = k8s.List(ctx, list, client.InNamespace("reset"))
	if len(list.Items) != 1 || list.Items[0].Name != "client" {
		t.Errorf("left %v", list.Items)
	}
	out, _ = kubectlIntents(t, "y\n", "reset", "-n", "reset")
	_ = k8s.List(ctx, list, client.InNamespace("reset"))
	if len(list.Items) != 0 || !strings.Contains(out, "deleted reset/client") {
		t.Errorf("confirmed: %s, left %d", out, len(list.Items))
	}
}
