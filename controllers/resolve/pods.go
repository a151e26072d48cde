package resolve

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// clockSkew is how far before a pod's creation an observation may be stamped and still
// be blamed on it: agents' clocks and the API server's are not exactly the same.
const clockSkew = 5 * time.Second

// podRecord is what the index keeps of a pod: enough to attribute traffic, no more.
type podRecord struct {
	uid         types.UID
	namespace   string
	name        string
	node        string
	labels      labels.Set
	hostNetwork bool
	ports       []int32 // container and host ports, for host-network servers
	ips         []netip.Addr
	start       time.Time // creation: the IP cannot be the pod's before it existed
	end         time.Time // deletion or termination; zero while the pod holds its IPs
	workload    Workload
	settled     bool   // workload found from real owners, not from a name guess
	account     string // the pod's ServiceAccount
}

// workloadKey names a workload without its kind, as Istio's labels do.
type workloadKey struct{ namespace, name string }

// covers reports whether the pod existed at t, its start moved back by skew.
func (p *podRecord) covers(t time.Time, skew time.Duration) bool {
	return !t.Before(p.start.Add(-skew)) && (p.end.IsZero() || t.Before(p.end))
}

// podIndex indexes pods by IP over time.
type podIndex struct {
	mu            sync.RWMutex
	owners        OwnerLookup
	byIP          map[netip.Addr][]*podRecord // oldest first
	hostNetwork   map[netip.Addr][]*podRecord // pods sharing their node's IPs
	byUID         map[types.UID]*podRecord
	tombstones    []*podRecord // ended, oldest first, pruned after tombstoneTTL
	tombstoneTTL  time.Duration
	maxTombstones int
	generation    map[string]uint64 // per namespace, bumped on any pod change
	workloads     map[workloadKey]workloadCount
}

type workloadCount struct {
	workload Workload
	pods     int
	account  string // ServiceAccount of the pod tracked last
}

func newPodIndex(owners OwnerLookup, tombstoneTTL time.Duration, maxTombstones int) *podIndex {
	return &podIndex{
		owners:        owners,
		byIP:          map[netip.Addr][]*podRecord{},
		hostNetwork:   map[netip.Addr][]*podRecord{},
		byUID:         map[types.UID]*podRecord{},
		tombstoneTTL:  tombstoneTTL,
		maxTombstones: maxTombstones,
		generation:    map[string]uint64{},
		workloads:     map[workloadKey]workloadCount{},
	}
}

