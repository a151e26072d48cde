package resolve

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// noOwners: the pods in these tests have no owners to look up.
type noOwners struct{}

func (noOwners) ControllerOf(context.Context, string, string, string) (string, string, bool) {
	return "", "", false
}

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func pod(name, ip string, hostNetwork bool, ports ...int32) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(name), CreationTimestamp: metav1.Time{Time: now.Add(-time.Hour)}},
		Spec:       corev1.PodSpec{NodeName: "node-a", HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	for _, port := range ports {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port})
	}
	return p
}

func resolver(pods ...*corev1.Pod) *Resolver {
	r := New(noOwners{}, DefaultOptions())
	for _, p := range pods {
		r.PodChanged(context.Background(), p, now)
	}
	return r
}

func resolveConn(r *Resolver, node, client, server string, port uint16) []Call {
	var out []Call
	r.Resolve(&reportv1.Report{Node: node, Connections: []reportv1.Connection{{
		Client: netip.MustParseAddr(client), Server: netip.MustParseAddr(server), Port: port, Time: now,
	}}}, func(c Call) { out = append(out, c) })
	return out
}

func counted(t *testing.T, reason string, do func()) {
	t.Helper()
	before := testutil.ToFloat64(unresolvedTotal.WithLabelValues(reason))
	do()
	if got := testutil.ToFloat64(unresolvedTotal.WithLabelValues(reason)); got != before+1 {
		t.Errorf("%s counted %v times, want once", reason, got-before)
	}
}

func TestHostNetworkServerIsFoundByPort(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false), pod("node-exporter", "192.168.1.5", true, 9100), pod("kube-proxy", "192.168.1.5", true, 10256))
	calls := resolveConn(r, "node-a", "10.0.0.1", "192.168.1.5", 9100)
	if len(calls) != 1 || calls[0].Server.Name != "node-exporter" {
		t.Fatalf("calls %+v", calls)
	}
	counted(t, HostNetworkServer, func() {
		if calls := resolveConn(r, "node-a", "10.0.0.1", "192.168.1.5", 22); len(calls) != 0 {
			t.Errorf("a port no host-network pod serves was attributed: %+v", calls)
		}
	})
}

func TestHostNetworkClientIsNotGuessed(t *testing.T) {
	r := resolver(pod("server", "10.0.0.2", false), pod("agent", "192.168.1.5", true))
	counted(t, HostNetworkClient, func() {
		if calls := resolveConn(r, "node-a", "192.168.1.5", "10.0.0.2", 80); len(calls) != 0 {
			t.Errorf("the node's own traffic was blamed on a host-network pod: %+v", calls)
		}
	})
}

func TestUnknownAddresses(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false))
	counted(t, UnknownServer, func() {
		if calls := resolveConn(r, "node-a", "10.0.0.1", "10.9.9.9", 80); len(calls) != 0 {
			t.Errorf("an unknown private IP was attributed: %+v", calls)
		}
	})
	calls := resolveConn(r, "node-a", "10.0.0.1", "198.51.100.7", 443)
	if len(calls) != 1 || calls[0].Type != discoveryv1alpha1.CallInternet || calls[0].IP != "198.51.100.7" {
		t.Errorf("a public IP with no name is an internet call by IP: %+v", calls)
	}
	counted(t, UnknownClient, func() { resolveConn(r, "node-a", "10.7.7.7", "198.51.100.7", 443) })
}

func TestClientMustRunOnTheReportingNode(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false), pod("server", "10.0.0.2", false))
	counted(t, ForeignClient, func() {
		if calls := resolveConn(r, "node-b", "10.0.0.1", "10.0.0.2", 80); len(calls) != 0 {
			t.Errorf("an agent reported for another node's pod: %+v", calls)
		}
	})
}

func TestTombstonesAreBounded(t *testing.T) {
	r := New(noOwners{}, Options{ClusterDomain: "cluster.local", TombstoneTTL: time.Minute, MaxTombstones: 2, DNSPerClient: 8, DNSClients: 8})
	for i, name := range []string{"a", "b", "c"} {
		p := pod(name, fmt.Sprintf("10.0.1.%d", i+1), false)
		r.PodChanged(context.Background(), p, now)
		r.PodDeleted(p, now)
	}
	if _, ok := r.WorkloadAt(netip.MustParseAddr("10.0.1.1"), now.Add(-time.Second)); ok {
		t.Error("the oldest tombstone outlived the count bound")
	}
	if _, ok := r.WorkloadAt(netip.MustParseAddr("10.0.1.3"), now.Add(-time.Second)); !ok {
		t.Error("a recent tombstone was forgotten")
	}
	r.Prune(now.Add(2 * time.Minute))
	if _, ok := r.WorkloadAt(netip.MustParseAddr("10.0.1.3"), now.Add(-time.Second)); ok {
		t.Error("a tombstone outlived its time")
	}
}

