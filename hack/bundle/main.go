// Command bundle writes intent-mapper's OLM bundle: the CSV (from a hand-written base,
// the kustomize tree, the samples and the icon), the CRDs, the bundle's annotations,
// bundle.Dockerfile and the scorecard configuration. Its output is deterministic.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	semver "github.com/blang/semver/v4"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/intent-mapper/intent-mapper/hack/internal/kustomized"
)

// Package is the OLM package; Annotations are the bundle's format keys.
const Package = "intent-mapper"

type options struct {
	version, image, channels, defaultChannel, scorecardImage, out string
}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "0.1.0", "bundle version")
	flag.StringVar(&o.image, "image", "intent-mapper:0.1.0", "manager (and agent) image")
	flag.StringVar(&o.channels, "channels", "candidate", "channels, comma-separated")
	flag.StringVar(&o.defaultChannel, "default-channel", "candidate", "default channel")
	flag.StringVar(&o.scorecardImage, "scorecard-image", "scorecard-test:v1.39.0", "scorecard test image")
	flag.StringVar(&o.out, "out", "bundle", "bundle directory")
	flag.Parse()
	if err := write(o); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func write(o options) error {
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := readYAML("config/manifests/bases/intent-mapper.clusterserviceversion.yaml", csv); err != nil {
		return err
	}
	objs, err := kustomized.Build("config/base")
	if err != nil {
		return err
	}
	if err := fillCSV(csv, objs, o); err != nil {
		return err
	}
	manifests := filepath.Join(o.out, "manifests")
	if err := os.RemoveAll(manifests); err != nil {
		return err
	}
	for _, dir := range []string{manifests, filepath.Join(o.out, "metadata"), filepath.Join(o.out, "tests", "scorecard")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := writeYAML(filepath.Join(manifests, Package+".clusterserviceversion.yaml"), csv); err != nil {
		return err
	}
	for _, crd := range kustomized.ByKind(objs, "CustomResourceDefinition") {
		parts := strings.SplitN(crd.GetName(), ".", 2) // plural.group → group_plural
		name := parts[1] + "_" + parts[0]
		if err := writeYAML(filepath.Join(manifests, name+".yaml"), crd.Object); err != nil {
			return err
		}
	}
	for _, role := range unboundClusterRoles(objs) {
		if err := writeYAML(filepath.Join(manifests, role.GetName()+"_rbac.authorization.k8s.io_v1_clusterrole.yaml"), role.Object); err != nil {
			return err
		}
	}
	annotations := Annotations(o.channels, o.defaultChannel)
	if err := writeYAML(filepath.Join(o.out, "metadata", "annotations.yaml"), map[string]any{"annotations": annotations}); err != nil {
		return err
	}
	if err := os.WriteFile("bundle.Dockerfile", []byte(dockerfile(annotations, o.out)), 0o644); err != nil {
		return err
	}
	return writeYAML(filepath.Join(o.out, "tests", "scorecard", "config.yaml"), scorecard(o.scorecardImage))
}

// Annotations are the six keys that make a directory an OLM bundle.
func Annotations(channels, defaultChannel string) map[string]string {
	return map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         Package,
		"operators.operatorframework.io.bundle.channels.v1":        channels,
		"operators.operatorframework.io.bundle.channel.default.v1": defaultChannel,
	}
}

func fillCSV(csv *operatorsv1alpha1.ClusterServiceVersion, objs []*unstructured.Unstructured, o options) error {
	csv.Name = Package + ".v" + o.version
	v, err := semver.Parse(o.version)
	if err != nil {
		return err
	}
	csv.Spec.Version.Version = v
	csv.Annotations["containerImage"] = o.image
	examples, err := almExamples()
	if err != nil {
		return err
	}
	csv.Annotations["alm-examples"] = examples
	icon, err := os.ReadFile("config/manifests/icon.svg")
	if err != nil {
		return err
	}
	csv.Spec.Icon = []operatorsv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(icon), MediaType: "image/svg+xml"}}
	csv.Spec.RelatedImages = []operatorsv1alpha1.RelatedImage{{Name: "intent-mapper", Image: o.image}}

	spec := operatorsv1alpha1.StrategyDetailsDeployment{}
	for _, u := range kustomized.ByKind(objs, "Deployment") {
		d := &appsv1.Deployment{}
		if err := fromUnstructured(u, d); err != nil {
			return err
		}
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			c.Image = o.image
			c.Env = append(c.Env, corev1.EnvVar{Name: "AGENT_IMAGE", Value: o.image})
		}
		spec.DeploymentSpecs = append(spec.DeploymentSpecs, operatorsv1alpha1.StrategyDeploymentSpec{Name: d.Name, Label: d.Labels, Spec: d.Spec})
	}
	if spec.ClusterPermissions, err = permissions(objs, "ClusterRole", "ClusterRoleBinding"); err != nil {
		return err
	}
	if spec.Permissions, err = permissions(objs, "Role", "RoleBinding"); err != nil {
		return err
	}
	csv.Spec.InstallStrategy = operatorsv1alpha1.NamedInstallStrategy{StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment, StrategySpec: spec}
	return nil
}

