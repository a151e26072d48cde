package policy

import (
	"strconv"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// RootNamespace is Istio's root namespace, whose policies apply mesh-wide.
const RootNamespace = "istio-system"

// AuthorizationPolicy semantics: CUSTOM aside, a request matching any DENY policy is
// denied; otherwise, with no ALLOW policy on the workload it is allowed, and with some
// it is allowed only if a rule of one of them matches.
//
// Attributes not known from the map (hosts, JWT principals, source IPs, conditions)
// count as matching in DENY rules and as not matching in ALLOW rules, so a preview
// never hides a denial. For TCP, Istio ignores a DENY rule's HTTP-only fields and never
// matches an ALLOW rule that has them; unknown HTTP detail is treated the same way.

// request is what the server's proxy sees of a flow from one principal.
type request struct {
	principal, namespace string // empty when the client has no known identity
	port                 int32
	http                 bool
	path, method         string
}

func authorizationVerdict(f Flow, server *Workload, aps []*securityv1.AuthorizationPolicy) string {
	applying := applicable(aps, server)
	for _, req := range requests(f) {
		if r := decide(req, applying); r != "" {
			return r
		}
	}
	return ""
}

func requests(f Flow) []request {
	base := request{port: f.Port, http: f.HTTP, path: f.Path, method: f.Method}
	if len(f.Accounts) == 0 {
		return []request{base}
	}
	var out []request
	for _, a := range f.Accounts {
		r := base
		r.principal, r.namespace = Principal(f.ClientNamespace, a), f.ClientNamespace
		out = append(out, r)
	}
	return out
}

// applicable lists the policies that apply to the server's own proxy: of its namespace or
// the root namespace, selecting it (or all); those bound by targetRefs apply elsewhere.
func applicable(aps []*securityv1.AuthorizationPolicy, w *Workload) []*securityv1.AuthorizationPolicy {
	var out []*securityv1.AuthorizationPolicy
	for _, ap := range aps {
		if ap.Namespace != w.Namespace && ap.Namespace != RootNamespace {
			continue
		}
		if ap.Spec.TargetRef != nil || len(ap.Spec.TargetRefs) > 0 {
			continue
		}
		if sel := ap.Spec.Selector; sel != nil && !w.Unknown && !labels.SelectorFromSet(sel.MatchLabels).Matches(labels.Set(w.Labels)) {
			continue
		}
		out = append(out, ap)
	}
	return out
}

func decide(req request, aps []*securityv1.AuthorizationPolicy) string {
	for _, ap := range aps {
		if ap.Spec.Action == securityv1beta1.AuthorizationPolicy_DENY && anyRule(ap.Spec.Rules, req, true) {
			return "denied by AuthorizationPolicy " + ap.Namespace + "/" + ap.Name + who(req)
		}
	}
	var allows []string
	for _, ap := range aps {
		if ap.Spec.Action != securityv1beta1.AuthorizationPolicy_ALLOW {
			continue
		}
		if anyRule(ap.Spec.Rules, req, false) {
			return ""
		}
		allows = append(allows, ap.Namespace+"/"+ap.Name)
	}
	if len(allows) == 0 {
		return ""
	}
	return "no rule of AuthorizationPolicy " + strings.Join(allows, ", ") + " allows it" + who(req)
}

func who(req request) string {
	if req.principal == "" {
		return " (client identity unknown: no ServiceAccount recorded)"
	}
	return " (as " + req.principal + ")"
}

// anyRule: a policy without rules matches nothing; an empty rule matches everything.
func anyRule(rules []*securityv1beta1.Rule, req request, deny bool) bool {
	for _, r := range rules {
		if r == nil || ruleMatches(r, req, deny) {
			return true
		}
	}
	return false
}

func ruleMatches(r *securityv1beta1.Rule, req request, deny bool) bool {
	if len(r.When) > 0 && !deny {
		return false // conditions are not known from the map
	}
	if len(r.From) > 0 && !anyOf(len(r.From), func(i int) bool { return sourceMatches(r.From[i].GetSource(), req, deny) }) {
		return false
	}
	return len(r.To) == 0 || anyOf(len(r.To), func(i int) bool { return operationMatches(r.To[i].GetOperation(), req, deny) })
}

func anyOf(n int, f func(int) bool) bool {
	for i := range n {
		if f(i) {
			return true
		}
	}
	return false
}

func sourceMatches(s *securityv1beta1.Source, req request, deny bool) bool {
	if s == nil {
		return true
	}
	unknown := len(s.RequestPrincipals)+len(s.NotRequestPrincipals)+len(s.IpBlocks)+len(s.NotIpBlocks)+
		len(s.RemoteIpBlocks)+len(s.NotRemoteIpBlocks) > 0
	if unknown && !deny {
		return false
	}
	account := ""
	if req.principal != "" {
		account = req.namespace + "/" + req.principal[strings.LastIndex(req.principal, "/")+1:]
	}
	trust := ""
	if req.principal != "" {
		trust = TrustDomain
	}
	return field(s.Principals, s.NotPrincipals, req.principal, deny) &&
		field(s.Namespaces, s.NotNamespaces, req.namespace, deny) &&
		field(s.ServiceAccounts, s.NotServiceAccounts, account, deny) &&
		field(s.TrustDomains, s.NotTrustDomains, trust, deny)
}

func operationMatches(o *securityv1beta1.Operation, req request, deny bool) bool {
	if o == nil {
		return true
	}
	if len(o.Hosts)+len(o.NotHosts) > 0 && !deny {
		return false // the Host header is not known from the map
	}
	port := ""
	if req.port != 0 {
		port = strconv.Itoa(int(req.port))
	}
	if !field(o.Ports, o.NotPorts, port, deny) {
		return false
	}
	httpOnly := len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths) > 0
	if httpOnly && !req.http {
		return deny // TCP: ignored in DENY, never matching in ALLOW
	}
	method := ""
	if req.method != "" {
		method = req.method
	}
	return field(o.Methods, o.NotMethods, method, deny) && pathField(o.Paths, o.NotPaths, req.path, deny)
}

// field matches a value against a field and its negation; an empty value is unknown
// and matches as the action's caution says.
func field(in, notIn []string, v string, deny bool) bool {
	if len(in)+len(notIn) == 0 {
		return true
	}
	if v == "" {
		return deny
	}
	if len(in) > 0 && !anyOf(len(in), func(i int) bool { return stringMatch(in[i], v) }) {
		return false
	}
	return !anyOf(len(notIn), func(i int) bool { return stringMatch(notIn[i], v) })
}

// stringMatch is Istio's string match: exact, "prefix*", "*suffix", or "*".
func stringMatch(pattern, v string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, pattern[:len(pattern)-1])
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, pattern[1:])
	}
	return pattern == v
}
