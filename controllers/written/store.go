// Package written keeps, per client, the DiscoveredIntents as the manager last wrote
// or read it: name, resourceVersion, generation, workload and status, the status
// compressed. The manager is the only writer of status, so this replaces an informer
// cache of the full objects, at a fraction of its memory.
package written

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// DefaultPageSize is how many objects one List page brings at start.
const DefaultPageSize = 500

// Store is safe for concurrent use. Its zero value is empty and not yet loaded.
type Store struct {
	// PageSize is how many objects one List page brings (DefaultPageSize when zero).
	PageSize int64

	mu      sync.Mutex
	entries map[types.NamespacedName]*entry

	loadMu sync.Mutex
	loaded atomic.Bool
}

type entry struct {
	rv string
	// own are the resourceVersions of the manager's last two writes: a watch event
	// that brings one of them late is not a change by someone else.
	own        [2]string
	generation int64
	workload   discoveryv1alpha1.WorkloadRef
	status     []byte // compressed JSON
}

// Load reads every DiscoveredIntents once, a page at a time, before the first write;
// later calls return at once.
func (s *Store) Load(ctx context.Context, reader client.Reader) error {
	if s.loaded.Load() {
		return nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.loaded.Load() {
		return nil
	}
	page := s.PageSize
	if page <= 0 {
		page = DefaultPageSize
	}
	list := &discoveryv1alpha1.DiscoveredIntentsList{}
	opts := []client.ListOption{client.Limit(page)}
	n, pages := 0, 0
	for {
		if err := reader.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing DiscoveredIntents: %w", err)
		}
		for i := range list.Items {
			if err := s.put(&list.Items[i], false, false); err != nil {
				return err
			}
		}
		n, pages = n+len(list.Items), pages+1
		if list.Continue == "" {
			break
		}
		opts = []client.ListOption{client.Limit(page), client.Continue(list.Continue)}
		list = &discoveryv1alpha1.DiscoveredIntentsList{}
	}
	logf.FromContext(ctx).Info("loaded the DiscoveredIntents written before", "objects", n, "pages", pages)
	s.loaded.Store(true)
	return nil
}

// Get returns the object as last written or read, if that is what the API server
// holds at resourceVersion rv and generation: rv is the current one or one of the
// manager's own writes, which a watch may bring late. Otherwise someone else changed
// the object since, and it must be read again.
func (s *Store) Get(key types.NamespacedName, rv string, generation int64) (*discoveryv1alpha1.DiscoveredIntents, bool, error) {
	s.mu.Lock()
	e := s.entries[key]
	s.mu.Unlock()
	if e == nil || e.generation != generation || (rv != e.rv && rv != e.own[0] && rv != e.own[1]) {
		return nil, false, nil
	}
	di := &discoveryv1alpha1.DiscoveredIntents{}
	di.Name, di.Namespace = key.Name, key.Namespace
	di.ResourceVersion, di.Generation = e.rv, e.generation
	di.Spec.Workload = e.workload
	if err := decode(e.status, &di.Status); err != nil {
		return nil, false, fmt.Errorf("reading the kept status of %s: %w", key, err)
	}
	return di, true, nil
}

// Has reports whether the client's object is known.
func (s *Store) Has(key types.NamespacedName) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[key] != nil
}

// Read records an object as read from the API server.
func (s *Store) Read(di *discoveryv1alpha1.DiscoveredIntents) error {
	return s.put(di, false, true)
}

// Wrote records an object as the API server answered the manager's own write.
func (s *Store) Wrote(di *discoveryv1alpha1.DiscoveredIntents) error {
	return s.put(di, true, true)
}

// Forget drops a client's object: it was deleted, or must be read again.
func (s *Store) Forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// Len is the number of objects kept.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// put keeps di; replace says whether a kept entry gives way (a load does not
// overwrite what a write recorded).
func (s *Store) put(di *discoveryv1alpha1.DiscoveredIntents, own, replace bool) error {
	status, err := encode(&di.Status)
	if err != nil {
		return fmt.Errorf("keeping the status of %s/%s: %w", di.Namespace, di.Name, err)
	}
	key := types.NamespacedName{Namespace: di.Namespace, Name: di.Name}
	e := &entry{rv: di.ResourceVersion, generation: di.Generation, workload: di.Spec.Workload, status: status}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.entries[key]
	if old != nil && !replace {
		return nil
	}
	if own {
		e.own[0] = di.ResourceVersion
		if old != nil {
			e.own[1] = old.own[0]
		}
	}
	if s.entries == nil {
		s.entries = map[types.NamespacedName]*entry{}
	}
	s.entries[key] = e
	return nil
}
