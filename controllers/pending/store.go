// Package pending holds resolved calls that are not yet written to their client's
// DiscoveredIntents, and merges them into status when the reconciler writes.
package pending

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// Key names a client's DiscoveredIntents: its namespace and workload name.
type Key struct{ Namespace, Name string }

// resetMemory is how long a deletion is remembered: reports older than the deletion
// that arrive within it are dropped (agents retry for less than this).
const resetMemory = 24 * time.Hour

var (
	pendingClients = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_pending_clients",
		Help: "Clients with observations not yet written.",
	})
	pendingEntries = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_pending_entries",
		Help: "Calls, HTTP paths and Kafka topics not yet written: what the manager's memory grows with.",
	})
	droppedAfterReset = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_observations_before_reset_total",
		Help: "Observations dropped because they predate their DiscoveredIntents' deletion.",
	})
)

func init() { metrics.Registry.MustRegister(pendingClients, pendingEntries, droppedAfterReset) }

// Store is the set of pending calls per client. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	batches map[Key]*Batch
	resets  map[Key]time.Time // deletion times: older observations are dropped
	written map[Key]time.Time // last write, for coalescing
	known   map[Key]bool      // clients whose object the reconciler has seen
	// owners: the workload kind whose object bears the workload's plain name; a
	// workload of another kind with the same name gets an object of its own.
	owners map[Key]discoveryv1alpha1.WorkloadKind
	notify func(Key)
	// entries is the sum of the batches' Entries; reserved, what reports being added
	// may add; max bounds the two together (0: no bound).
	entries, reserved, max int
}

// Bound sets the most entries the store takes from reports (0: no bound).
func (s *Store) Bound(max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = max
}

// Full tells whether the store is at its bound.
func (s *Store) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max > 0 && s.entries+s.reserved >= s.max
}

// Reserve makes room for a report of n observations, unless it would pass the bound.
// Each observation adds at most about one entry. A store with nothing waiting takes
// any report, so that one larger than the bound still gets in.
func (s *Store) Reserve(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	used := s.entries + s.reserved
	if s.max > 0 && used > 0 && used+n > s.max {
		return false
	}
	s.reserved += n
	return true
}

// Release gives back a reservation once its report is added.
func (s *Store) Release(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved -= n
}

// Entries counts the calls, paths and topics waiting, over all clients.
func (s *Store) Entries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries
}

// counted publishes the store's size. Called with s.mu held.
func (s *Store) counted() {
	pendingClients.Set(float64(len(s.batches)))
	pendingEntries.Set(float64(s.entries))
}

// ObjectName is the name of the object of a workload whose plain name belongs to a
// workload of another kind: the name, a dash, and the kind in lower case.
func ObjectName(name string, kind discoveryv1alpha1.WorkloadKind) string {
	return name + "-" + strings.ToLower(string(kind))
}

// keyFor names the object a workload's calls go to: its plain name, unless another
// kind of workload holds that, then ObjectName. Called with s.mu held.
func (s *Store) keyFor(w resolve.Workload) Key {
	plain := Key{Namespace: w.Namespace, Name: w.Name}
	owner, ok := s.owners[plain]
	switch {
	case !ok:
		s.owners[plain] = w.Kind
	case owner != w.Kind && w.Kind != "":
		return Key{Namespace: w.Namespace, Name: ObjectName(w.Name, w.Kind)}
	}
	return plain
}

// NewStore returns an empty store that calls notify (outside its lock) when a client
// gets its first pending call since the last Take.
func NewStore(notify func(Key)) *Store {
	return &Store{
		batches: map[Key]*Batch{}, resets: map[Key]time.Time{},
		written: map[Key]time.Time{}, known: map[Key]bool{}, owners: map[Key]discoveryv1alpha1.WorkloadKind{}, notify: notify,
	}
}

// Add records a resolved call for its client.
func (s *Store) Add(c resolve.Call) { s.AddAll([]resolve.Call{c}) }

// AddAll records the calls of one report at once: a reconciler cannot take a client's
// batch between two of them, so one report's calls of a client make one write.
func (s *Store) AddAll(calls []resolve.Call) {
	var fresh []Key
	s.mu.Lock()
	for i := range calls {
		if key, isNew := s.add(&calls[i]); isNew {
			fresh = append(fresh, key)
		}
	}
	s.counted()
	s.mu.Unlock()
	if s.notify != nil {
		for _, key := range fresh {
			s.notify(key)
		}
	}
}

