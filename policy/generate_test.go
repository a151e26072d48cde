package policy

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func clientOf(ns, name string, calls ...discoveryv1alpha1.Call) discoveryv1alpha1.DiscoveredIntents {
	return discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: name}},
		Status:     discoveryv1alpha1.DiscoveredIntentsStatus{ServiceAccounts: []string{name + "-sa"}, Calls: calls},
	}
}

// shopMap: web calls api through its Service (port 80 to the named port http) with paths,
// and the internet; batch, from namespace jobs, calls api over TCP.
func shopMap() []discoveryv1alpha1.DiscoveredIntents {
	api := func(typ discoveryv1alpha1.CallType, http ...discoveryv1alpha1.HTTPPath) discoveryv1alpha1.Call {
		return discoveryv1alpha1.Call{Name: "api", Namespace: "shop", Type: typ, Services: []string{"api"}, Ports: []int32{80}, HTTP: http}
	}
	return []discoveryv1alpha1.DiscoveredIntents{
		clientOf("shop", "web", api(discoveryv1alpha1.CallHTTP,
			discoveryv1alpha1.HTTPPath{Path: "/items/*", Methods: []string{"GET", "HEAD"}},
			discoveryv1alpha1.HTTPPath{Path: "/orders", Methods: []string{"POST"}}),
			discoveryv1alpha1.Call{Name: "198.51.100.7", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
				Internet: &discoveryv1alpha1.InternetTarget{IPs: []string{"198.51.100.7"}}},
			discoveryv1alpha1.Call{Name: "api.stripe.com", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443},
				Internet: &discoveryv1alpha1.InternetTarget{Domains: []string{"api.stripe.com"}, ResolvedIPs: []string{"198.51.100.20"}}}),
		clientOf("jobs", "batch", api(discoveryv1alpha1.CallTCP)),
	}
}

func shopWithService() *Catalog {
	c := shop()
	c.AddService("shop", "api", []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}})
	return c
}

// roundTrip writes the policies as YAML, reads them back and previews the map.
func roundTrip(t *testing.T, gen []Result, observed []discoveryv1alpha1.DiscoveredIntents) []Denial {
	t.Helper()
	var docs []string
	for _, r := range gen {
		if len(r.Problems) > 0 {
			t.Errorf("problems: %v", r.Problems)
		}
		for _, g := range r.Policies {
			raw, err := yaml.Marshal(g.Object)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(raw))
		}
	}
	return Preview(Flows(observed, shopWithService()), policies(t, docs...), shopWithService())
}

func TestGeneratedPoliciesAllowTheMapAndNothingElse(t *testing.T) {
	m, cat := shopMap(), shopWithService()
	ingress, egress, authz := NetworkPolicies(m, cat), EgressPolicies(m, cat), AuthorizationPolicies(m, cat)
	if d := roundTrip(t, []Result{ingress, egress, authz}, m); len(d) != 0 {
		t.Errorf("the map's own policies deny %v", d)
	}
	raw, _ := yaml.Marshal(authz.Policies[0].Object)
	// ALLOW is the default action, and Istio's JSON leaves defaults out.
	for _, want := range []string{"cluster.local/ns/shop/sa/web-sa", "cluster.local/ns/jobs/sa/batch-sa", "- /items/*", "- \"8080\"", "app: api"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("AuthorizationPolicy lacks %q:\n%s", want, raw)
		}
	}
	raw, _ = yaml.Marshal(ingress.Policies[0].Object)
	for _, want := range []string{"kubernetes.io/metadata.name: jobs", "port: 8080", "- Ingress"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("NetworkPolicy lacks %q:\n%s", want, raw)
		}
	}

	eg, _ := yaml.Marshal(egress.Policies[1].Object) // web-egress
	if !strings.Contains(string(eg), "cidr: 198.51.100.20/32") || !strings.Contains(strings.Join(egress.Policies[1].Notes, ""), "api.stripe.com allowed by the addresses") {
		t.Errorf("a name is allowed by the addresses it resolved to, and the export says so: %v\n%s", egress.Policies[1].Notes, eg)
	}

	without := m[:1] // batch is not in the map the policies come from
	ingress, egress, authz = NetworkPolicies(without, cat), EgressPolicies(without, cat), AuthorizationPolicies(without, cat)
	d := roundTrip(t, []Result{ingress, egress, authz}, m)
	if len(d) != 1 || d[0].Flow.String() != "batch.jobs -> api.shop:8080" {
		t.Errorf("policies without batch must deny exactly its call, got %v", d)
	}
	d = roundTrip(t, []Result{authz}, m)
	if len(d) != 1 || !strings.Contains(d[0].Reason, "no rule of AuthorizationPolicy shop/api-allow allows it (as cluster.local/ns/jobs/sa/batch-sa)") {
		t.Errorf("the AuthorizationPolicy alone must deny batch's call, got %v", d)
	}
}

func TestGenerationReportsWhatItCannotSelect(t *testing.T) {
	cat := shopWithService()
	cat.Add("shop", "web-canary", "Deployment", map[string]string{"app": "web", "track": "canary"}, nil)
	cat.Settle()
	res := NetworkPolicies(shopMap(), cat)
	if len(res.Problems) != 1 || res.Problems[0] != "client web.shop: not selected: labels app=web also select [web-canary]" {
		t.Errorf("problems %v", res.Problems)
	}
	noAccount := shopMap()
	noAccount[1].Status.ServiceAccounts = nil
	res = AuthorizationPolicies(noAccount, shopWithService())
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "client batch.jobs: no ServiceAccount recorded") {
		t.Errorf("problems %v", res.Problems)
	}
}

func TestAJobIsSelectedByWhatEveryRunOfItCarries(t *testing.T) {
	run := func(uid string) map[string]string {
		return map[string]string{
			"app": "migrate", "job-name": "migrate", batchv1.JobNameLabel: "migrate",
			"controller-uid": uid, batchv1.ControllerUidLabel: uid,
		}
	}
	cat := NewCatalog()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "migrate"}}
	job.Spec.Template.Labels = run("1f0c")
	cat.addTemplate(&job.ObjectMeta, "Job", &job.Spec.Template)
	cat.Settle()
	w := cat.Workload("shop", "migrate")
	if w == nil || len(w.Labels) == 0 {
		t.Fatalf("the Job is not in the catalog with labels: %+v", w)
	}
	if sel := labels.SelectorFromSet(w.Labels); !sel.Matches(labels.Set(run("9a7e"))) {
		t.Errorf("labels %s do not select the pods of the Job's next run", sel)
	}
}
