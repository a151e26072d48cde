package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"sigs.k8s.io/yaml"
)

const bundleDir = "../../bundle"

// TestBundleValidates runs operator-framework's own validators over the committed bundle.
func TestBundleValidates(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir(bundleDir)
	if err != nil {
		t.Fatalf("loading the bundle: %v", err)
	}
	validators := validation.DefaultBundleValidators.WithValidators(validation.GoodPracticesValidator)
	for _, result := range validators.Validate(bundle.ObjectsToValidate()...) {
		for _, e := range result.Errors {
			t.Errorf("%s: %v", result.Name, e)
		}
		for _, w := range result.Warnings {
			t.Logf("warning: %s: %v", result.Name, w)
		}
	}
	if bundle.CSV == nil || len(bundle.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs) != 1 {
		t.Fatal("the CSV must install the manager Deployment")
	}
	owned := map[string]bool{}
	for _, crd := range bundle.CSV.Spec.CustomResourceDefinitions.Owned {
		owned[crd.Name] = true
	}
	present := map[string]bool{}
	for _, crd := range bundle.V1CRDs {
		present[crd.Name] = true
		if !owned[crd.Name] {
			t.Errorf("CRD %s is in the bundle but not owned by the CSV", crd.Name)
		}
	}
	for name := range owned {
		if !present[name] {
			t.Errorf("the CSV owns %s, which the bundle lacks", name)
		}
	}
	if len(present) != 2 {
		t.Errorf("want both CRDs, got %v", present)
	}
}

// TestBundleFormat checks the annotations and that bundle.Dockerfile's labels equal them.
func TestBundleFormat(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(bundleDir, "metadata", "annotations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"operators.operatorframework.io.bundle.mediatype.v1", "operators.operatorframework.io.bundle.manifests.v1",
		"operators.operatorframework.io.bundle.metadata.v1", "operators.operatorframework.io.bundle.package.v1",
		"operators.operatorframework.io.bundle.channels.v1", "operators.operatorframework.io.bundle.channel.default.v1",
	} {
		if file.Annotations[key] == "" {
			t.Errorf("annotation %s missing", key)
		}
	}
	docker, err := os.ReadFile("../../bundle.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, line := range strings.Split(string(docker), "\n") {
		if kv, ok := strings.CutPrefix(line, "LABEL "); ok {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = v
		}
	}
	keys := make([]string, 0, len(file.Annotations))
	for k, v := range file.Annotations {
		keys = append(keys, k)
		if labels[k] != v {
			t.Errorf("bundle.Dockerfile label %s=%q, annotation says %q", k, labels[k], v)
		}
	}
	sort.Strings(keys)
	if len(keys) != 6 {
		t.Errorf("annotations %v", keys)
	}
}
