package resolve

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/resolved"
)

// Call is one resolved observation; see package resolved.
type Call = resolved.Call

// Reasons an observation is not attributed, as counted in intentmapper_unresolved_total.
const (
	UnknownClient     = "unknown-client"
	HostNetworkClient = "host-network-client"
	ForeignClient     = "client-on-other-node"
	UnknownServer     = "unknown-server"
	HostNetworkServer = "host-network-server"
	UnknownWorkload   = "unknown-workload"
	ProxyMismatch     = "proxy-not-the-reported-workload"
	UnknownProxy      = "unknown-proxy"
)

var unresolvedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "intentmapper_unresolved_total",
	Help: "Observations not attributed to a workload, by reason.",
}, []string{"reason"})

func init() { metrics.Registry.MustRegister(unresolvedTotal) }

// Options tune the resolver.
type Options struct {
	ClusterDomain string
	TombstoneTTL  time.Duration
	MaxTombstones int
	DNSPerClient  int
	DNSClients    int
}

// DefaultOptions are the resolver's defaults.
func DefaultOptions() Options {
	return Options{ClusterDomain: "cluster.local", TombstoneTTL: 10 * time.Minute, MaxTombstones: 100_000, DNSPerClient: 4096, DNSClients: 100_000}
}

// Resolver attributes report observations to workloads.
type Resolver struct {
	opts     Options
	pods     *podIndex
	services *serviceIndex
	dns      *dnsNames
	views    *sourceViews
}

// maxSourceViews bounds the pairs remembered to have a source view with paths.
const maxSourceViews = 100_000

// sourceViews remembers the client → server pairs whose source sidecar reports paths,
// so that the destination's view of the same calls is not taken twice.
type sourceViews struct {
	mu    sync.Mutex
	pairs map[[2]workloadKey]bool
}

func (v *sourceViews) mark(client, server Workload) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.pairs) >= maxSourceViews {
		clear(v.pairs) // forgetting only lets a duplicate view in, which merges harmlessly
	}
	v.pairs[[2]workloadKey{{client.Namespace, client.Name}, {server.Namespace, server.Name}}] = true
}

func (v *sourceViews) has(client, server Workload) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pairs[[2]workloadKey{{client.Namespace, client.Name}, {server.Namespace, server.Name}}]
}

// New returns a Resolver that walks owners with owners.
func New(owners OwnerLookup, opts Options) *Resolver {
	return &Resolver{
		opts:     opts,
		pods:     newPodIndex(owners, opts.TombstoneTTL, opts.MaxTombstones),
		services: newServiceIndex(),
		dns:      newDNSNames(opts.DNSPerClient, opts.DNSClients),
		views:    &sourceViews{pairs: map[[2]workloadKey]bool{}},
	}
}

// PodChanged records a pod's current state; PodDeleted records that it is gone.
func (r *Resolver) PodChanged(ctx context.Context, pod *corev1.Pod, now time.Time) {
	r.pods.upsert(ctx, pod, now)
}

// PodDeleted keeps the pod as a tombstone from now on.
func (r *Resolver) PodDeleted(pod *corev1.Pod, now time.Time) { r.pods.end(pod.UID, now) }

// ServiceChanged records a Service; ServiceDeleted forgets it.
func (r *Resolver) ServiceChanged(svc *corev1.Service) { r.services.upsert(svc) }

// ServiceDeleted forgets a Service.
func (r *Resolver) ServiceDeleted(namespace, name string) { r.services.remove(namespace, name) }

// WorkloadAt returns the workload of the pod that held ip at t, as the resolver knows it.
func (r *Resolver) WorkloadAt(ip netip.Addr, t time.Time) (Workload, bool) {
	if pod := r.pods.at(ip.Unmap(), t); pod != nil {
		return pod.workload, true
	}
	return Workload{}, false
}

// Prune forgets tombstones past their time.
func (r *Resolver) Prune(now time.Time) { r.pods.prune(now) }

// Resolve attributes every observation of a report and hands each call to emit.
// DNS answers come first: they name the IPs the connections go to.
func (r *Resolver) Resolve(rep *reportv1.Report, emit func(Call)) {
	for i := range rep.DNS {
		a := &rep.DNS[i]
		r.dns.record(a.Client.Unmap(), a.Name, a.IPs, a.TTL, a.Time)
	}
	for i := range rep.Connections {
		r.connection(rep.Node, &rep.Connections[i], emit)
	}
	for i := range rep.HTTP {
		r.http(rep.Node, &rep.HTTP[i], emit)
	}
	for i := range rep.Mesh {
		r.mesh(rep.Node, &rep.Mesh[i], emit)
	}
}

func unresolved(reason string) { unresolvedTotal.WithLabelValues(reason).Inc() }

// client finds the pod behind a client IP. A client must run on the reporting node:
// an agent sees only its own node's sockets, so anything else is a forgery or a bug.
func (r *Resolver) client(node string, ip netip.Addr, t time.Time) (*podRecord, bool) {
	pod := r.pods.at(ip, t)
	switch {
	case pod == nil:
		if _, shared := r.pods.hostNetworkServer(ip, 0, t); shared {
			unresolved(HostNetworkClient)
		} else {
			unresolved(UnknownClient)
		}
		return nil, false
	case pod.node != node:
		unresolved(ForeignClient)
		return nil, false
	}
	return pod, true
}

