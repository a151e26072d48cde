package helm

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// custom sets every value a user is likely to set, none to its default.
const custom = `
image: {repository: mirror.local/tools/intent-mapper, tag: 9.9.9, pullPolicy: Always}
manager:
  flushInterval: 2s
  lastSeenStep: 30s
  retention: 24h
  maxPathsPerCall: 50
  resources: {limits: {memory: 2Gi}, requests: {cpu: 200m}}
agent:
  sources: {istio: false, ambient: true}
  intervals: {report: 20s}
  tolerations: [{operator: Exists}]
  nodeSelector: {kubernetes.io/os: linux}
  resources: {requests: {cpu: 50m, memory: 64Mi}}
  priorityClassName: system-node-critical
kafka: [{namespace: streaming, name: brokers}]
metrics: {enabled: false, serviceMonitor: {enabled: true}}
`

func TestLint(t *testing.T) {
	for name, values := range map[string]string{"defaults": "", "custom": custom} {
		vals := map[string]any{}
		if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
			t.Fatal(err)
		}
		result := lint.RunAll(chartDir, vals, namespace)
		for _, m := range result.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %v", name, m)
			} else {
				t.Logf("%s: %v", name, m)
			}
		}
	}
}

// TestDefaultsInstallWhatDeployInstalls compares the chart with default values to
// kustomize build config/default: the same objects, the same contents, but for what the
// chart exists to set (labels, namespace, image, the manager's flags).
func TestDefaultsInstallWhatDeployInstalls(t *testing.T) {
	got := index(mustRender(t, ""))
	want := kustomizeBuild(t)
	configNS := ""
	for _, o := range want {
		if o.GetKind() == "Namespace" {
			configNS = o.GetName()
		}
	}
	if configNS == "" {
		t.Fatal("config/default installs no Namespace")
	}
	compared := 0
	for _, w := range want {
		if w.GetKind() == "Namespace" || w.GetKind() == "CustomResourceDefinition" {
			continue // helm --create-namespace, and the chart's crds/
		}
		g, ok := got[key(w)]
		if !ok {
			t.Errorf("make deploy installs %s; the chart does not", key(w))
			continue
		}
		delete(got, key(w))
		compared++
		w = asInstalledIn(w, configNS, namespace)
		checkLabels(t, w, g)
		w, g = w.DeepCopy(), g.DeepCopy()
		switch w.GetKind() {
		case "Deployment":
			checkManagerDefaults(t, w, g)
		case "IntentMapper":
			policy, _, _ := unstructured.NestedString(g.Object, "spec", "agent", "imagePullPolicy")
			if policy != "IfNotPresent" {
				t.Errorf("the agents' pull policy is %q, want the manager's IfNotPresent", policy)
			}
			unstructured.RemoveNestedField(g.Object, "spec", "agent", "imagePullPolicy")
		}
		unstructured.RemoveNestedField(w.Object, "metadata", "labels")
		unstructured.RemoveNestedField(g.Object, "metadata", "labels")
		if !reflect.DeepEqual(w.Object, g.Object) {
			t.Errorf("%s differs from make deploy's\nchart:\n%s\nconfig:\n%s", key(w), toYAML(g.Object), toYAML(w.Object))
		}
	}
	if compared < 10 {
		t.Errorf("compared %d objects; config/default installs more", compared)
	}
	for k, o := range got {
		if k != "Service/intent-mapper-controller-manager-metrics-service" {
			t.Errorf("the chart installs %s, which make deploy does not", k)
		}
		if ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports"); len(ports) != 1 {
			t.Errorf("the metrics Service has ports %v", ports)
		}
	}
}

// asInstalledIn is obj as installed in namespace ns instead of config's.
func asInstalledIn(obj *unstructured.Unstructured, configNS, ns string) *unstructured.Unstructured {
	raw := toYAML(obj.Object)
	out := map[string]any{}
	_ = yaml.Unmarshal([]byte(strings.ReplaceAll(raw, configNS, ns)), &out)
	return &unstructured.Unstructured{Object: out}
}

func checkLabels(t *testing.T, want, got *unstructured.Unstructured) {
	t.Helper()
	labels := got.GetLabels()
	for k, v := range want.GetLabels() {
		if k != "app.kubernetes.io/managed-by" && labels[k] != v {
			t.Errorf("%s: label %s=%q, config has %q", key(got), k, labels[k], v)
		}
	}
	if labels["app.kubernetes.io/managed-by"] != "Helm" || labels["app.kubernetes.io/instance"] != release {
		t.Errorf("%s: Helm's labels missing: %v", key(got), labels)
	}
}

