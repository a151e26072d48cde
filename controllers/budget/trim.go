// Package budget keeps a DiscoveredIntents under a size budget whatever the traffic:
// the least recently seen paths go first, then the least recently seen calls.
package budget

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Default is the budget of one stored object, well under etcd's 1.5 MiB request limit.
const Default = 1 << 20

// room is what a stored object holds beside its status: metadata (managed fields of
// status too: one entry, as calls is an atomic list) and spec.
const room = 4096

// maxRounds bounds the trimming: each round measures the status once.
const maxRounds = 4

// Dropped counts what Trim removed.
type Dropped struct{ Paths, Calls int }

// Size estimates the stored size of an object with this status.
func Size(status *discoveryv1alpha1.DiscoveredIntentsStatus) int {
	return jsonSize(status) + room
}

// Trim drops the least recently seen paths, then calls, until Size(status) fits the
// budget, and marks the calls that lost paths truncated.
func Trim(status *discoveryv1alpha1.DiscoveredIntentsStatus, budget int) Dropped {
	var d Dropped
	for range maxRounds {
		over := Size(status) - budget
		if over <= 0 {
			break
		}
		excess := over + 1
		if n := dropPaths(status, excess); n > 0 {
			d.Paths += n
			continue
		}
		d.Calls += dropCalls(status, excess)
	}
	return d
}

type pathRef struct {
	call, path int
	seen       time.Time
	size       int
}

// dropPaths removes the least recently seen paths, about excess bytes of them, and
// returns how many it removed.
func dropPaths(status *discoveryv1alpha1.DiscoveredIntentsStatus, excess int) int {
	var refs []pathRef
	for i := range status.Calls {
		for j := range status.Calls[i].HTTP {
			h := &status.Calls[i].HTTP[j]
			refs = append(refs, pathRef{call: i, path: j, seen: seen(h.LastSeen, h.SeenBefore), size: jsonSize(h) + 1})
		}
	}
	slices.SortFunc(refs, func(a, b pathRef) int {
		return cmp.Or(a.seen.Compare(b.seen), cmp.Compare(status.Calls[a.call].HTTP[a.path].Path, status.Calls[b.call].HTTP[b.path].Path))
	})
	drop := map[[2]int]bool{}
	for _, r := range refs {
		if excess <= 0 {
			break
		}
		drop[[2]int{r.call, r.path}] = true
		excess -= r.size
	}
	for i := range status.Calls {
		c := &status.Calls[i]
		kept := c.HTTP[:0]
		for j := range c.HTTP {
			if !drop[[2]int{i, j}] {
				kept = append(kept, c.HTTP[j])
			}
		}
		if len(kept) < len(c.HTTP) {
			c.Truncated = true
		}
		c.HTTP = kept
	}
	return len(drop)
}

// dropCalls removes the least recently seen calls, about excess bytes of them.
func dropCalls(status *discoveryv1alpha1.DiscoveredIntentsStatus, excess int) int {
	order := make([]int, len(status.Calls))
	for i := range order {
		order[i] = i
	}
	callSeen := func(i int) time.Time { return seen(status.Calls[i].LastSeen, status.Calls[i].SeenBefore) }
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(callSeen(a).Compare(callSeen(b)), cmp.Compare(status.Calls[a].Namespace, status.Calls[b].Namespace), cmp.Compare(status.Calls[a].Name, status.Calls[b].Name))
	})
	drop := map[int]bool{}
	for _, i := range order {
		if excess <= 0 {
			break
		}
		drop[i] = true
		excess -= jsonSize(&status.Calls[i]) + 1
	}
	kept := status.Calls[:0]
	for i := range status.Calls {
		if !drop[i] {
			kept = append(kept, status.Calls[i])
		}
	}
	status.Calls = kept
	return len(drop)
}

// seen is when something was last seen; history alone counts as older than any sighting.
func seen(last, before *metav1.Time) time.Time {
	if last != nil {
		return last.Time
	}
	if before != nil {
		return before.Add(-time.Nanosecond)
	}
	return time.Time{}
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