// permissions pairs each role with the ServiceAccounts its bindings name.
func permissions(objs []*unstructured.Unstructured, roleKind, bindingKind string) ([]operatorsv1alpha1.StrategyDeploymentPermissions, error) {
	rules := map[string][]rbacv1.PolicyRule{}
	for _, u := range kustomized.ByKind(objs, roleKind) {
		role := &rbacv1.ClusterRole{} // Role has the same rules field
		if err := fromUnstructured(u, role); err != nil {
			return nil, err
		}
		rules[role.Name] = role.Rules
	}
	bySA := map[string][]rbacv1.PolicyRule{}
	for _, u := range kustomized.ByKind(objs, bindingKind) {
		b := &rbacv1.ClusterRoleBinding{} // RoleBinding has the same fields used here
		if err := fromUnstructured(u, b); err != nil {
			return nil, err
		}
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind {
				bySA[s.Name] = append(bySA[s.Name], rules[b.RoleRef.Name]...)
			}
		}
	}
	var out []operatorsv1alpha1.StrategyDeploymentPermissions
	for sa, r := range bySA {
		out = append(out, operatorsv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa, Rules: r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServiceAccountName < out[j].ServiceAccountName })
	return out, nil
}

// unboundClusterRoles are the ClusterRoles no ClusterRoleBinding names: roles for
// others to bind (metrics-reader) or for the manager to bind (broker-logs). The CSV
// has no place for them, so they ship as manifests of their own.
func unboundClusterRoles(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	bound := map[string]bool{}
	for _, u := range kustomized.ByKind(objs, "ClusterRoleBinding") {
		name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		bound[name] = true
	}
	var out []*unstructured.Unstructured
	for _, u := range kustomized.ByKind(objs, "ClusterRole") {
		if !bound[u.GetName()] {
			out = append(out, u)
		}
	}
	return out
}

// almExamples are the samples, as the console offers them.
func almExamples() (string, error) {
	var examples []map[string]any
	for _, f := range []string{"discovery_v1alpha1_intentmapper.yaml", "discovery_v1alpha1_discoveredintents.yaml"} {
		obj := map[string]any{}
		if err := readYAML(filepath.Join("config", "samples", f), &obj); err != nil {
			return "", err
		}
		delete(obj, "status")
		examples = append(examples, obj)
	}
	raw, err := json.MarshalIndent(examples, "", "  ")
	return string(raw), err
}

func dockerfile(annotations map[string]string, dir string) string {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Generated by make bundle: the OLM bundle image; its labels equal bundle/metadata/annotations.yaml.\nFROM scratch\n\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, annotations[k])
	}
	fmt.Fprintf(&b, "LABEL operators.operatorframework.io.test.config.v1=tests/scorecard/\n\n")
	fmt.Fprintf(&b, "COPY %s/manifests /manifests/\nCOPY %s/metadata /metadata/\nCOPY %s/tests/scorecard /tests/scorecard/\n", dir, dir, dir)
	return b.String()
}

func scorecard(image string) map[string]any {
	test := func(suite, name string) map[string]any {
		return map[string]any{
			"entrypoint": []string{"scorecard-test", name},
			"image":      image,
			"labels":     map[string]string{"suite": suite, "test": name + "-test"},
		}
	}
	return map[string]any{
		"apiVersion": "scorecard.operatorframework.io/v1alpha3",
		"kind":       "Configuration",
		"metadata":   map[string]string{"name": "config"},
		"stages": []map[string]any{{"parallel": true, "tests": []map[string]any{
			test("basic", "basic-check-spec"),
			test("olm", "olm-bundle-validation"),
			test("olm", "olm-crds-have-validation"),
			test("olm", "olm-crds-have-resources"),
			test("olm", "olm-spec-descriptors"),
			test("olm", "olm-status-descriptors"),
		}}},
	}
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

func readYAML(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(raw, into)
}

func writeYAML(path string, obj any) error {
	raw, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}
