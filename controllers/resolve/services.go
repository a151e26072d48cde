package resolve

import (
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// serviceRecord is what the index keeps of a Service.
type serviceRecord struct {
	namespace string
	name      string
	ips       []netip.Addr
	selector  labels.Selector // nil when the Service selects no pods itself

	memoGeneration uint64
	memo           []Workload
}

// serviceIndex indexes Services by ClusterIP and by name.
type serviceIndex struct {
	mu     sync.Mutex
	byIP   map[netip.Addr]*serviceRecord
	byName map[workloadKey]*serviceRecord
}

func newServiceIndex() *serviceIndex {
	return &serviceIndex{byIP: map[netip.Addr]*serviceRecord{}, byName: map[workloadKey]*serviceRecord{}}
}

func (x *serviceIndex) upsert(svc *corev1.Service) {
	rec := &serviceRecord{namespace: svc.Namespace, name: svc.Name}
	for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if ip, err := netip.ParseAddr(s); err == nil {
			rec.ips = append(rec.ips, ip.Unmap())
		}
	}
	if len(svc.Spec.Selector) > 0 {
		rec.selector = labels.SelectorFromValidatedSet(svc.Spec.Selector)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(svc.Namespace, svc.Name)
	x.byName[workloadKey{svc.Namespace, svc.Name}] = rec
	for _, ip := range rec.ips {
		x.byIP[ip] = rec
	}
}

func (x *serviceIndex) remove(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(namespace, name)
}

func (x *serviceIndex) removeLocked(namespace, name string) {
	old := x.byName[workloadKey{namespace, name}]
	if old == nil {
		return
	}
	for _, ip := range old.ips {
		if x.byIP[ip] == old {
			delete(x.byIP, ip)
		}
	}
	delete(x.byName, workloadKey{namespace, name})
}

func (x *serviceIndex) byClusterIP(ip netip.Addr) (namespace, name string, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if rec := x.byIP[ip]; rec != nil {
		return rec.namespace, rec.name, true
	}
	return "", "", false
}

// backends returns the workloads behind a Service, remembered until a pod in its
// namespace changes.
func (x *serviceIndex) backends(pods *podIndex, namespace, name string) (found bool, out []Workload) {
	x.mu.Lock()
	rec := x.byName[workloadKey{namespace, name}]
	x.mu.Unlock()
	if rec == nil {
		return false, nil
	}
	if rec.selector == nil {
		return true, nil
	}
	gen := pods.namespaceGeneration(namespace)
	x.mu.Lock()
	if rec.memo != nil && rec.memoGeneration == gen {
		out = rec.memo
		x.mu.Unlock()
		return true, out
	}
	x.mu.Unlock()
	out = pods.selected(namespace, rec.selector)
	x.mu.Lock()
	rec.memo, rec.memoGeneration = out, gen
	x.mu.Unlock()
	return true, out
}

// serviceName parses a cluster DNS name for a Service — svc.ns.svc.<domain>,
// svc.ns.svc or svc.ns — or a bare svc in the client's namespace. ok is false for
// names that are not in the cluster's form.
func serviceName(host, clientNamespace, clusterDomain string) (namespace, name string, ok bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	host = strings.TrimSuffix(host, "."+clusterDomain)
	host = strings.TrimSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	switch len(parts) {
	case 1:
		return clientNamespace, parts[0], clientNamespace != ""
	case 2:
		return parts[1], parts[0], true
	}
	return "", "", false
}

// inCluster tells a cluster DNS name (anything under the cluster domain) from the rest.
func inCluster(host, clusterDomain string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == clusterDomain || strings.HasSuffix(host, "."+clusterDomain)
}
