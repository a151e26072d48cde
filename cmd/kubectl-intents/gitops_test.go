package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
)

// seedGitOps writes what a platform team sees: HTTP (with a HEAD-only path and a
// truncated call), a Service that selects no pods, a cross-namespace call, TCP,
// internet, Kafka (with an operation ClientIntents cannot name), and workloads
// whose names hold a dot.
func seedGitOps(t *testing.T, ns string) {
	t.Helper()
	for _, n := range []string{ns, ns + "-infra"} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := ts(now.Add(-time.Minute))
	path := func(p string, methods ...string) discoveryv1alpha1.HTTPPath {
		return discoveryv1alpha1.HTTPPath{Path: p, Methods: methods, LastSeen: seen}
	}
	call := func(c discoveryv1alpha1.Call) discoveryv1alpha1.Call {
		c.FirstSeen, c.LastSeen = seen, seen
		return c
	}
	write(t, ns, "web", call(discoveryv1alpha1.Call{
		Name: "api", Namespace: ns, Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallHTTP, Ports: []int32{8080},
		HTTP: []discoveryv1alpha1.HTTPPath{path("/healthz", "HEAD"), path("/orders", "GET", "HEAD", "POST")},
	}), call(discoveryv1alpha1.Call{
		Name: "catalog", Namespace: ns, Kind: discoveryv1alpha1.KindStatefulSet, Type: discoveryv1alpha1.CallHTTP, Ports: []int32{80},
		HTTP: []discoveryv1alpha1.HTTPPath{path("/items/*", "GET")}, Truncated: true,
	}), call(discoveryv1alpha1.Call{
		Name: "legacy-db", Namespace: ns + "-infra", Type: discoveryv1alpha1.CallTCP, Ports: []int32{5432}, Services: []string{"legacy-db"},
	}), call(discoveryv1alpha1.Call{
		Name: "cache", Namespace: ns + "-infra", Kind: discoveryv1alpha1.KindStatefulSet, Type: discoveryv1alpha1.CallTCP, Ports: []int32{6379},
	}), call(discoveryv1alpha1.Call{
		Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
		Internet: &discoveryv1alpha1.InternetTarget{Domains: []string{"api.stripe.com"}, IPs: []string{"203.0.113.7"}},
	}), call(discoveryv1alpha1.Call{
		Name: "payments.v1", Namespace: ns, Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallTCP, Ports: []int32{9000},
	}))
	write(t, ns, "orders", call(discoveryv1alpha1.Call{
		Name: "kafka", Namespace: ns + "-infra", Kind: discoveryv1alpha1.KindStatefulSet, Type: discoveryv1alpha1.CallKafka, Ports: []int32{9092},
		Kafka: []discoveryv1alpha1.KafkaTopic{
			{Name: "orders", Operations: []string{"Describe", "DescribeTokens", "Write"}},
			{Name: "payments", Operations: []string{"Read"}},
		},
	}))
	write(t, ns, "web.v2", call(discoveryv1alpha1.Call{
		Name: "api", Namespace: ns, Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallTCP, Ports: []int32{8080},
	}))
}

func write(t *testing.T, ns, client string, calls ...discoveryv1alpha1.Call) {
	t.Helper()
	di := &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: client, Namespace: ns},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: client, Kind: discoveryv1alpha1.KindDeployment}},
	}
	if err := k8s.Create(ctx, di); err != nil {
		t.Fatal(err)
	}
	di.Status.Calls = calls
	if err := k8s.Status().Update(ctx, di); err != nil {
		t.Fatal(err)
	}
}