func (r *Resolver) connection(node string, c *reportv1.Connection, emit func(Call)) {
	client, ok := r.client(node, c.Client.Unmap(), c.Time)
	if !ok {
		return
	}
	base := Call{Client: client.workload, ClientAccount: client.account, Type: discoveryv1alpha1.CallTCP, Port: c.Port, Time: c.Time}
	server := c.Server.Unmap()

	if ns, name, ok := r.services.byClusterIP(server); ok {
		r.viaService(base, ns, name, emit)
		return
	}
	name, named := r.dns.lookup(c.Client.Unmap(), server, c.Time)
	if pod := r.pods.at(server, c.Time); pod != nil {
		call := base
		call.Server = pod.workload
		if named && inCluster(name, r.opts.ClusterDomain) {
			if ns, svc, ok := serviceName(name, client.namespace, r.opts.ClusterDomain); ok && ns == pod.namespace {
				call.Service = svc
			}
		}
		emit(call)
		return
	}
	if pod, shared := r.pods.hostNetworkServer(server, c.Port, c.Time); pod != nil {
		call := base
		call.Server = pod.workload
		emit(call)
		return
	} else if shared {
		unresolved(HostNetworkServer)
		return
	}
	switch {
	case named && inCluster(name, r.opts.ClusterDomain):
		if ns, svc, ok := serviceName(name, client.namespace, r.opts.ClusterDomain); ok {
			r.viaService(base, ns, svc, emit)
			return
		}
		unresolved(UnknownServer)
	case named:
		call := base
		call.Type, call.Server, call.Domain = discoveryv1alpha1.CallInternet, Workload{Name: name}, name
		call.ResolvedIP = server.String()
		emit(call)
	case isPublic(server):
		call := base
		call.Type, call.Server, call.IP = discoveryv1alpha1.CallInternet, Workload{Name: server.String()}, server.String()
		emit(call)
	default:
		unresolved(UnknownServer)
	}
}

// viaService emits a call to each workload behind a Service, naming the Service; a
// Service that selects no pods is itself the server.
func (r *Resolver) viaService(base Call, namespace, name string, emit func(Call)) {
	found, backends := r.services.backends(r.pods, namespace, name)
	if !found {
		unresolved(UnknownServer)
		return
	}
	base.Service = name
	if len(backends) == 0 {
		base.Server = Workload{Namespace: namespace, Name: name}
		emit(base)
		return
	}
	for _, w := range backends {
		call := base
		call.Server = w
		emit(call)
	}
}

// proxy checks that the scraped proxy is a pod on the reporting node; when it speaks
// for one side of a call (sidecars do), that side must be the proxy's own workload.
func (r *Resolver) proxy(node string, ip netip.Addr, t time.Time, speaksFor *reportv1.Workload) bool {
	pod := r.pods.at(ip.Unmap(), t)
	switch {
	case pod == nil || pod.node != node:
		unresolved(UnknownProxy)
		return false
	case speaksFor != nil && (pod.workload.Namespace != speaksFor.Namespace || pod.workload.Name != speaksFor.Name):
		unresolved(ProxyMismatch)
		return false
	}
	return true
}

// workload finds a workload that Istio's labels name among the known pods, and the
// ServiceAccount its pods run as.
func (r *Resolver) workload(w reportv1.Workload) (Workload, string, bool) {
	found, account, ok := r.pods.hasWorkload(w.Namespace, w.Name)
	if !ok {
		unresolved(UnknownWorkload)
	}
	return found, account, ok
}

func (r *Resolver) http(node string, c *reportv1.HTTPCall, emit func(Call)) {
	var speaksFor *reportv1.Workload
	switch c.Reporter {
	case reportv1.ReporterSource:
		speaksFor = &c.Source
	case reportv1.ReporterDestination:
		speaksFor = &c.Destination
	}
	if !r.proxy(node, c.Proxy, c.Time, speaksFor) {
		return
	}
	client, account, server, ok := r.meshPair(c.Source, c.Destination)
	if !ok {
		return
	}
	// The client's own view wins; the server's is taken when the client has no
	// sidecar (no mutual TLS) or its view carries no path (a rewrite can hide it).
	switch {
	case c.Reporter == reportv1.ReporterSource && c.Path != "":
		r.views.mark(client, server)
	case c.Reporter == reportv1.ReporterDestination && c.MutualTLS && r.views.has(client, server):
		return
	}
	emit(Call{Client: client, ClientAccount: account, Server: server, Type: discoveryv1alpha1.CallHTTP, Service: r.meshService(c.DestinationService, server),
		Port: c.Port, Method: c.Method, Path: c.Path, Time: c.Time, History: c.History})
}

func (r *Resolver) mesh(node string, c *reportv1.MeshCall, emit func(Call)) {
	if !r.proxy(node, c.Proxy, c.Time, nil) {
		return
	}
	client, account, server, ok := r.meshPair(c.Source, c.Destination)
	if !ok {
		return
	}
	emit(Call{Client: client, ClientAccount: account, Server: server, Type: discoveryv1alpha1.CallTCP, Service: r.meshService(c.DestinationService, server),
		Time: c.Time, History: c.History})
}

// meshPair finds both workloads a mesh metric names, and the client's ServiceAccount.
func (r *Resolver) meshPair(source, destination reportv1.Workload) (client Workload, account string, server Workload, ok bool) {
	if client, account, ok = r.workload(source); !ok {
		return client, "", server, false
	}
	server, _, ok = r.workload(destination)
	return client, account, server, ok
}

// meshService is the Service a mesh metric's destination host names, if it is the server's.
func (r *Resolver) meshService(host string, server Workload) string {
	if ns, svc, ok := serviceName(host, "", r.opts.ClusterDomain); ok && ns == server.Namespace {
		return svc
	}
	return ""
}

// isPublic tells an address on the internet from private, loopback and link-local ones,
// which, unknown to the cluster, cannot be named honestly.
func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}
