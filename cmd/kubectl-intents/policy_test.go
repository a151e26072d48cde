package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var istioCRDs sync.Once

// installIstioCRDs installs Istio's own CRDs, read from the istio.io/api module.
func installIstioCRDs(t *testing.T) {
	t.Helper()
	istioCRDs.Do(func() {
		dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
		if err != nil {
			t.Fatalf("locating istio.io/api: %v", err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(strings.TrimSpace(string(dir)), "kubernetes", "customresourcedefinitions.gen.yaml")
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{path}, ErrorIfPathMissing: true}); err != nil {
			t.Fatalf("installing Istio's CRDs: %v", err)
		}
	})
}

// intents runs the plugin and returns standard output, standard error and the exit code.
func intents(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := runAt(append([]string{"--kubeconfig", kubeconfig}, args...), strings.NewReader(""), &out, &errOut, func() time.Time { return now })
	return out.String(), errOut.String(), code
}

// deployment creates a Deployment whose pods carry app=NAME (or labels), run as
// ServiceAccount NAME, and serve port 8080 named http.
func deployment(t *testing.T, ns, name string, podLabels map[string]string) {
	t.Helper()
	if podLabels == nil {
		podLabels = map[string]string{"app": name}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{
					Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	if err := k8s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// service creates a Service NAME selecting app=NAME, port 80 to the pods' named port http.
func service(t *testing.T, ns, name string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
}

func namespace(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
}

// observed writes a client's DiscoveredIntents with its ServiceAccount and calls.
func observed(t *testing.T, ns, name string, calls ...discoveryv1alpha1.Call) *discoveryv1alpha1.DiscoveredIntents {
	t.Helper()
	di := &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: name, Kind: discoveryv1alpha1.KindDeployment}},
	}
	if err := k8s.Create(ctx, di); err != nil {
		t.Fatal(err)
	}
	di.Status.ServiceAccounts = []string{name}
	di.Status.Calls = calls
	for i := range di.Status.Calls {
		di.Status.Calls[i].LastSeen = ts(now.Add(-time.Minute))
	}
	di.Status.Sort()
	if err := k8s.Status().Update(ctx, di); err != nil {
		t.Fatal(err)
	}
	return di
}

func viaService(ns, name string, typ discoveryv1alpha1.CallType, http ...discoveryv1alpha1.HTTPPath) discoveryv1alpha1.Call {
	return discoveryv1alpha1.Call{Name: name, Namespace: ns, Kind: discoveryv1alpha1.KindDeployment, Type: typ,
		Services: []string{name}, Ports: []int32{80}, HTTP: http}
}

