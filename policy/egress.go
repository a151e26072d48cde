package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// ClusterDNS selects the cluster's DNS pods (CoreDNS keeps kube-dns's label).
var ClusterDNS = struct {
	Namespace string
	Labels    map[string]string
}{Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns"}}

// EgressPolicies writes one egress NetworkPolicy per client workload: DNS to the
// cluster DNS, the observed in-cluster servers on their pod ports, and the internet
// addresses it connected to. Names cannot be: NetworkPolicy selects by IP only.
func EgressPolicies(items []discoveryv1alpha1.DiscoveredIntents, cat *Catalog) Result {
	var res Result
	rules := map[*Workload][]networkingv1.NetworkPolicyEgressRule{}
	for _, e := range edges(items, cat, &res) {
		rules[e.client] = append(rules[e.client], networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{peer(e.server, e.client.Namespace)}, Ports: netpolPorts(e.ports),
		})
	}
	for i := range items {
		di := &items[i]
		client := cat.Workload(di.Namespace, di.Spec.Workload.Name)
		if client == nil || client.Ambiguous != "" {
			continue // reported by edges
		}
		internet, names, resolved := internetRules(di, &res)
		np := newNetworkPolicy(client, client.Name+"-egress", networkingv1.PolicyTypeEgress)
		np.Spec.Egress = append(append([]networkingv1.NetworkPolicyEgressRule{dnsRule()}, rules[client]...), internet...)
		g := Generated{Object: np}
		switch {
		case len(resolved) > 0:
			g.Notes = append(g.Notes, fmt.Sprintf("%s allowed by the addresses they resolved to when observed (%s), which DNS may change; names need a CNI with FQDN policies",
				strings.Join(names, ", "), strings.Join(resolved, ", ")))
		case len(names) > 0:
			g.Notes = append(g.Notes, fmt.Sprintf("not allowed here, by name only: %s; a NetworkPolicy selects IPs, names need a CNI with FQDN policies",
				strings.Join(names, ", ")))
		}
		res.Policies = append(res.Policies, g)
	}
	res.sort()
	return res
}

func dnsRule() networkingv1.NetworkPolicyEgressRule {
	udp, port := corev1.ProtocolUDP, intstr.FromInt32(53)
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ClusterDNS.Namespace}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: ClusterDNS.Labels},
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
	}
}

// internetRules allows the internet IPs the client connected to, those its names
// resolved to included, and returns the names (only a CNI with FQDN policies can allow
// them as names) and the addresses they resolved to.
func internetRules(di *discoveryv1alpha1.DiscoveredIntents, res *Result) (rules []networkingv1.NetworkPolicyEgressRule, names, resolved []string) {
	for _, call := range di.Status.Calls {
		if call.Type != discoveryv1alpha1.CallInternet || call.Internet == nil {
			continue
		}
		names = append(names, call.Internet.Domains...)
		resolved = append(resolved, call.Internet.ResolvedIPs...)
		var peers []networkingv1.NetworkPolicyPeer
		for _, s := range append(slices.Clone(call.Internet.IPs), call.Internet.ResolvedIPs...) {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				res.problem("client %s.%s: internet address %q is not an IP", di.Spec.Workload.Name, di.Namespace, s)
				continue
			}
			peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(ip, ip.BitLen()).String()}})
		}
		if len(peers) > 0 {
			rules = append(rules, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: netpolPorts(call.Ports)})
		}
	}
	return rules, uniqueSorted(names), uniqueSorted(resolved)
}
