package policy

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var tcp = corev1.ProtocolTCP

// NetworkPolicies writes one ingress NetworkPolicy per server workload, allowing exactly
// the observed clients on the observed pod ports.
func NetworkPolicies(items []discoveryv1alpha1.DiscoveredIntents, cat *Catalog) Result {
	var res Result
	byServer := map[*Workload][]networkingv1.NetworkPolicyIngressRule{}
	var servers []*Workload
	for _, e := range edges(items, cat, &res) {
		if byServer[e.server] == nil {
			servers = append(servers, e.server)
		}
		byServer[e.server] = append(byServer[e.server], networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{peer(e.client, e.server.Namespace)},
			Ports: netpolPorts(e.ports),
		})
	}
	for _, s := range servers {
		np := newNetworkPolicy(s, s.Name+"-ingress", networkingv1.PolicyTypeIngress)
		np.Spec.Ingress = byServer[s]
		res.Policies = append(res.Policies, Generated{Object: np})
	}
	res.sort()
	return res
}

func newNetworkPolicy(w *Workload, name string, t networkingv1.PolicyType) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Namespace},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: w.Labels},
			PolicyTypes: []networkingv1.PolicyType{t},
		},
	}
}

// peer selects w's pods from a policy in namespace from: a pod selector alone means the
// policy's own namespace; another namespace is selected by its name label.
func peer(w *Workload, from string) networkingv1.NetworkPolicyPeer {
	p := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: w.Labels}}
	if w.Namespace != from {
		p.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: w.Namespace}}
	}
	return p
}

// netpolPorts lists TCP ports; none means every port (the call's ports were not seen).
func netpolPorts(ports []int32) []networkingv1.NetworkPolicyPort {
	unique := uniqueSorted(ports)
	out := make([]networkingv1.NetworkPolicyPort, 0, len(unique))
	for _, p := range unique {
		port := intstr.FromInt32(p)
		out = append(out, networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port})
	}
	return out
}