// applyStrict creates every object of a YAML stream as written, with strict field
// validation, as kubectl apply --validate=strict would.
func createStrict(t *testing.T, stream string, opts ...client.CreateOption) int {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	n := 0
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := k8s.Create(ctx, u, append(opts, client.FieldValidation(metav1.FieldValidationStrict))...); err != nil {
			t.Fatalf("applying %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		n++
	}
	return n
}

func TestPoliciesFromTheMapAllowExactlyWhatWasObserved(t *testing.T) {
	installIstioCRDs(t)
	namespace(t, "lock", "lock-reports")
	for _, name := range []string{"web", "api", "db", "worker"} {
		deployment(t, "lock", name, nil)
	}
	deployment(t, "lock-reports", "reports", nil)
	service(t, "lock", "api")
	service(t, "lock-reports", "reports")
	observed(t, "lock", "web",
		viaService("lock", "api", discoveryv1alpha1.CallHTTP,
			discoveryv1alpha1.HTTPPath{Path: "/items/*", Methods: []string{"GET"}},
			discoveryv1alpha1.HTTPPath{Path: "/orders", Methods: []string{"POST"}}),
		discoveryv1alpha1.Call{Name: "db", Namespace: "lock", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallTCP, Ports: []int32{8080}},
		discoveryv1alpha1.Call{Name: "198.51.100.7", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
			Internet: &discoveryv1alpha1.InternetTarget{IPs: []string{"198.51.100.7"}}})
	observed(t, "lock", "api", viaService("lock-reports", "reports", discoveryv1alpha1.CallTCP))
	worker := observed(t, "lock", "worker", viaService("lock", "api", discoveryv1alpha1.CallTCP))

	dir := t.TempDir()
	export := func(file string, args ...string) string {
		out, errOut, code := intents(append([]string{"export", "-n", "lock"}, args...)...)
		if code != 0 || errOut != "" {
			t.Fatalf("export %v: exit %d\n%s", args, code, errOut)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	netpols := export("networkpolicies.yaml", "--format", "networkpolicy", "--egress")
	authz := export("authorizationpolicies.yaml", "--format", "authorizationpolicy")
	for _, want := range []string{
		"name: api-ingress", "name: reports-ingress", "name: web-egress",
		"kubernetes.io/metadata.name: lock", // reports is reached from another namespace
		"port: 8080", "cidr: 198.51.100.7/32",
	} {
		if !strings.Contains(netpols, want) {
			t.Errorf("NetworkPolicies lack %q:\n%s", want, netpols)
		}
	}
	for _, want := range []string{
		"cluster.local/ns/lock/sa/web", "cluster.local/ns/lock/sa/worker", "- /items/*", "- POST", "app: api",
	} {
		if !strings.Contains(authz, want) {
			t.Errorf("AuthorizationPolicies lack %q:\n%s", want, authz)
		}
	}
	if n := createStrict(t, netpols); n != 6 { // 3 servers' ingress, 3 clients' egress
		t.Errorf("%d NetworkPolicies applied, want 6", n)
	}
	if n := createStrict(t, authz); n != 3 {
		t.Errorf("%d AuthorizationPolicies applied, want 3 (api, db, reports)", n)
	}

	out, _, code := intents("preview", "-n", "lock", "-f", dir)
	if code != 0 || !strings.Contains(out, ": 0 would be denied") {
		t.Errorf("preview of the map's own policies: exit %d\n%s", code, out)
	}
	out, _, code = intents("preview", "-n", "lock") // the AuthorizationPolicies applied above
	if code != 0 || !strings.Contains(out, "3 AuthorizationPolicies") {
		t.Errorf("preview of the cluster's policies: exit %d\n%s", code, out)
	}

	// Policies made without the worker deny exactly the worker's call.
	if err := k8s.Delete(ctx, worker); err != nil {
		t.Fatal(err)
	}
	without := t.TempDir()
	dir = without
	export("networkpolicies.yaml", "--format", "networkpolicy", "--egress")
	export("authorizationpolicies.yaml", "--format", "authorizationpolicy")
	observed(t, "lock", "worker", viaService("lock", "api", discoveryv1alpha1.CallTCP))
	out, _, code = intents("preview", "-n", "lock", "-f", without)
	if code != 1 || !strings.Contains(out, ": 1 would be denied") || !strings.Contains(out, "- worker.lock -> api.lock:8080: ingress of api isolated") {
		t.Errorf("preview without the worker must list its one call: exit %d\n%s", code, out)
	}
}

func TestPoliciesReportWhatTheyCannotSelect(t *testing.T) {
	namespace(t, "unclear")
	deployment(t, "unclear", "blue", map[string]string{"app": "shop"})
	deployment(t, "unclear", "green", map[string]string{"app": "shop", "track": "green"})
	deployment(t, "unclear", "db", nil)
	observed(t, "unclear", "blue",
		discoveryv1alpha1.Call{Name: "db", Namespace: "unclear", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallTCP, Ports: []int32{8080}})
	observed(t, "unclear", "green",
		discoveryv1alpha1.Call{Name: "db", Namespace: "unclear", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallTCP, Ports: []int32{8080}},
		discoveryv1alpha1.Call{Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
			Internet: &discoveryv1alpha1.InternetTarget{Domains: []string{"api.stripe.com"}}})

	out, errOut, code := intents("export", "-n", "unclear", "--format", "networkpolicy", "--egress")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "client blue.unclear: not selected: labels app=shop also select [green]") {
		t.Errorf("the ambiguous client must be reported:\n%s", errOut)
	}
	if strings.Contains(out, "name: blue-egress") || !strings.Contains(out, "name: green-egress") {
		t.Errorf("only green's labels select it alone:\n%s", out)
	}
	if !strings.Contains(out, "# review: not allowed here, by name only: api.stripe.com") {
		t.Errorf("names need FQDN policies, and the export must say so:\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "np.yaml")
	_ = os.WriteFile(file, []byte(out), 0o644)
	got, _, code := intents("preview", "-n", "unclear", "-f", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, got)
	}
	for _, want := range []string{
		"- blue.unclear -> db.unclear:8080: ingress of db isolated",
		"- green.unclear -> api.stripe.com:443: egress of green isolated by NetworkPolicy unclear/green-egress, no rule allows it (a name",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("preview must list %q:\n%s", want, got)
		}
	}
	if _, _, code := intents("preview", "-n", "unclear", "-f", filepath.Join(t.TempDir(), "nothing")); code != 2 {
		t.Errorf("a missing file is an error (exit 2), got %d", code)
	}
}