// add records one call and tells whether its client's batch is new. Called with s.mu held.
func (s *Store) add(c *resolve.Call) (Key, bool) {
	key := s.keyFor(c.Client)
	if reset, ok := s.resets[key]; ok && c.Time.Before(reset) {
		droppedAfterReset.Inc()
		return key, false
	}
	b := s.batches[key]
	fresh := b == nil
	if fresh {
		b = newBatch(c.Client.Name, c.Client.Kind)
		s.batches[key] = b
	}
	before := b.entries
	b.add(*c)
	s.entries += b.entries - before
	return key, fresh
}

// Take removes and returns a client's pending calls, or nil.
func (s *Store) Take(key Key, now time.Time) *Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches[key]
	if b != nil {
		b.taken = now
		s.entries -= b.entries
	}
	delete(s.batches, key)
	s.counted()
	return b
}

// Restore puts back calls that could not be written, unless the client was reset since.
func (s *Store) Restore(key Key, b *Batch) {
	if b == nil {
		return
	}
	s.mu.Lock()
	if reset, ok := s.resets[key]; ok && b.taken.Before(reset) {
		s.mu.Unlock()
		return
	}
	s.put(key, b)
	s.counted()
	s.mu.Unlock()
	if s.notify != nil {
		s.notify(key)
	}
}

// Pending reports whether a client has calls waiting.
func (s *Store) Pending(key Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[key] != nil
}

// Workload returns the workload name and kind of a client's pending calls.
func (s *Store) Workload(key Key) (string, discoveryv1alpha1.WorkloadKind, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.batches[key]; b != nil {
		return b.name, b.kind, true
	}
	return "", "", false
}

// Claim records that the object bearing a workload's plain name belongs to kind, as
// the API server says (after a restart, calls may have gone to the wrong object):
// pending calls of another kind move to their own object, and the owner's to this one.
func (s *Store) Claim(key Key, kind discoveryv1alpha1.WorkloadKind) {
	s.mu.Lock()
	if kind == "" || s.owners[key] == kind {
		s.mu.Unlock()
		return
	}
	s.owners[key] = kind
	var moved []Key
	if b := s.batches[key]; b != nil && b.kind != kind {
		s.remove(key)
		moved = append(moved, s.put(Key{Namespace: key.Namespace, Name: ObjectName(key.Name, b.kind)}, b))
	}
	if alt := (Key{Namespace: key.Namespace, Name: ObjectName(key.Name, kind)}); s.batches[alt] != nil {
		b := s.batches[alt]
		s.remove(alt)
		moved = append(moved, s.put(key, b))
	}
	s.counted()
	s.mu.Unlock()
	for _, k := range moved {
		if s.notify != nil {
			s.notify(k)
		}
	}
}

// put adds a batch under key, merging with what is there. Called with s.mu held.
func (s *Store) put(key Key, b *Batch) Key {
	cur := s.batches[key]
	if cur == nil {
		s.batches[key] = b
		s.entries += b.entries
		return key
	}
	before := cur.entries
	cur.absorb(b)
	s.entries += cur.entries - before
	return key
}

// remove drops a client's batch. Called with s.mu held.
func (s *Store) remove(key Key) {
	if b := s.batches[key]; b != nil {
		s.entries -= b.entries
		delete(s.batches, key)
	}
}

// Seen records that the client's object exists.
func (s *Store) Seen(key Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[key] = true
}

// Gone is called when the client's object is not found. If it existed, it was
// deleted: pending calls are dropped, and older observations will be. It reports
// whether the object had existed.
func (s *Store) Gone(key Key, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known[key] {
		return false
	}
	delete(s.known, key)
	delete(s.owners, key)
	s.remove(key)
	delete(s.written, key)
	s.resets[key] = now
	for k, t := range s.resets {
		if now.Sub(t) > resetMemory {
			delete(s.resets, k)
		}
	}
	s.counted()
	return true
}

// Wait returns how long a client must wait before its next write, so that each
// object is written at most once per flush interval.
func (s *Store) Wait(key Key, now time.Time, flush time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.written[key]
	if !ok {
		return 0
	}
	return max(0, flush-now.Sub(last))
}

// Written records a write of the client's object.
func (s *Store) Written(key Key, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written[key] = now
}

// Keys lists the clients with calls waiting.
func (s *Store) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]Key, 0, len(s.batches))
	for k := range s.batches {
		keys = append(keys, k)
	}
	return keys
}
