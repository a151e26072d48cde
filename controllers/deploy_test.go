package controllers

import (
	"bytes"
	"errors"
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// kustomizeBuild renders a kustomization as `kustomize build` does.
func kustomizeBuild(dir string) []*unstructured.Unstructured {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	Expect(err).NotTo(HaveOccurred())
	raw, err := res.AsYaml()
	Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return objs
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// apply applies objects with server-side apply, as kubectl apply --server-side does.
func apply(objs []*unstructured.Unstructured, opts ...client.ApplyOption) {
	for _, obj := range objs {
		o := obj.DeepCopy()
		o.SetManagedFields(nil)
		Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), append(opts, client.FieldOwner("deploy-test"), client.ForceOwnership)...)).
			To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}
}

// allowed asks the API server whether a ServiceAccount may do something.
func allowed(account string, attrs authorizationv1.ResourceAttributes) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:intent-mapper-system:" + account,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:intent-mapper-system", "system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	Expect(k8sClient.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

var _ = Describe("config/default", Ordered, func() {
	var objs []*unstructured.Unstructured
	BeforeAll(func() { objs = kustomizeBuild("../config/default") })

	It("holds only objects the API server accepts (server-side dry run), and applies", func() {
		var crds, rest []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			} else {
				rest = append(rest, o)
			}
		}
		apply(crds)
		Eventually(func(g Gomega) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "intentmappers.discovery.intentmapper.io"}, crd)).To(Succeed())
			g.Expect(crd.Status.Conditions).To(ContainElement(HaveField("Type", apiextensionsv1.Established)))
		}).Should(Succeed())
		apply(rest, client.DryRunAll)
		apply(rest)
	})

	It("makes IntentMapper cluster deploy the agents, secured", func() {
		im := &discoveryv1alpha1.IntentMapper{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: discoveryv1alpha1.SingletonName}, im)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, im))).To(Succeed()) })
		Eventually(func(g Gomega) {
			ds := &appsv1.DaemonSet{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: agentAccount}, ds)).To(Succeed())
			pod := ds.Spec.Template.Spec
			g.Expect(pod.HostNetwork && pod.HostPID).To(BeTrue())
			g.Expect(pod.ServiceAccountName).To(Equal("intent-mapper-agent"))
			g.Expect(*pod.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
			g.Expect(pod.Tolerations).To(HaveLen(1), "the sample's control-plane toleration")
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("grants each component only what it uses", func() {
		manager, agent := "intent-mapper-controller-manager", "intent-mapper-agent"
		for _, tc := range []struct {
			who   string
			attrs authorizationv1.ResourceAttributes
			ok    bool
		}{
			{manager, authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "get", Resource: "secrets"}, true},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "secrets"}, false},
			{manager, authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods", Subresource: "exec"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "delete", Resource: "pods"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "patch", Resource: "pods"}, true}, // the leader label
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "patch", Resource: "pods"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "pods", Subresource: "log"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "get", Resource: "pods", Subresource: "log"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "daemonsets", Group: "apps"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "create", Resource: "daemonsets", Group: "apps"}, true},
			{manager, authorizationv1.ResourceAttributes{Verb: "create", Resource: "tokenreviews", Group: "authentication.k8s.io"}, true},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "update", Resource: "discoveredintents", Subresource: "status", Group: "discovery.intentmapper.io"}, true},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "patch", Resource: "discoveredintents", Subresource: "status", Group: "discovery.intentmapper.io"}, false},
			{manager, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "delete", Resource: "discoveredintents", Group: "discovery.intentmapper.io"}, false},
			{agent, authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
			{agent, authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods"}, true},
			{agent, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods"}, false},
			{agent, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods", Subresource: "exec"}, false},
			{agent, authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "get", Resource: "secrets"}, false},
			{agent, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "discoveredintents", Group: "discovery.intentmapper.io"}, false},
		} {
			Expect(allowed(tc.who, tc.attrs)).To(Equal(tc.ok), "%s %s %s/%s in %q", tc.who, tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Subresource, tc.attrs.Namespace)
		}
	})
})