// applyStrict server-side applies an object as `kubectl apply --server-side
// --validate=strict` does; dryRun leaves the cluster as it was.
func applyStrict(obj *unstructured.Unstructured, dryRun bool) error {
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil {
		return err
	}
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "gitops-test", Force: new(true), FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = dyn.Resource(gv.WithResource("clientintents")).Namespace(obj.GetNamespace()).
		Patch(ctx, obj.GetName(), types.ApplyPatchType, raw, opts)
	return err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEveryExportAppliesStrictlyAndDiffAgrees(t *testing.T) {
	const ns = "gitops"
	seedGitOps(t, ns)
	for _, version := range declared.Writable {
		t.Run(strings.TrimPrefix(version, declared.Group+"/"), func(t *testing.T) {
			out, stderr, code := kubectlIntentsErr(t, "", "export", "-n", ns, "--api-version", version)
			if code != 0 {
				t.Fatalf("export: exit %d: %s", code, stderr)
			}
			for _, want := range []string{
				"gitops/web -> gitops/api: HEAD /healthz: ClientIntents have no method HEAD",
				"gitops/web -> gitops/api: HEAD /orders",
				"gitops/web -> gitops/catalog: truncated",
				"gitops/web -> gitops/payments.v1: server name contains '.'",
				"gitops/web.v2: workload name contains '.'",
				"gitops/orders -> gitops-infra/kafka: topic orders: ClientIntents have no operation DescribeTokens",
			} {
				if !strings.Contains(stderr, want) || !strings.Contains(out, "#   "+want) {
					t.Errorf("export must report %q on stderr and as a YAML comment:\n%s\n%s", want, stderr, out)
				}
			}
			objs, err := declared.ParseYAML(strings.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 2 {
				t.Fatalf("want ClientIntents for web and orders (web.v2 cannot have one), got %d", len(objs))
			}
			// Only the stored version reads back as written without Otterize's conversion webhook.
			stored := version == declared.V2alpha1
			for _, o := range objs {
				if o.GetAPIVersion() != version {
					t.Errorf("%s written as %s", o.GetName(), o.GetAPIVersion())
				}
				if err := applyStrict(o, !stored); err != nil {
					t.Errorf("applying %s with strict validation: %v", o.GetName(), err)
				}
			}
			file := writeFile(t, t.TempDir(), "intents.yaml", out)
			if got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", file); code != 0 {
				t.Errorf("diff against the export: exit %d\n%s", code, got)
			}
			if !stored {
				return
			}
			if got, code := kubectlIntents(t, "", "diff", "-n", ns, "--api-version", version); code != 0 {
				t.Errorf("diff against the applied ClientIntents: exit %d\n%s", code, got)
			}
			for _, o := range objs {
				if err := k8s.Delete(ctx, o); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestStrictValidationRejectsWhatOtterizeWould(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: default}\nspec:\n  workload: {name: a}\n  targets:\n  - kubernetes: {name: b, http: [{path: /, methods: [HEAD]}]}\n",
		"apiVersion: k8s.otterize.com/v1alpha3\nkind: ClientIntents\nmetadata: {name: a, namespace: default}\nspec:\n  service: {name: a}\n  calls:\n  - {name: b, kafkaTopic: [{name: t, operations: [consume]}]}\n",
		"apiVersion: k8s.otterize.com/v2alpha1\nkind: ClientIntents\nmetadata: {name: a, namespace: default}\nspec:\n  workload: {name: a}\n  targets:\n  - kafka: {name: k, topics: [{name: t, operations: [read]}]}\n",
	} {
		objs, err := declared.ParseYAML(strings.NewReader(doc))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%v %d", err, len(objs))
		}
		if err := applyStrict(objs[0], true); err == nil {
			t.Errorf("the test CRD accepted what Otterize's refuses:\n%s", doc)
		}
	}
}

func TestDiffIsAGitOpsGate(t *testing.T) {
	const ns = "gate"
	seedGitOps(t, ns)
	dir := t.TempDir()

	t.Run("an empty directory differs", func(t *testing.T) {
		empty := t.TempDir()
		got, code := kubectlIntents(t, "", "diff", "-A", "-f", empty)
		if code != 1 || !strings.Contains(got, "+ gate/web -> gate/api GET /orders") {
			t.Errorf("exit %d, want 1\n%s", code, got)
		}
		if got, code = kubectlIntents(t, "", "diff", "-n", ns, "-f", empty); code != 1 {
			t.Errorf("-n %s: exit %d, want 1\n%s", ns, code, got)
		}
	})

	out, _ := kubectlIntents(t, "", "export", "-n", ns)
	t.Run("a Kafka topic taken from the declaration differs", func(t *testing.T) {
		cut := strings.Replace(out, "      - name: payments\n        operations:\n        - consume\n", "", 1)
		if cut == out {
			t.Fatalf("the export has no payments topic:\n%s", out)
		}
		got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "kafka.yaml", cut))
		if code != 1 || !strings.Contains(got, "+ gate/orders -> gate-infra/kafka topic payments consume") {
			t.Errorf("exit %d, want 1\n%s", code, got)
		}
		op := strings.Replace(out, "        - produce\n", "        - consume\n", 1)
		got, code = kubectlIntents(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "op.yaml", op))
		if code != 1 || !strings.Contains(got, "- gate/orders -> gate-infra/kafka topic orders consume (never seen)") {
			t.Errorf("a changed operation: exit %d, want 1\n%s", code, got)
		}
	})

	t.Run("every target type is compared", func(t *testing.T) {
		for name, edit := range map[string][2]string{
			"internet port":  {"      - 443\n", "      - 8443\n"},
			"internet IP":    {"      - 203.0.113.7\n", "      - 203.0.113.8\n"},
			"Service target": {"  - service:\n      name: legacy-db.gate-infra\n", "  - kubernetes:\n      name: legacy-db.gate-infra\n"},
			"HTTP method":    {"        - POST\n", "        - PUT\n"},
		} {
			changed := strings.Replace(out, edit[0], edit[1], 1)
			if changed == out {
				t.Fatalf("%s: %q is not in the export:\n%s", name, edit[0], out)
			}
			if got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "edit.yaml", changed)); code != 1 {
				t.Errorf("%s changed: exit %d, want 1\n%s", name, code, got)
			}
		}
	})

	t.Run("the files name the namespaces compared", func(t *testing.T) {
		file := writeFile(t, dir, "intents.yaml", out)
		got, code := kubectlIntents(t, "", "diff", "-f", file)
		if code != 0 || !strings.Contains(got, "(namespaces gate)") {
			t.Errorf("exit %d, want 0\n%s", code, got)
		}
	})

	t.Run("objects without a namespace are in -n's", func(t *testing.T) {
		bare := strings.ReplaceAll(out, "  namespace: gate\n", "")
		file := writeFile(t, dir, "bare.yaml", bare)
		if got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", file); code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, got)
		}
		got, stderr, code := kubectlIntentsErr(t, "", "diff", "-n", "other", "-f", writeFile(t, dir, "named.yaml", out))
		if code != 2 || !strings.Contains(stderr, "named.yaml:") || !strings.Contains(stderr, "does not match -n other") {
			t.Errorf("a file naming another namespace than -n: exit %d\n%s%s", code, got, stderr)
		}
	})

	t.Run("every version Otterize serves is read", func(t *testing.T) {
		v1alpha2 := "apiVersion: k8s.otterize.com/v1alpha2\nkind: ClientIntents\nmetadata: {name: orders, namespace: gate}\n" +
			"spec:\n  service: {name: orders}\n  calls:\n  - name: kafka.gate-infra\n    type: kafka\n    topics:\n" +
			"    - {name: orders, operations: [describe, produce]}\n    - {name: payments, operations: [consume]}\n"
		for _, version := range declared.Writable {
			exp, _ := kubectlIntents(t, "", "export", "-n", ns, "--api-version", version)
			web := strings.SplitN(exp, "---\n", 3)[2] // web only; orders comes from v1alpha2
			file := writeFile(t, dir, "mixed.yaml", web+"---\n"+v1alpha2)
			if got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", file); code != 0 {
				t.Errorf("%s with v1alpha2: exit %d\n%s\n%s", version, code, got, web)
			}
		}
	})

}

