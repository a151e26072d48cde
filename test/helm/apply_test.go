package helm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is a real kube-apiserver and etcd with the chart's CRDs installed.
type cluster struct {
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs("../../bin/k8s")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(chartDir, "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	kube := kubernetes.NewForConfigOrDie(cfg)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	disc := memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg))
	return &cluster{dynamic: dynamic.NewForConfigOrDie(cfg), mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc)}
}

// apply sends obj as Helm 4 does (server-side apply), refusing unknown or duplicate fields.
func (c *cluster) apply(obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	var client dynamic.ResourceInterface = c.dynamic.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		client = c.dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	_, err = client.Patch(context.Background(), obj.GetName(), types.ApplyPatchType, raw,
		metav1.PatchOptions{FieldManager: "helm", FieldValidation: "Strict", Force: new(true)})
	return err
}

// TestRenderedObjectsApplyStrictly applies the defaults, then the custom values as an
// upgrade would, to the real API server with strict field validation.
func TestRenderedObjectsApplyStrictly(t *testing.T) {
	c := startCluster(t)
	// In order, as an install then an upgrade: the custom values must be what stays.
	for _, step := range []struct{ name, values string }{{"defaults", ""}, {"custom", custom}} {
		name := step.name
		objs := mustRender(t, step.values)
		for _, o := range objs {
			if err := c.apply(o); err != nil {
				t.Errorf("%s: %s refused: %v", name, key(o), err)
			}
		}
		if len(objs) < 10 {
			t.Errorf("%s: only %d objects rendered", name, len(objs))
		}
	}
	stored, err := c.dynamic.Resource(find(t, mustRender(t, ""), "IntentMapper").GroupVersionKind().GroupVersion().WithResource("intentmappers")).
		Get(context.Background(), "cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if flush, _, _ := unstructured.NestedString(stored.Object, "spec", "intervals", "flush"); flush != "2s" {
		t.Errorf("IntentMapper cluster holds flush %q after the custom values, want 2s", flush)
	}

	// Nothing unknown passes silently: a field IntentMapper's schema does not know is
	// refused, not pruned.
	im := find(t, mustRender(t, ""), "IntentMapper")
	_ = unstructured.SetNestedField(im.Object, "NoSchedule", "spec", "agent", "tolerration")
	if err := c.apply(im); err == nil || !strings.Contains(err.Error(), "spec.agent.tolerration") {
		t.Errorf("an IntentMapper with an unknown field: %v, want an unknown field error", err)
	}
}
