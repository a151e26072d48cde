package envoy

import (
	"context"
	"net/netip"
	"slices"

	"github.com/intent-mapper/intent-mapper/agent/pods"
)

// Selectors pick the mesh proxies among a node's pods.
type Selectors struct {
	// Sidecar: pods with this label key carry an Envoy sidecar.
	Sidecar string
	// Waypoint: ambient waypoint proxies.
	Waypoint pods.Selector
	// Ztunnel: the node's ztunnel, in ZtunnelNamespace.
	Ztunnel          pods.Selector
	ZtunnelNamespace string
	// Ambient turns waypoints and ztunnel on.
	Ambient bool
}

// DefaultSelectors are Istio's labels.
func DefaultSelectors() Selectors {
	return Selectors{
		Sidecar:          "security.istio.io/tlsMode",
		Waypoint:         pods.SelectorFromSet(map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller"}),
		Ztunnel:          pods.SelectorFromSet(map[string]string{"app": "ztunnel"}),
		ZtunnelNamespace: "istio-system",
	}
}

// The agent reads pods, and nothing else, from the API server.
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch

// Discovery lists the mesh proxies among one node's pods.
type Discovery struct {
	sel  Selectors
	pods *pods.Watcher
}

// NewDiscovery watches node's pods through the API server at cfg; gone is called
// with the IP of a proxy pod that was deleted, so its counters can be forgotten.
func NewDiscovery(cfg *pods.Config, node string, sel Selectors, gone func(netip.Addr)) *Discovery {
	return &Discovery{sel: sel, pods: pods.NewWatcher(cfg, node, func(p pods.Pod) {
		if gone != nil && p.IP.IsValid() {
			gone(p.IP)
		}
	})}
}

// Start starts watching and waits for the first list, or ctx's end.
func (d *Discovery) Start(ctx context.Context) bool {
	d.Run(ctx)
	return d.WaitSynced(ctx)
}

// Run starts watching until ctx ends, without waiting.
func (d *Discovery) Run(ctx context.Context) { go d.pods.Run(ctx) }

// WaitSynced waits for the first list of the node's pods; false if ctx ends first.
func (d *Discovery) WaitSynced(ctx context.Context) bool { return d.pods.WaitSynced(ctx) }

// Proxies lists the running proxies on the node, sorted by IP.
func (d *Discovery) Proxies() []Proxy {
	var out []Proxy
	for _, pod := range d.pods.List() {
		if !pod.IP.IsValid() || !pod.Running {
			continue
		}
		_, sidecar := pod.Labels[d.sel.Sidecar]
		switch {
		case d.sel.Ambient && pod.Namespace == d.sel.ZtunnelNamespace && d.sel.Ztunnel.Matches(pod.Labels):
			out = append(out, Proxy{IP: pod.IP, Ztunnel: true})
		case d.sel.Ambient && d.sel.Waypoint.Matches(pod.Labels):
			out = append(out, Proxy{IP: pod.IP})
		case sidecar:
			out = append(out, Proxy{IP: pod.IP})
		}
	}
	slices.SortFunc(out, func(a, b Proxy) int { return a.IP.Compare(b.IP) })
	return out
}