func TestDiffSaysWhereAndSpeaksJSON(t *testing.T) {
	const ns = "gate-errors"
	seedGitOps(t, ns)
	dir := t.TempDir()

	t.Run("errors name FILE:LINE", func(t *testing.T) {
		bad := "# intents\napiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\nspec:\n  workload: {name: a}\n  targets: []\n" +
			"---\napiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: b}\nspec:\n  workload: {name: b}\n  targetz: []\n"
		_, stderr, code := kubectlIntentsErr(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "typo.yaml", bad))
		if code != 2 || !strings.Contains(stderr, "typo.yaml:9: ClientIntents b:") || !strings.Contains(stderr, "targetz") {
			t.Errorf("an unknown field: exit %d: %s", code, stderr)
		}
		broken := "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: a\n   namespace: b\n"
		_, stderr, code = kubectlIntentsErr(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "broken.yaml", broken))
		if code != 2 || !strings.Contains(stderr, "broken.yaml:8:") {
			t.Errorf("a YAML error names its line in the file: exit %d: %s", code, stderr)
		}
		version := "apiVersion: k8s.otterize.com/v9\nkind: ClientIntents\nmetadata: {name: a}\nspec: {}\n"
		_, stderr, code = kubectlIntentsErr(t, "", "diff", "-n", ns, "-f", writeFile(t, dir, "version.yaml", version))
		if code != 2 || !strings.Contains(stderr, "version.yaml:1: ClientIntents a: apiVersion \"k8s.otterize.com/v9\"") {
			t.Errorf("an unknown version: exit %d: %s", code, stderr)
		}
	})

	t.Run("-o json for bots", func(t *testing.T) {
		got, code := kubectlIntents(t, "", "diff", "-n", ns, "-f", t.TempDir(), "-o", "json")
		var r struct {
			Agree         bool     `json:"agree"`
			Namespaces    []string `json:"namespaces"`
			Undeclared    []string `json:"undeclared"`
			Inexpressible []string `json:"inexpressible"`
		}
		if err := json.Unmarshal([]byte(got), &r); err != nil || code != 1 || r.Agree || len(r.Undeclared) == 0 || len(r.Inexpressible) == 0 {
			t.Errorf("exit %d, %v: %+v\n%s", code, err, r, got)
		}
		got, code = kubectlIntents(t, "", "diff", "-n", ns, "-f", filepath.Join(dir, "missing"), "-o", "json")
		if code != 2 || !strings.Contains(got, `"error"`) {
			t.Errorf("an error in json: exit %d: %s", code, got)
		}
	})
}