func TestSidecarMustBeTheWorkloadItSpeaksFor(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false), pod("nginx", "10.0.0.2", false), pod("mallory", "10.0.0.3", false))
	forged := reportv1.HTTPCall{
		Reporter: reportv1.ReporterSource, Proxy: netip.MustParseAddr("10.0.0.3"),
		Source: reportv1.Workload{Namespace: "shop", Name: "client"}, Destination: reportv1.Workload{Namespace: "shop", Name: "nginx"},
		Method: "GET", Path: "/admin", Count: 1, Time: now,
	}
	counted(t, ProxyMismatch, func() {
		r.Resolve(&reportv1.Report{Node: "node-a", HTTP: []reportv1.HTTPCall{forged}}, func(c Call) { t.Errorf("forged call accepted: %+v", c) })
	})
}

func TestTheClientsViewWinsOverTheServers(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false), pod("nginx", "10.0.0.2", false), pod("curl", "10.0.0.3", false))
	view := func(reporter, proxy, src, path string, mtls bool) reportv1.HTTPCall {
		return reportv1.HTTPCall{Reporter: reporter, Proxy: netip.MustParseAddr(proxy), MutualTLS: mtls,
			Source: reportv1.Workload{Namespace: "shop", Name: src}, Destination: reportv1.Workload{Namespace: "shop", Name: "nginx"},
			Method: "GET", Path: path, Count: 1, Time: now}
	}
	var got []string
	emit := func(c Call) { got = append(got, c.Client.Name+" "+c.Path) }
	r.Resolve(&reportv1.Report{Node: "node-a", HTTP: []reportv1.HTTPCall{
		view("source", "10.0.0.1", "client", "/a", true),
		view("destination", "10.0.0.2", "client", "/rewritten/a", true), // the same calls, seen by nginx
		view("destination", "10.0.0.2", "curl", "/b", false),            // curl has no sidecar
	}}, emit)
	if fmt.Sprint(got) != "[client /a curl /b]" {
		t.Errorf("got %v", got)
	}
}

func TestTheClientsServiceAccountIsRecorded(t *testing.T) {
	client := pod("client", "10.0.0.1", false)
	client.Spec.ServiceAccountName = "shop-client"
	r := resolver(client, pod("nginx", "10.0.0.2", false))
	calls := resolveConn(r, "node-a", "10.0.0.1", "10.0.0.2", 80)
	if len(calls) != 1 || calls[0].ClientAccount != "shop-client" {
		t.Fatalf("connection: %+v", calls)
	}
	var mesh []Call
	r.Resolve(&reportv1.Report{Node: "node-a", HTTP: []reportv1.HTTPCall{{
		Reporter: reportv1.ReporterDestination, Proxy: netip.MustParseAddr("10.0.0.1"),
		Source: reportv1.Workload{Namespace: "shop", Name: "nginx"}, Destination: reportv1.Workload{Namespace: "shop", Name: "client"},
		Method: "GET", Path: "/", Count: 1, Time: now,
	}}}, func(c Call) { mesh = append(mesh, c) })
	if len(mesh) != 1 || mesh[0].ClientAccount != "default" {
		t.Errorf("a pod naming no ServiceAccount runs as default: %+v", mesh)
	}
}

func TestAnInternetNameKeepsTheAddressItResolvedTo(t *testing.T) {
	r := resolver(pod("client", "10.0.0.1", false))
	var calls []Call
	r.Resolve(&reportv1.Report{Node: "node-a",
		DNS: []reportv1.DNSAnswer{{Client: netip.MustParseAddr("10.0.0.1"), Name: "api.stripe.com",
			IPs: []netip.Addr{netip.MustParseAddr("198.51.100.20")}, TTL: 60, Time: now}},
		Connections: []reportv1.Connection{{Client: netip.MustParseAddr("10.0.0.1"), Server: netip.MustParseAddr("198.51.100.20"), Port: 443, Time: now}},
	}, func(c Call) { calls = append(calls, c) })
	if len(calls) != 1 || calls[0].Domain != "api.stripe.com" || calls[0].ResolvedIP != "198.51.100.20" || calls[0].IP != "" {
		t.Errorf("calls %+v", calls)
	}
}
