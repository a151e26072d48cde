package controllers

import (
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

const (
	clientName = "client"
	server     = "nginx"
)

// newNamespace creates a namespace of its own for one spec.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "di-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newDiscoveredIntents(namespace string) *discoveryv1alpha1.DiscoveredIntents {
	return &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: clientName, Namespace: namespace},
		Spec: discoveryv1alpha1.DiscoveredIntentsSpec{
			Workload: discoveryv1alpha1.WorkloadRef{Name: clientName, Kind: discoveryv1alpha1.KindDeployment},
		},
	}
}

// updateStatus changes an object's status as a user would: read, change, write, and again
// on a conflict with the reconciler's own write.
func updateStatus(di *discoveryv1alpha1.DiscoveredIntents, change func(*discoveryv1alpha1.DiscoveredIntentsStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(di), di); err != nil {
			return err
		}
		change(&di.Status)
		return k8sClient.Status().Update(ctx, di)
	})
}

// updateSpec changes an object's spec the same way.
func updateSpec(di *discoveryv1alpha1.DiscoveredIntents, change func(*discoveryv1alpha1.DiscoveredIntentsSpec)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(di), di); err != nil {
			return err
		}
		change(&di.Spec)
		return k8sClient.Update(ctx, di)
	})
}

// ago is a time that far in the past, to the second, as the API server stores it.
func ago(d time.Duration) *metav1.Time {
	return &metav1.Time{Time: time.Now().Add(-d).Truncate(time.Second)}
}

var _ = Describe("DiscoveredIntents API", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("is rejected by the API server when a call has an unknown type", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		err := updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			s.Calls = []discoveryv1alpha1.Call{{Name: server, Namespace: namespace, Type: "udp"}}
		})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`status.calls[0].type: Unsupported value: "udp"`))
	})

	It("is rejected by the API server when a workload kind is unknown", func() {
		di := newDiscoveredIntents(namespace)
		di.Spec.Workload.Kind = "Rollout"
		err := k8sClient.Create(ctx, di)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`spec.workload.kind: Unsupported value: "Rollout"`))
	})

	It("is rejected by the API server when a field has the wrong type", func() {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "discovery.intentmapper.io/v1alpha1",
			"kind":       "DiscoveredIntents",
			"metadata":   map[string]any{"name": "client", "namespace": namespace},
			"spec":       map[string]any{"workload": map[string]any{"name": int64(42)}},
		}}
		err := k8sClient.Create(ctx, u)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`spec.workload.name: Invalid value: "integer": spec.workload.name in body must be of type string`))
	})

	It("keeps calls out of managedFields: the stored object is not twice its status", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			for i := range 50 {
				s.Calls = append(s.Calls, discoveryv1alpha1.Call{Name: fmt.Sprintf("server-%02d", i), Namespace: namespace, Type: discoveryv1alpha1.CallTCP, Ports: []int32{8080}})
			}
		})).To(Succeed())
		var statusFields string
		for _, m := range di.ManagedFields {
			if m.Subresource == "status" {
				statusFields = m.FieldsV1.GetRawString()
			}
		}
		Expect(statusFields).To(ContainSubstring(`"f:calls":{}`))
		Expect(statusFields).NotTo(ContainSubstring("server-"))
	})

	It("keeps status and spec apart through the status subresource", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			s.Calls = []discoveryv1alpha1.Call{{Name: server, Namespace: namespace, Type: discoveryv1alpha1.CallTCP, Ports: []int32{80}}}
		})).To(Succeed())

		By("a spec update leaving status alone")
		Expect(updateSpec(di, func(spec *discoveryv1alpha1.DiscoveredIntentsSpec) {
			spec.Workload.Kind = discoveryv1alpha1.KindStatefulSet
			di.Status.Calls = nil
		})).To(Succeed())
		latest := &discoveryv1alpha1.DiscoveredIntents{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), latest)).To(Succeed())
		Expect(latest.Spec.Workload.Kind).To(Equal(discoveryv1alpha1.KindStatefulSet))
		Expect(latest.Status.Calls).To(HaveLen(1))

		By("a status update leaving spec alone")
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			di.Spec.Workload.Name = "changed"
			s.Calls[0].Ports = []int32{80, 8080}
		})).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), latest)).To(Succeed())
		Expect(latest.Spec.Workload.Name).To(Equal("client"))
		Expect(latest.Status.Calls[0].Ports).To(Equal([]int32{80, 8080}))
	})
})