func TestExportDefaultsToTheClusterPreferredVersion(t *testing.T) {
	group := func(preferred string, served ...string) *metav1.APIGroupList {
		g := metav1.APIGroup{Name: declared.Group, PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: preferred}}
		for _, v := range served {
			g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: v})
		}
		return &metav1.APIGroupList{Groups: []metav1.APIGroup{{Name: "apps"}, g}}
	}
	for _, c := range []struct {
		groups *metav1.APIGroupList
		want   string
	}{
		{&metav1.APIGroupList{Groups: []metav1.APIGroup{{Name: "apps"}}}, declared.V2beta1},
		{group(declared.V2alpha1, declared.V2alpha1, declared.V1alpha3), declared.V2alpha1},
		{group(declared.V1alpha3, declared.V1alpha3), declared.V1alpha3},
		{group(declared.V1alpha2, declared.V1alpha2, declared.V1beta1), declared.V1beta1},
		{group(declared.V1alpha2, declared.V1alpha2), ""},
	} {
		got, err := preferredVersion(c.groups)
		if got != c.want || (c.want == "") != (err != nil) {
			t.Errorf("preferred %s: got %q, %v; want %q", c.groups.Groups[len(c.groups.Groups)-1].PreferredVersion.GroupVersion, got, err, c.want)
		}
	}

	// The test CRD serves all five versions; Kubernetes prefers v2beta1 among them.
	seed(t, "preferred")
	out, code := kubectlIntents(t, "", "export", "-n", "preferred")
	if code != 0 || !strings.Contains(out, "apiVersion: "+declared.V2beta1+"\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