// upsert records a pod as the API server has it now.
func (x *podIndex) upsert(ctx context.Context, pod *corev1.Pod, now time.Time) {
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	x.mu.RLock()
	old := x.byUID[pod.UID]
	x.mu.RUnlock()
	if old != nil && !old.end.IsZero() {
		return // ended pods do not come back
	}
	if terminal {
		x.end(pod.UID, now) // a finished pod's IPs may go to another pod
		return
	}
	rec := &podRecord{
		uid: pod.UID, namespace: pod.Namespace, name: pod.Name, node: pod.Spec.NodeName,
		labels: labels.Set(pod.Labels), hostNetwork: pod.Spec.HostNetwork,
		ports: hostNetworkPorts(pod), ips: podIPs(pod), start: pod.CreationTimestamp.Time,
		account: serviceAccount(pod),
	}
	if old != nil && old.settled {
		rec.workload, rec.settled = old.workload, true
	} else {
		rec.workload, rec.settled = workloadOf(ctx, x.owners, pod)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil {
		x.unindex(old)
		x.untrack(old)
	}
	x.byUID[pod.UID] = rec
	x.index(rec)
	x.track(rec)
	x.generation[pod.Namespace]++
}

// end marks a pod's IPs as released at time t; its record stays as a tombstone.
func (x *podIndex) end(uid types.UID, t time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	rec := x.byUID[uid]
	if rec == nil || !rec.end.IsZero() {
		return
	}
	rec.end = t
	x.tombstones = append(x.tombstones, rec)
	x.generation[rec.namespace]++
	x.pruneLocked(t)
}

// prune forgets tombstones older than the TTL, or beyond the count bound.
func (x *podIndex) prune(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pruneLocked(now)
}

func (x *podIndex) pruneLocked(now time.Time) {
	drop := 0
	for drop < len(x.tombstones) {
		t := x.tombstones[drop]
		if now.Sub(t.end) < x.tombstoneTTL && len(x.tombstones)-drop <= x.maxTombstones {
			break
		}
		x.unindex(t)
		x.untrack(t)
		delete(x.byUID, t.uid)
		drop++
	}
	x.tombstones = x.tombstones[drop:]
}

func (x *podIndex) index(rec *podRecord) {
	target := x.byIP
	if rec.hostNetwork {
		target = x.hostNetwork
	}
	for _, ip := range rec.ips {
		target[ip] = append(target[ip], rec)
	}
}

func (x *podIndex) track(rec *podRecord) {
	key := workloadKey{rec.workload.Namespace, rec.workload.Name}
	c := x.workloads[key]
	x.workloads[key] = workloadCount{workload: rec.workload, pods: c.pods + 1, account: rec.account}
}

func (x *podIndex) untrack(rec *podRecord) {
	key := workloadKey{rec.workload.Namespace, rec.workload.Name}
	if c := x.workloads[key]; c.pods > 1 {
		x.workloads[key] = workloadCount{workload: c.workload, pods: c.pods - 1, account: c.account}
	} else {
		delete(x.workloads, key)
	}
}

func (x *podIndex) unindex(rec *podRecord) {
	target := x.byIP
	if rec.hostNetwork {
		target = x.hostNetwork
	}
	for _, ip := range rec.ips {
		list := slices.DeleteFunc(target[ip], func(r *podRecord) bool { return r == rec })
		if len(list) == 0 {
			delete(target, ip)
		} else {
			target[ip] = list
		}
	}
}

// at returns the pod that held ip at time t. An IP passes to a new pod only after the
// old one released it, so of the pods whose lifetime covers t, the one that ended
// first had it. Only when none covers t exactly, clock skew is allowed for, and the
// pod created last wins. Host-network pods are never returned: they share the node's IPs.
func (x *podIndex) at(ip netip.Addr, t time.Time) *podRecord {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var best *podRecord
	for _, rec := range x.byIP[ip] {
		if rec.covers(t, 0) && (best == nil || endsBefore(rec, best)) {
			best = rec
		}
	}
	if best != nil {
		return best
	}
	for _, rec := range x.byIP[ip] {
		if rec.covers(t, clockSkew) && (best == nil || rec.start.After(best.start)) {
			best = rec
		}
	}
	return best
}

func endsBefore(a, b *podRecord) bool {
	return !a.end.IsZero() && (b.end.IsZero() || a.end.Before(b.end))
}

// hostNetworkServer returns the one host-network pod on ip that serves port at time t.
func (x *podIndex) hostNetworkServer(ip netip.Addr, port uint16, t time.Time) (rec *podRecord, sharedIP bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	pods := x.hostNetwork[ip]
	for _, r := range pods {
		if r.covers(t, clockSkew) && slices.Contains(r.ports, int32(port)) {
			return r, true
		}
	}
	return nil, len(pods) > 0
}

// selected returns the workloads of the live pods in namespace that selector matches.
func (x *podIndex) selected(namespace string, selector labels.Selector) []Workload {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Workload
	for _, rec := range x.byUID {
		if rec.namespace == namespace && rec.end.IsZero() && selector.Matches(rec.labels) && !slices.Contains(out, rec.workload) {
			out = append(out, rec.workload)
		}
	}
	slices.SortFunc(out, compareWorkloads)
	return out
}

func (x *podIndex) namespaceGeneration(namespace string) uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.generation[namespace]
}

// hasWorkload reports whether some known pod (live or tombstoned) belongs to w, and its
// kind and ServiceAccount.
func (x *podIndex) hasWorkload(namespace, name string) (Workload, string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	c, ok := x.workloads[workloadKey{namespace, name}]
	return c.workload, c.account, ok
}

// serviceAccount is the pod's ServiceAccount; a pod that names none runs as "default".
func serviceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}

func podIPs(pod *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
	add(pod.Status.PodIP)
	return out
}

// hostNetworkPorts are a host-network pod's container and host ports; other pods have
// IPs of their own, and their ports are never looked up.
func hostNetworkPorts(pod *corev1.Pod) []int32 {
	if !pod.Spec.HostNetwork {
		return nil
	}
	var out []int32
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			out = append(out, p.ContainerPort)
			if p.HostPort != 0 {
				out = append(out, p.HostPort)
			}
		}
	}
	return out
}

func compareWorkloads(a, b Workload) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
}
