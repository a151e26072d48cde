package envoy

import (
	"context"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// Selectors pick the mesh proxies among a node's pods.
type Selectors struct {
	// Sidecar: pods with this label key carry an Envoy sidecar.
	Sidecar string
	// Waypoint: ambient waypoint proxies.
	Waypoint labels.Selector
	// Ztunnel: the node's ztunnel, in ZtunnelNamespace.
	Ztunnel          labels.Selector
	ZtunnelNamespace string
	// Ambient turns waypoints and ztunnel on.
	Ambient bool
}

// DefaultSelectors are Istio's labels.
func DefaultSelectors() Selectors {
	return Selectors{
		Sidecar:          "security.istio.io/tlsMode",
		Waypoint:         labels.SelectorFromSet(labels.Set{"gateway.istio.io/managed": "istio.io-mesh-controller"}),
		Ztunnel:          labels.SelectorFromSet(labels.Set{"app": "ztunnel"}),
		ZtunnelNamespace: "istio-system",
	}
}

// The agent reads pods, and nothing else, from the API server.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Discovery watches the pods of one node (and only those: a field selector on
// spec.nodeName) and lists the mesh proxies among them.
type Discovery struct {
	sel    Selectors
	lister func() []*corev1.Pod
	synced func() bool
	run    func(<-chan struct{})
	gone   func(netip.Addr)
}

// NewDiscovery watches node's pods through cs; gone is called with the IP of a proxy
// pod that was deleted, so its counters can be forgotten.
func NewDiscovery(cs kubernetes.Interface, node string, sel Selectors, gone func(netip.Addr)) *Discovery {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + node }))
	pods := factory.Core().V1().Pods()
	d := &Discovery{sel: sel, gone: gone, synced: pods.Informer().HasSynced, run: factory.Start}
	d.lister = func() []*corev1.Pod {
		list, _ := pods.Lister().List(labels.Everything())
		return list
	}
	_, _ = pods.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok && d.gone != nil {
				if ip, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
					d.gone(ip)
				}
			}
		},
	})
	return d
}

// Start starts watching and waits for the first list, or ctx's end.
func (d *Discovery) Start(ctx context.Context) bool {
	d.Run(ctx)
	return d.WaitSynced(ctx)
}

// Run starts watching until ctx ends, without waiting.
func (d *Discovery) Run(ctx context.Context) { d.run(ctx.Done()) }

// WaitSynced waits for the first list of the node's pods; false if ctx ends first.
func (d *Discovery) WaitSynced(ctx context.Context) bool {
	return toolscache.WaitForCacheSync(ctx.Done(), d.synced)
}

// Proxies lists the running proxies on the node, sorted by IP.
func (d *Discovery) Proxies() []Proxy {
	var out []Proxy
	for _, pod := range d.lister() {
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		set := labels.Set(pod.Labels)
		switch {
		case d.sel.Ambient && pod.Namespace == d.sel.ZtunnelNamespace && d.sel.Ztunnel.Matches(set):
			out = append(out, Proxy{IP: ip, Ztunnel: true})
		case d.sel.Ambient && d.sel.Waypoint.Matches(set):
			out = append(out, Proxy{IP: ip})
		case set.Has(d.sel.Sidecar):
			out = append(out, Proxy{IP: ip})
		}
	}
	slices.SortFunc(out, func(a, b Proxy) int { return a.IP.Compare(b.IP) })
	return out
}
