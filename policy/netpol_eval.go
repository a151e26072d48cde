package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// NetworkPolicy semantics: a pod is isolated for a direction when some policy of its
// namespace selects it and has that policy type; an isolated pod accepts what the union
// of those policies' rules allows. Both ends must allow a connection.

func ingressVerdict(f Flow, client, server *Workload, nps []networkingv1.NetworkPolicy, cat *Catalog) string {
	isolating := selecting(nps, server, networkingv1.PolicyTypeIngress)
	if len(isolating) == 0 {
		return ""
	}
	for _, np := range isolating {
		for _, r := range np.Spec.Ingress {
			if peersMatch(r.From, np.Namespace, client, nil, cat) && portsMatch(r.Ports, f.Port, server) {
				return ""
			}
		}
	}
	return "ingress of " + server.Name + " isolated by " + names(isolating) + ", no rule allows it" + unknown(client, server)
}

func egressVerdict(f Flow, client, server *Workload, nps []networkingv1.NetworkPolicy, cat *Catalog) string {
	isolating := selecting(nps, client, networkingv1.PolicyTypeEgress)
	if len(isolating) == 0 {
		return ""
	}
	for _, np := range isolating {
		for _, r := range np.Spec.Egress {
			if peersMatch(r.To, np.Namespace, server, &f, cat) && portsMatch(r.Ports, f.Port, server) {
				return ""
			}
		}
	}
	why := "egress of " + client.Name + " isolated by " + names(isolating) + ", no rule allows it" + unknown(client, server)
	if f.Internet() && !f.IP.IsValid() {
		why += " (a name: NetworkPolicy allows IPs only)"
	}
	return why
}

// selecting lists the policies of w's namespace that select w and isolate it for t.
func selecting(nps []networkingv1.NetworkPolicy, w *Workload, t networkingv1.PolicyType) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for i := range nps {
		np := &nps[i]
		if np.Namespace == w.Namespace && (w.Unknown || selects(&np.Spec.PodSelector, w.Labels)) && slices.Contains(policyTypes(np), t) {
			out = append(out, np)
		}
	}
	return out
}

// policyTypes applies the API's default: Ingress always, Egress when egress rules exist.
func policyTypes(np *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(np.Spec.PolicyTypes) > 0 {
		return np.Spec.PolicyTypes
	}
	if len(np.Spec.Egress) > 0 {
		return []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	return []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
}

// peersMatch: no peers match every source; otherwise any peer. The other end is a
// workload w, or (w nil) the internet address of f.
func peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, w *Workload, f *Flow, cat *Catalog) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if peerMatches(p, policyNS, w, f, cat) {
			return true
		}
	}
	return false
}

func peerMatches(p networkingv1.NetworkPolicyPeer, policyNS string, w *Workload, f *Flow, cat *Catalog) bool {
	if p.IPBlock != nil {
		// Pod IPs are not known here; an ipBlock is taken to name outside addresses only.
		return w == nil && f != nil && f.IP.IsValid() && inBlock(p.IPBlock, f.IP)
	}
	if w == nil {
		return false
	}
	if p.NamespaceSelector == nil {
		return w.Namespace == policyNS && selects(p.PodSelector, w.Labels)
	}
	return selects(p.NamespaceSelector, cat.NamespaceLabels(w.Namespace)) && (p.PodSelector == nil || selects(p.PodSelector, w.Labels))
}

func inBlock(b *networkingv1.IPBlock, ip netip.Addr) bool {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(ip) {
			return false
		}
	}
	return true
}

func selects(s *metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(l))
}

// portsMatch: no ports match every port; a port entry matches TCP on its number, range
// or name (looked up in the destination's containers). An unknown port matches only
// rules without ports.
func portsMatch(ports []networkingv1.NetworkPolicyPort, port int32, dest *Workload) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case port == 0:
		case p.EndPort != nil && p.Port.IntVal > 0:
			if port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		case resolvePort(*p.Port, dest) == port:
			return true
		}
	}
	return false
}

// unknown says which ends were not found in the cluster, so could not be matched by labels.
func unknown(ws ...*Workload) string {
	var out []string
	for _, w := range ws {
		if w != nil && w.Unknown {
			out = append(out, w.Name+"."+w.Namespace)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (not in the cluster, labels unknown: " + strings.Join(out, ", ") + ")"
}

func names(nps []*networkingv1.NetworkPolicy) string {
	out := make([]string, 0, len(nps))
	for _, np := range nps {
		out = append(out, np.Namespace+"/"+np.Name)
	}
	return fmt.Sprintf("NetworkPolicy %s", strings.Join(out, ", "))
}