var _ = Describe("DiscoveredIntents reconciler", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("derives the printer columns from the calls, as kubectl get shows them", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			s.Calls = []discoveryv1alpha1.Call{
				{Name: server, Namespace: namespace, Type: discoveryv1alpha1.CallHTTP, LastSeen: ago(10 * time.Minute)},
				{Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, LastSeen: ago(5 * time.Minute)},
				{Name: "db", Namespace: namespace, Type: discoveryv1alpha1.CallTCP, LastSeen: ago(2 * time.Hour)},
			}
		})).To(Succeed())

		Eventually(func(g Gomega) {
			row := tableRow(g, namespace, clientName)
			g.Expect(row).To(HaveKeyWithValue("Workload", "client"))
			g.Expect(row).To(HaveKeyWithValue("Calls", BeNumerically("==", 3)))
			g.Expect(row).To(HaveKeyWithValue("Undeclared", BeNil()), "no ClientIntents API: not known")
			g.Expect(row).To(HaveKeyWithValue("Last Seen", MatchRegexp(`^5m([0-9]+s)?$`)))
		}).Should(Succeed())

		By("sorting the calls by namespace and name")
		got := &discoveryv1alpha1.DiscoveredIntents{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), got)).To(Succeed())
		names := make([]string, 0, len(got.Status.Calls))
		for _, c := range got.Status.Calls {
			names = append(names, c.Name)
		}
		Expect(names).To(Equal([]string{"api.stripe.com", "db", "nginx"}))

		By("following status when a call goes away")
		Expect(updateStatus(got, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) { s.Calls = s.Calls[:1] })).To(Succeed())
		Eventually(func(g Gomega) {
			row := tableRow(g, namespace, clientName)
			g.Expect(row).To(HaveKeyWithValue("Calls", BeNumerically("==", 1)))
			g.Expect(row).To(HaveKeyWithValue("Last Seen", MatchRegexp(`^5m([0-9]+s)?$`)))
		}).Should(Succeed())
	})

	It("leaves Undeclared empty while no declaration is known", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(updateStatus(di, func(s *discoveryv1alpha1.DiscoveredIntentsStatus) {
			s.Calls = []discoveryv1alpha1.Call{{Name: server, Namespace: namespace, Type: discoveryv1alpha1.CallTCP}}
		})).To(Succeed())
		Eventually(func(g Gomega) {
			row := tableRow(g, namespace, clientName)
			g.Expect(row).To(HaveKeyWithValue("Calls", BeNumerically("==", 1)))
			g.Expect(row).To(HaveKeyWithValue("Undeclared", BeNil()))
		}).Should(Succeed())
	})

	It("follows the generation with observedGeneration and Ready", func() {
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		expectReadyFor := func(generation int64) {
			Eventually(func(g Gomega) {
				got := &discoveryv1alpha1.DiscoveredIntents{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), got)).To(Succeed())
				g.Expect(got.Generation).To(Equal(generation))
				g.Expect(got.Status.ObservedGeneration).To(Equal(generation))
				ready := meta.FindStatusCondition(got.Status.Conditions, discoveryv1alpha1.ConditionReady)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(ready.ObservedGeneration).To(Equal(generation))
			}).Should(Succeed())
		}
		expectReadyFor(1)

		Expect(updateSpec(di, func(spec *discoveryv1alpha1.DiscoveredIntentsSpec) {
			spec.Workload.Kind = discoveryv1alpha1.KindDaemonSet
		})).To(Succeed())
		expectReadyFor(2)
	})
})

var _ = Describe("IntentMapper API", func() {
	It("accepts only the singleton named cluster", func() {
		im := &discoveryv1alpha1.IntentMapper{ObjectMeta: metav1.ObjectMeta{Name: "second"}}
		err := k8sClient.Create(ctx, im)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("IntentMapper is a singleton: its name must be 'cluster'"))
	})

	It("fills in the defaults a user leaves out", func() {
		im := &discoveryv1alpha1.IntentMapper{ObjectMeta: metav1.ObjectMeta{Name: discoveryv1alpha1.SingletonName}}
		Expect(k8sClient.Create(ctx, im)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, im)).To(Succeed()) })
		Expect(im.Spec.Intervals.LastSeenStep.Duration).To(Equal(time.Minute))
		Expect(im.Spec.Intervals.Flush.Duration).To(Equal(5 * time.Second))
		Expect(im.Spec.MaxPathsPerCall).To(BeEquivalentTo(100))
		Expect(im.Spec.Agent.Sources.DNS).To(HaveValue(BeTrue()))
		Expect(im.Spec.Agent.Sources.Ambient).To(HaveValue(BeFalse()))
	})
})

var _ = Describe("the CRD schema", func() {
	It("carries field descriptions for kubectl explain", func() {
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		var doc struct {
			Components struct {
				Schemas map[string]schemaNode `json:"schemas"`
			} `json:"components"`
		}
		Eventually(func(g Gomega) {
			raw, err := dc.RESTClient().Get().AbsPath("/openapi/v3/apis/discovery.intentmapper.io/v1alpha1").DoRaw(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(json.Unmarshal(raw, &doc)).To(Succeed())
			g.Expect(doc.Components.Schemas).To(HaveKey("io.intentmapper.discovery.v1alpha1.DiscoveredIntents"))
		}).Should(Succeed())

		root := doc.Components.Schemas["io.intentmapper.discovery.v1alpha1.DiscoveredIntents"]
		http := root.field("status").field("calls").Items.field("http")
		Expect(http.Description).To(HavePrefix("http lists the paths requested"))
		Expect(http.Items.field("path").Description).To(ContainSubstring("id-like segments"))
		Expect(http.Items.field("methods").Description).To(Equal("methods used on this path, upper-case and sorted."))
		Expect(root.field("spec").field("workload").Description).To(ContainSubstring("client workload"))
	})
})

// schemaNode is the part of an OpenAPI v3 schema that kubectl explain reads.
type schemaNode struct {
	Description string                `json:"description"`
	Properties  map[string]schemaNode `json:"properties"`
	Items       *schemaNode           `json:"items"`
}

func (n schemaNode) field(name string) schemaNode {
	child, ok := n.Properties[name]
	Expect(ok).To(BeTrue(), "schema has no field %q", name)
	return child
}

// tableRow asks the API server for the object as kubectl get shows it (a Table) and
// returns its cells by column name.
func tableRow(g Gomega, namespace, name string) map[string]any { //nolint:unparam // any object's row
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := cs.RESTClient().Get().
		AbsPath("/apis/discovery.intentmapper.io/v1alpha1/namespaces", namespace, "discoveredintents", name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	table := &metav1.Table{}
	g.Expect(json.Unmarshal(raw, table)).To(Succeed())
	g.Expect(table.Rows).To(HaveLen(1))
	row := map[string]any{}
	for i, col := range table.ColumnDefinitions {
		row[col.Name] = table.Rows[0].Cells[i]
	}
	return row
}
