// Package helm tests the chart charts/intent-mapper with Helm's own packages: lint, render,
// schema, and the rendered objects applied to a real API server.
package helm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = "../../charts/intent-mapper"
	// configDir is what make deploy installs, which the chart must install too.
	configDir = "../../config/default"
	// namespace differs from config/'s, so a name left unreplaced shows.
	namespace = "observability"
	release   = "im"
)

// render renders the chart as helm install does, values over values.yaml.
func render(t *testing.T, values string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatalf("test values: %v", err)
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		objs, err := decodeAll(files[name])
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, files[name])
		}
		out = append(out, objs...)
	}
	return out, nil
}

// appVersion is the chart's appVersion, the default image tag.
func appVersion(t *testing.T) string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Metadata.AppVersion
}

// mustRender renders values the schema must accept.
func mustRender(t *testing.T, values string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(t, values)
	if err != nil {
		t.Fatalf("values refused: %v", err)
	}
	return objs
}

func decodeAll(text string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj) > 0 {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// kustomizeBuild is what make deploy applies, numbers decoded as the rendered ones are.
func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), configDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", configDir, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(res.Resources()))
	for _, r := range res.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		obj := map[string]any{}
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&obj); err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

func key(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

func index(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		out[key(o)] = o
	}
	return out
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// managerContainer is the manager's container of the rendered Deployment.
func managerContainer(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment").Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if c.(map[string]any)["name"] == "manager" {
			return c.(map[string]any)
		}
	}
	t.Fatal("the Deployment has no manager container")
	return nil
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// agentImage is the image the manager gives the agents (env AGENT_IMAGE).
func agentImage(c map[string]any) string {
	for _, e := range c["env"].([]any) {
		if m := e.(map[string]any); m["name"] == "AGENT_IMAGE" {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

func toYAML(v any) string {
	raw, _ := yaml.Marshal(v)
	return string(raw)
}
