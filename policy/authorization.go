package policy

import (
	"fmt"
	"strconv"

	securityv1beta1 "istio.io/api/security/v1beta1"
	istiotypev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// TrustDomain is the mesh's trust domain, the first part of every principal.
const TrustDomain = "cluster.local"

// Principal is the identity Istio gives a pod running as a ServiceAccount.
func Principal(namespace, account string) string {
	return fmt.Sprintf("%s/ns/%s/sa/%s", TrustDomain, namespace, account)
}

// AuthorizationPolicies writes one ALLOW AuthorizationPolicy per server workload: a rule
// per observed client, by its principals, with the observed paths and methods, or the
// ports alone for calls seen without HTTP detail.
func AuthorizationPolicies(items []discoveryv1alpha1.DiscoveredIntents, cat *Catalog) Result {
	var res Result
	byServer := map[*Workload]*Generated{}
	var servers []*Workload
	for _, e := range edges(items, cat, &res) {
		if len(e.accounts) == 0 {
			res.problem("client %s.%s: no ServiceAccount recorded, so no principal to allow", e.client.Name, e.client.Namespace)
			continue
		}
		g := byServer[e.server]
		if g == nil {
			g = &Generated{Object: newAuthorizationPolicy(e.server)}
			byServer[e.server] = g
			servers = append(servers, e.server)
		}
		ap := g.Object.(*securityv1.AuthorizationPolicy)
		ap.Spec.Rules = append(ap.Spec.Rules, rule(e))
		g.Notes = append(g.Notes, reviewNotes(e)...)
	}
	for _, s := range servers {
		res.Policies = append(res.Policies, *byServer[s])
	}
	res.sort()
	return res
}

func newAuthorizationPolicy(w *Workload) *securityv1.AuthorizationPolicy {
	ap := &securityv1.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: w.Name + "-allow", Namespace: w.Namespace},
	}
	ap.Spec.Selector = &istiotypev1beta1.WorkloadSelector{MatchLabels: w.Labels}
	ap.Spec.Action = securityv1beta1.AuthorizationPolicy_ALLOW
	return ap
}

func rule(e edge) *securityv1beta1.Rule {
	principals := make([]string, 0, len(e.accounts))
	for _, a := range e.accounts {
		principals = append(principals, Principal(e.client.Namespace, a))
	}
	r := &securityv1beta1.Rule{From: []*securityv1beta1.Rule_From{{Source: &securityv1beta1.Source{Principals: principals}}}}
	unique := uniqueSorted(e.ports)
	ports := make([]string, 0, len(unique))
	for _, p := range unique {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	if e.call.Type != discoveryv1alpha1.CallHTTP || len(e.call.HTTP) == 0 || e.call.Truncated {
		if len(ports) > 0 {
			r.To = []*securityv1beta1.Rule_To{{Operation: &securityv1beta1.Operation{Ports: ports}}}
		}
		return r
	}
	for _, h := range e.call.HTTP {
		r.To = append(r.To, &securityv1beta1.Rule_To{Operation: &securityv1beta1.Operation{Ports: ports, Paths: []string{h.Path}, Methods: h.Methods}})
	}
	return r
}

// reviewNotes say what in a rule rests on weak evidence.
func reviewNotes(e edge) []string {
	from := e.client.Name + "." + e.client.Namespace
	var notes []string
	if e.call.Truncated {
		notes = append(notes, from+": more paths were seen than recorded; allowed on its ports, any path")
	} else if e.call.Type == discoveryv1alpha1.CallHTTP && len(e.call.HTTP) == 0 {
		notes = append(notes, from+": HTTP seen without paths (no Telemetry for request_path?); allowed on its ports, any path")
	}
	if e.call.LastSeen == nil && e.call.SeenBefore != nil {
		notes = append(notes, from+": known only from a proxy's first read (history, not proof of current use)")
	}
	for _, h := range e.call.HTTP {
		if h.LastSeen == nil && h.SeenBefore != nil {
			notes = append(notes, from+": path "+h.Path+" known only from a proxy's first read (history)")
		}
	}
	return notes
}