// checkManagerDefaults checks what the chart sets on the manager, then removes it so the
// rest compares equal.
func checkManagerDefaults(t *testing.T, want, got *unstructured.Unstructured) {
	t.Helper()
	wc, gc := containerOf(want), containerOf(got)
	if gc["image"] != "intent-mapper:"+appVersion(t) || agentImage(gc) != gc["image"] {
		t.Errorf("manager image %v, agents' %q: want the chart's appVersion for both", gc["image"], agentImage(gc))
	}
	if gc["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("pull policy %v", gc["imagePullPolicy"])
	}
	args := strs(gc["args"])
	wantArgs := append(strs(wc["args"]), "--flush-interval=5s", "--last-seen-step=1m", "--retention=720h", "--max-paths-per-call=100")
	if !slices.Equal(args, wantArgs) {
		t.Errorf("manager args\n%v\nwant config's and the sample's settings\n%v", args, wantArgs)
	}
	for _, c := range []map[string]any{wc, gc} {
		delete(c, "image")
		delete(c, "imagePullPolicy")
		delete(c, "args")
		envs := c["env"].([]any)
		c["env"] = slices.DeleteFunc(envs, func(e any) bool { return e.(map[string]any)["name"] == "AGENT_IMAGE" })
	}
	_ = unstructured.SetNestedSlice(want.Object, []any{wc}, "spec", "template", "spec", "containers")
	_ = unstructured.SetNestedSlice(got.Object, []any{gc}, "spec", "template", "spec", "containers")
}

func containerOf(d *unstructured.Unstructured) map[string]any {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	return containers[0].(map[string]any)
}

// TestValuesReachObjects sets every value away from its default and finds each where the
// manager or the agents read it.
func TestValuesReachObjects(t *testing.T) {
	objs := mustRender(t, custom)
	c := managerContainer(t, objs)
	image := "mirror.local/tools/intent-mapper:9.9.9"
	if c["image"] != image || agentImage(c) != image || c["imagePullPolicy"] != "Always" {
		t.Errorf("image %v (agents %q), pull policy %v", c["image"], agentImage(c), c["imagePullPolicy"])
	}
	args := strs(c["args"])
	for _, flag := range []string{"--flush-interval=2s", "--last-seen-step=30s", "--retention=24h", "--max-paths-per-call=50", "--metrics-bind-address=0"} {
		if !slices.Contains(args, flag) {
			t.Errorf("manager args %v lack %s", args, flag)
		}
	}
	// Helm merges maps over values.yaml's: what is not set stays config's
	if got := toYAML(c["resources"]); got != "limits:\n  cpu: \"1\"\n  memory: 2Gi\nrequests:\n  cpu: 200m\n  memory: 128Mi\n" {
		t.Errorf("manager resources:\n%s", got)
	}

	spec := find(t, objs, "IntentMapper").Object["spec"]
	wantSpec := `
agent:
  imagePullPolicy: Always
  nodeSelector: {kubernetes.io/os: linux}
  priorityClassName: system-node-critical
  resources: {requests: {cpu: 50m, memory: 64Mi}}
  sources: {ambient: true, connections: true, dns: true, istio: false}
  tolerations: [{operator: Exists}]
intervals: {flush: 2s, lastSeenStep: 30s, report: 20s, scan: 30s, scrape: 15s}
kafka: [{name: brokers, namespace: streaming}]
maxPathsPerCall: 50
retention: 24h
`
	want := map[string]any{}
	if err := yaml.Unmarshal([]byte(wantSpec), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("IntentMapper cluster's spec\n%s\nwant\n%s", toYAML(spec), toYAML(want))
	}
	for _, o := range objs {
		if o.GetKind() == "ServiceMonitor" || strings.Contains(o.GetName(), "metrics") {
			t.Errorf("metrics off, yet the chart installs %s", key(o))
		}
	}
}

// TestServiceMonitorScrapesTheMetricsService: the monitor selects the metrics Service and
// names one of its ports, and the Service selects the manager's pods and port.
func TestServiceMonitorScrapesTheMetricsService(t *testing.T) {
	for _, o := range mustRender(t, "") {
		if o.GetKind() == "ServiceMonitor" {
			t.Fatal("a ServiceMonitor by default: it needs the Prometheus Operator's CRD")
		}
	}
	objs := mustRender(t, "metrics: {serviceMonitor: {enabled: true, interval: 1m}}")
	monitor := find(t, objs, "ServiceMonitor")
	selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	if len(selector) == 0 || len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor selects %v with endpoints %v", selector, endpoints)
	}
	endpoint := endpoints[0].(map[string]any)
	if endpoint["interval"] != "1m" || monitor.GetNamespace() != namespace {
		t.Errorf("interval %v, namespace %s", endpoint["interval"], monitor.GetNamespace())
	}
	var selected []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Service" && matches(selector, o.GetLabels()) {
			selected = append(selected, o)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("the monitor selects %d Services, want the metrics Service alone", len(selected))
	}
	svc := selected[0]
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	port := ports[0].(map[string]any)
	if port["name"] != endpoint["port"] {
		t.Errorf("monitor scrapes port %v; the Service's is %v", endpoint["port"], port["name"])
	}
	podSelector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	podLabels, _, _ := unstructured.NestedStringMap(find(t, objs, "Deployment").Object, "spec", "template", "metadata", "labels")
	if !matches(podSelector, podLabels) {
		t.Errorf("the metrics Service selects %v; the manager's pods are %v", podSelector, podLabels)
	}
	named := false
	for _, p := range managerContainer(t, objs)["ports"].([]any) {
		named = named || p.(map[string]any)["name"] == port["targetPort"]
	}
	if !named {
		t.Errorf("the metrics Service targets port %v, which the manager does not name", port["targetPort"])
	}
	for _, a := range strs(managerContainer(t, objs)["args"]) {
		if a == "--metrics-bind-address=0" {
			t.Errorf("metrics on, yet the manager does not serve them")
		}
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
