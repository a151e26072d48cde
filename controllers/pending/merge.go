package pending

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Bounds from the CRD's schema, so a merge never produces an object the API server refuses.
const (
	maxCalls    = 2000
	maxServices = 32
	maxPorts    = 64
	maxMethods  = 16
	maxDomains  = 64
	maxTopics   = 1000
	maxAccounts = 16
)

var droppedCalls = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "intentmapper_calls_over_limit_total",
	Help: "New calls not recorded because their client already lists the maximum number of calls.",
})

func init() { metrics.Registry.MustRegister(droppedCalls) }

// MergeOptions shape how pending calls enter status.
type MergeOptions struct {
	// Step is the granularity of lastSeen, so steady traffic does not rewrite objects.
	Step time.Duration
	// MaxPaths caps the paths listed per call; more mark the call truncated.
	MaxPaths int
	// Retention drops calls and paths not seen for this long; zero keeps them.
	Retention time.Duration
}

// MergeInto adds the batch to status: the union of calls, ports, services, paths and
// methods; firstSeen kept; lastSeen moved forward in steps. A nil batch merges nothing
// but still applies retention.
func (b *Batch) MergeInto(status *discoveryv1alpha1.DiscoveredIntentsStatus, opts MergeOptions, now time.Time) {
	if b != nil {
		status.ServiceAccounts = union(status.ServiceAccounts, b.accounts, maxAccounts)
		for key, p := range b.calls {
			c := status.Find(key.namespace, key.name)
			if c == nil {
				if len(status.Calls) >= maxCalls {
					droppedCalls.Inc()
					continue
				}
				status.Calls = append(status.Calls, discoveryv1alpha1.Call{Name: key.name, Namespace: key.namespace, Kind: p.kind, Type: p.typ})
				c = &status.Calls[len(status.Calls)-1]
			}
			p.mergeInto(c, opts)
		}
	}
	if opts.Retention > 0 {
		retain(status, now.Add(-opts.Retention))
	}
}

func (p *pendingCall) mergeInto(c *discoveryv1alpha1.Call, opts MergeOptions) {
	if rank(p.typ) > rank(c.Type) && c.Type != discoveryv1alpha1.CallInternet {
		c.Type = p.typ
	}
	if c.Kind == "" {
		c.Kind = p.kind
	}
	c.Services = union(c.Services, p.services, maxServices)
	c.Ports = appendNew(c.Ports, p.ports, maxPorts)
	if len(p.domains) > 0 || len(p.ips) > 0 || len(p.resolved) > 0 {
		if c.Internet == nil {
			c.Internet = &discoveryv1alpha1.InternetTarget{}
		}
		c.Internet.Domains = union(c.Internet.Domains, p.domains, maxDomains)
		c.Internet.IPs = union(c.Internet.IPs, p.ips, maxDomains)
		c.Internet.ResolvedIPs = union(c.Internet.ResolvedIPs, p.resolved, maxDomains)
	}
	for _, path := range p.pathsByUse() {
		pp := p.paths[path]
		h := findPath(c, path)
		if h == nil {
			if len(c.HTTP) >= opts.MaxPaths {
				c.Truncated = true
				continue
			}
			c.HTTP = append(c.HTTP, discoveryv1alpha1.HTTPPath{Path: path})
			h = &c.HTTP[len(c.HTTP)-1]
		}
		h.Methods = union(h.Methods, pp.methods, maxMethods)
		h.LastSeen = stepForward(h.LastSeen, pp.last.time(), opts.Step)
		h.SeenBefore = seenBefore(h.SeenBefore, h.LastSeen, pp.before.time())
	}
	for topic, ops := range p.topics {
		t := findTopic(c, topic)
		if t == nil {
			if len(c.Kafka) >= maxTopics {
				c.Truncated = true
				continue
			}
			c.Kafka = append(c.Kafka, discoveryv1alpha1.KafkaTopic{Name: topic})
			t = &c.Kafka[len(c.Kafka)-1]
		}
		t.Operations = union(t.Operations, ops, maxMethods)
	}
	c.Truncated = c.Truncated || p.truncated
	// firstSeen moves in the same steps as lastSeen, so that it never reads later.
	if first := p.first.time().Truncate(max(opts.Step, time.Second)); p.first != 0 && (c.FirstSeen == nil || first.Before(c.FirstSeen.Time)) {
		c.FirstSeen = &metav1.Time{Time: first}
	}
	c.LastSeen = stepForward(c.LastSeen, p.last.time(), opts.Step)
	c.SeenBefore = seenBefore(c.SeenBefore, c.LastSeen, p.before.time())
}

// seenBefore keeps the earliest bound history gives, until a real lastSeen makes it moot.
func seenBefore(cur, lastSeen *metav1.Time, before time.Time) *metav1.Time {
	switch {
	case lastSeen != nil:
		return nil
	case before.IsZero() || (cur != nil && !before.Before(cur.Time)):
		return cur
	}
	return &metav1.Time{Time: before.UTC().Truncate(time.Second)}
}

// pathsByUse lists the pending paths, most observed first, then by path.
func (p *pendingCall) pathsByUse() []string {
	out := make([]string, 0, len(p.paths))
	for path := range p.paths {
		out = append(out, path)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(p.paths[b].hits, p.paths[a].hits), cmp.Compare(a, b))
	})
	return out
}

// stepForward moves a lastSeen to seen, rounded down to the step, and never back.
func stepForward(cur *metav1.Time, seen time.Time, step time.Duration) *metav1.Time {
	if seen.IsZero() {
		return cur
	}
	stepped := seen.UTC().Truncate(max(step, time.Second))
	if cur != nil && !cur.Time.Before(stepped) {
		return cur
	}
	return &metav1.Time{Time: stepped}
}

func findTopic(c *discoveryv1alpha1.Call, name string) *discoveryv1alpha1.KafkaTopic {
	for i := range c.Kafka {
		if c.Kafka[i].Name == name {
			return &c.Kafka[i]
		}
	}
	return nil
}

func findPath(c *discoveryv1alpha1.Call, path string) *discoveryv1alpha1.HTTPPath {
	for i := range c.HTTP {
		if c.HTTP[i].Path == path {
			return &c.HTTP[i]
		}
	}
	return nil
}

// union adds the set's values to list, up to limit entries in all.
func union[T comparable](list []T, add set[T], limit int) []T {
	for v := range add {
		if len(list) >= limit {
			break
		}
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// appendNew adds the values list lacks, up to limit entries in all.
func appendNew[T comparable](list, add []T, limit int) []T {
	for _, v := range add {
		if len(list) >= limit {
			break
		}
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// retain drops calls and paths last seen before cutoff. Calls known only from
// history (no lastSeen) stay: there is no time to judge them by.
func retain(status *discoveryv1alpha1.DiscoveredIntentsStatus, cutoff time.Time) {
	stale := func(t *metav1.Time) bool { return t != nil && t.Time.Before(cutoff) }
	status.Calls = slices.DeleteFunc(status.Calls, func(c discoveryv1alpha1.Call) bool { return stale(c.LastSeen) })
	for i := range status.Calls {
		status.Calls[i].HTTP = slices.DeleteFunc(status.Calls[i].HTTP, func(h discoveryv1alpha1.HTTPPath) bool { return stale(h.LastSeen) })
	}
}
