package pending

import (
	"slices"
	"strings"
	"time"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/paths"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// maxPendingPaths bounds the distinct paths held per call between two writes; the
// per-object cap applied at merge time is lower or equal.
const maxPendingPaths = 1000

// Batch is one client's pending calls, keyed by server.
type Batch struct {
	name     string // the client workload's name, which the object's name may extend
	kind     discoveryv1alpha1.WorkloadKind
	accounts set[string] // the client's ServiceAccounts
	calls    map[serverKey]*pendingCall
	entries  int       // calls, paths and topics held: what a batch's memory grows with
	oldest   time.Time // oldest observation, for the observation-to-write delay
	taken    time.Time
}

type serverKey struct{ namespace, name string }

type pendingCall struct {
	kind      discoveryv1alpha1.WorkloadKind
	typ       discoveryv1alpha1.CallType
	services  set[string]
	ports     []int32 // distinct, at most maxPorts (no more are ever written): a slice, where one port is the rule
	paths     map[string]*pendingPath
	truncated bool
	domains   set[string]
	ips       set[string]
	resolved  set[string]            // addresses the domains resolved to
	topics    map[string]set[string] // Kafka topic → operations
	first     instant                // zero when only history was seen
	last      instant
	before    instant // earliest bound of history observations
}

type pendingPath struct {
	methods set[string]
	last    instant // zero when only history was seen
	before  instant // earliest bound of history observations
	hits    int     // observations, so the most used paths win a place under the cap
}

type set[T comparable] map[T]struct{}

func (s *set[T]) add(v T) {
	if *s == nil {
		*s = set[T]{}
	}
	(*s)[v] = struct{}{}
}

func newBatch(name string, kind discoveryv1alpha1.WorkloadKind) *Batch {
	return &Batch{name: name, kind: kind, calls: map[serverKey]*pendingCall{}}
}

// Len is the number of servers in the batch.
func (b *Batch) Len() int { return len(b.calls) }

// Entries counts the calls, paths and topics the batch holds.
func (b *Batch) Entries() int { return b.entries }

// Oldest is the time of the oldest observation in the batch.
func (b *Batch) Oldest() time.Time { return b.oldest }

func (b *Batch) add(c resolve.Call) {
	if c.ClientAccount != "" {
		b.accounts.add(c.ClientAccount)
	}
	key := serverKey{c.Server.Namespace, c.Server.Name}
	p := b.calls[key]
	if p == nil {
		p = &pendingCall{kind: c.Server.Kind, typ: c.Type}
		b.calls[key] = p
		b.entries++
	}
	if rank(c.Type) > rank(p.typ) {
		p.typ = c.Type
	}
	if c.Service != "" {
		p.services.add(c.Service)
	}
	if c.Port != 0 {
		p.addPort(int32(c.Port))
	}
	if c.Domain != "" {
		p.domains.add(c.Domain)
	}
	if c.IP != "" {
		p.ips.add(c.IP)
	}
	if c.ResolvedIP != "" {
		p.resolved.add(c.ResolvedIP)
	}
	if c.Topic != "" {
		b.entries += p.addTopic(c.Topic, c.Operation)
	}
	seen, before := at(c.Time), instant(0)
	if c.History {
		seen, before = 0, at(c.Time)
	}
	if c.Path != "" || c.Method != "" {
		b.entries += p.addPath(paths.Normalize(c.Path), strings.ToUpper(c.Method), seen, before)
	}
	p.first = earliest(p.first, seen)
	p.last = latest(p.last, seen)
	p.before = earliest(p.before, before)
	if b.oldest.IsZero() || c.Time.Before(b.oldest) {
		b.oldest = c.Time
	}
}

// addPort records a port, up to the most a call lists.
func (p *pendingCall) addPort(port int32) {
	if len(p.ports) < maxPorts && !slices.Contains(p.ports, port) {
		p.ports = append(p.ports, port)
	}
}

// addTopic records an operation on a Kafka topic, within the pending bound, and
// returns 1 for a new topic.
func (p *pendingCall) addTopic(topic, operation string) int {
	if p.topics == nil {
		p.topics = map[string]set[string]{}
	}
	ops, ok := p.topics[topic]
	if !ok && len(p.topics) >= maxPendingPaths {
		p.truncated = true
		return 0
	}
	if operation != "" {
		ops.add(operation)
	}
	p.topics[topic] = ops
	if ok {
		return 0
	}
	return 1
}

// addPath records a method on a path seen at a time, or (seen zero) known from
// history to have been requested before a time; it returns 1 for a new path.
func (p *pendingCall) addPath(path, method string, seen, before instant) int {
	pp, added := p.paths[path], 0
	if pp == nil {
		if len(p.paths) >= maxPendingPaths {
			p.truncated = true
			return 0
		}
		if p.paths == nil {
			p.paths = map[string]*pendingPath{}
		}
		pp, added = &pendingPath{}, 1
		p.paths[path] = pp
	}
	if method != "" {
		pp.methods.add(method)
	}
	pp.last = latest(pp.last, seen)
	pp.before = earliest(pp.before, before)
	pp.hits++
	return added
}

// absorbPath merges another batch's path into p, within the pending bound, and
// returns 1 for a new path.
func (p *pendingCall) absorbPath(path string, op *pendingPath) int {
	pp := p.paths[path]
	switch {
	case pp != nil:
		for m := range op.methods {
			pp.methods.add(m)
		}
		pp.last = latest(pp.last, op.last)
		pp.before = earliest(pp.before, op.before)
		pp.hits += op.hits
	case len(p.paths) >= maxPendingPaths:
		p.truncated = true
	default:
		if p.paths == nil {
			p.paths = map[string]*pendingPath{}
		}
		p.paths[path] = op
		return 1
	}
	return 0
}

// absorb merges another batch of the same client into b.
func (b *Batch) absorb(o *Batch) {
	for a := range o.accounts {
		b.accounts.add(a)
	}
	for key, oc := range o.calls {
		p := b.calls[key]
		if p == nil {
			b.calls[key] = oc
			b.entries += 1 + len(oc.paths) + len(oc.topics)
			continue
		}
		if rank(oc.typ) > rank(p.typ) {
			p.typ = oc.typ
		}
		for v := range oc.services {
			p.services.add(v)
		}
		for _, v := range oc.ports {
			p.addPort(v)
		}
		for v := range oc.domains {
			p.domains.add(v)
		}
		for v := range oc.ips {
			p.ips.add(v)
		}
		for v := range oc.resolved {
			p.resolved.add(v)
		}
		for path, op := range oc.paths {
			b.entries += p.absorbPath(path, op)
		}
		for topic, ops := range oc.topics {
			b.entries += p.addTopic(topic, "")
			for op := range ops {
				p.addTopic(topic, op)
			}
		}
		p.truncated = p.truncated || oc.truncated
		p.first = earliest(p.first, oc.first)
		p.last = latest(p.last, oc.last)
		p.before = earliest(p.before, oc.before)
	}
	if b.oldest.IsZero() || (!o.oldest.IsZero() && o.oldest.Before(b.oldest)) {
		b.oldest = o.oldest
	}
}

// rank orders call types so that the more detailed one wins for the same server.
func rank(t discoveryv1alpha1.CallType) int {
	if t == discoveryv1alpha1.CallTCP {
		return 0
	}
	return 1
}

func earliest(a, b instant) instant {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

func latest(a, b instant) instant {
	return max(a, b)
}

// instant is a time in Unix nanoseconds, zero for none: a third of a time.Time, and
// every pending call holds three.
type instant int64

func at(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}
