package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// shop: web and worker call api (port 8080, named http) in namespace shop; batch calls
// it from namespace jobs.
func shop() *Catalog {
	c := NewCatalog()
	c.AddNamespace("shop", map[string]string{"team": "shop"})
	c.AddNamespace("jobs", nil)
	http := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	c.Add("shop", "web", "Deployment", map[string]string{"app": "web"}, nil)
	c.Add("shop", "worker", "Deployment", map[string]string{"app": "worker"}, nil)
	c.Add("shop", "api", "Deployment", map[string]string{"app": "api", "tier": "backend"}, http)
	c.Add("jobs", "batch", "CronJob", map[string]string{"app": "batch"}, nil)
	c.Settle()
	return c
}

func flow(client, clientNS, path, method string) Flow {
	f := Flow{Client: client, ClientNamespace: clientNS, Accounts: []string{client}, Server: "api", ServerNamespace: "shop", Port: 8080}
	if path != "" || method != "" {
		f.HTTP, f.Path, f.Method = true, path, method
	}
	return f
}

func policies(t *testing.T, yamls ...string) *Policies {
	t.Helper()
	p := &Policies{}
	if err := ParsePolicies(strings.NewReader(strings.Join(yamls, "\n---\n")), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// denied runs the preview and returns the denied flows' clients, in order.
func denied(t *testing.T, pols *Policies, flows ...Flow) string {
	t.Helper()
	denials := Preview(flows, pols, shop())
	out := make([]string, 0, len(denials))
	for _, d := range denials {
		out = append(out, strings.TrimSpace(d.Flow.Client+" "+d.Flow.Method+" "+d.Flow.Path))
	}
	return strings.TrimSpace(strings.Join(out, ", "))
}

const allowWebToAPI = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]`

func TestNetworkPolicyIsolationAndUnion(t *testing.T) {
	web, worker, batch := flow("web", "shop", "", ""), flow("worker", "shop", "", ""), flow("batch", "jobs", "", "")
	if got := denied(t, &Policies{}, web, worker, batch); got != "" {
		t.Errorf("no policy isolates nothing, denied %q", got)
	}
	if got := denied(t, policies(t, allowWebToAPI), web, worker, batch); got != "worker, batch" {
		t.Errorf("api isolated, web allowed by its named port: denied %q", got)
	}
	other := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: worker, namespace: shop}
spec:
  podSelector: {matchLabels: {tier: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: worker}}}, {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: jobs}}}]
    ports: [{port: 8000, endPort: 8100}]`
	if got := denied(t, policies(t, allowWebToAPI, other), web, worker, batch); got != "" {
		t.Errorf("the union of both policies allows all three, denied %q", got)
	}
	podOnly := strings.Replace(other, "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: jobs}}}", "{podSelector: {matchLabels: {app: batch}}}", 1)
	if got := denied(t, policies(t, allowWebToAPI, podOnly), batch); got != "batch" {
		t.Errorf("a pod selector alone selects pods of the policy's namespace only, denied %q", got)
	}
	denyAll := `{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}`
	if got := denied(t, policies(t, denyAll), web); got != "web" {
		t.Errorf("an isolating policy without rules denies all, denied %q", got)
	}
	elsewhere := strings.Replace(denyAll, `"podSelector": {}`, `"podSelector": {"matchLabels": {"app": "db"}}`, 1)
	if got := denied(t, policies(t, elsewhere), web); got != "" {
		t.Errorf("a policy selecting other pods does not isolate api, denied %q", got)
	}
}

func TestNetworkPolicyEgress(t *testing.T) {
	egress := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  egress:
  - to: [{ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.9/32]}}]
    ports: [{protocol: TCP, port: 443}]`
	out := func(ip string) Flow {
		f := Flow{Client: "web", ClientNamespace: "shop", Server: ip, Port: 443}
		f.IP.UnmarshalText([]byte(ip)) //nolint:errcheck // a test address
		return f
	}
	name := Flow{Client: "web", ClientNamespace: "shop", Server: "api.stripe.com", Port: 443}
	got := Preview([]Flow{out("198.51.100.7"), out("198.51.100.9"), name, flow("web", "shop", "", "")}, policies(t, egress), shop())
	lines := make([]string, 0, len(got))
	for _, d := range got {
		lines = append(lines, d.Flow.Server)
	}
	// Egress rules without policyTypes isolate egress; api is not among the allowed.
	if strings.Join(lines, " ") != "198.51.100.9 api.stripe.com api" {
		t.Errorf("denied %v", got)
	}
}

const allowAll = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  rules: [{}]`

func TestAuthorizationPolicyDenyBeforeAllow(t *testing.T) {
	web, worker := flow("web", "shop", "/items/42", "GET"), flow("worker", "shop", "/items/42", "GET")
	if got := denied(t, policies(t), web); got != "" {
		t.Errorf("no ALLOW policy allows, denied %q", got)
	}
	deny := `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-web, namespace: istio-system}
spec:
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]}]`
	if got := denied(t, policies(t, allowAll, deny), web, worker); got != "web GET /items/42" {
		t.Errorf("a root-namespace DENY wins over an ALLOW, denied %q", got)
	}
	nothing := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: none, namespace: shop}\nspec: {selector: {matchLabels: {app: api}}}"
	if got := denied(t, policies(t, nothing), web); got != "web GET /items/42" {
		t.Errorf("an ALLOW policy without rules allows nothing, denied %q", got)
	}
}

func TestAuthorizationPolicyOperations(t *testing.T) {
	allow := `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/*"]}}]
    to:
    - operation: {paths: ["/items/*"], methods: [GET], ports: ["8080"]}
    - operation: {paths: ["/orders"], methods: [POST]}`
	pols := policies(t, allow)
	for _, c := range []struct {
		f    Flow
		deny bool
	}{
		{flow("web", "shop", "/items/42", "GET"), false},
		{flow("web", "shop", "/items/*", "GET"), false}, // every id under /items/
		{flow("web", "shop", "/items/42", "DELETE"), true},
		{flow("web", "shop", "/orders", "POST"), false},
		{flow("web", "shop", "/orders/7", "POST"), true}, // exact path
		{flow("web", "shop", "", ""), true},              // HTTP without a known path
		{flow("batch", "jobs", "/items/1", "GET"), true}, // principal of another namespace
		{func() Flow { f := flow("web", "shop", "/items/1", "GET"); f.Accounts = nil; return f }(), true},
	} {
		got := len(Preview([]Flow{c.f}, pols, shop())) > 0
		if got != c.deny {
			t.Errorf("%s: denied %v, want %v", c.f, got, c.deny)
		}
	}
	tcp := flow("web", "shop", "", "")
	tcp.HTTP = false
	if got := denied(t, pols, tcp); got != "web" {
		t.Errorf("an ALLOW rule with HTTP fields never matches TCP, denied %q", got)
	}
	denyPaths := strings.Replace(strings.Replace(allow, "name: api", "name: api-deny", 1), "  rules:", "  action: DENY\n  rules:", 1)
	if got := denied(t, policies(t, allowAll, denyPaths), tcp); got != "web" {
		t.Errorf("a DENY rule's HTTP fields are ignored for TCP, so it matches: denied %q", got)
	}
}

func TestParsePoliciesRefusesGarbage(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nspec: {podSelectr: {}}",
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nspec: {action: MAYBE}",
		"{not yaml",
	} {
		if err := ParsePolicies(strings.NewReader(bad), &Policies{}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	p := &Policies{}
	if err := ParsePolicies(strings.NewReader("# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}"), p); err != nil || p.Skipped != 1 {
		t.Errorf("other kinds are skipped and counted: %v, %+v", err, p)
	}
}

func FuzzParsePolicies(f *testing.F) {
	f.Add(allowWebToAPI)
	f.Add(allowAll)
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nspec: {rules: [{to: [{operation: {paths: ['*']}}]}]}")
	f.Fuzz(func(t *testing.T, doc string) {
		p := &Policies{}
		if err := ParsePolicies(strings.NewReader(doc), p); err != nil {
			return
		}
		Preview([]Flow{flow("web", "shop", "/a", "GET"), flow("batch", "jobs", "", "")}, p, shop())
	})
}

func TestWorkloadsNotInTheClusterAreDeniedOnlyWherePoliciesMayApply(t *testing.T) {
	gone := flow("gone", "shop", "", "")
	if got := denied(t, &Policies{}, gone); got != "" {
		t.Errorf("no policy denies nothing, even for an unknown client: %q", got)
	}
	d := Preview([]Flow{gone}, policies(t, allowWebToAPI), shop())
	if len(d) != 1 || !strings.Contains(d[0].Reason, "labels unknown: gone.shop") {
		t.Errorf("an unknown client cannot be matched by labels: %v", d)
	}
}
