package pending

import (
	"testing"
	"time"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// The store's count of what waits follows every way calls come and go: it bounds
// what ingest accepts, so a count that drifts would refuse reports forever, or never.
func TestEntriesCountCallsPathsAndTopics(t *testing.T) {
	s := NewStore(nil)
	web := Key{"shop", "client"}
	check := func(step string, want int) {
		t.Helper()
		if got := s.Entries(); got != want {
			t.Fatalf("%s: %d entries, want %d", step, got, want)
		}
	}
	s.Add(httpCall("/a", "GET", t0))
	s.Add(httpCall("/a", "POST", t0)) // the same path: nothing new
	s.Add(httpCall("/b", "GET", t0))
	check("one call, two paths", 3)
	kafka := callFrom(discoveryv1alpha1.KindDeployment, "kafka")
	kafka.Topic, kafka.Operation = "orders", "write"
	s.Add(kafka)
	kafka.Operation = "read"
	s.Add(kafka)
	check("and a call with one topic, from another client", 5)

	b := s.Take(web, t0)
	check("the first client taken", 2)
	s.Add(httpCall("/b", "GET", t0))
	s.Restore(web, b) // merged with what came since: /b once
	check("restored over a new path", 5)

	s.Claim(Key{"shop", "web"}, discoveryv1alpha1.KindStatefulSet) // moves web's calls to web-deployment
	check("after a claim", 5)
	s.Seen(web)
	s.Gone(web, t0.Add(time.Second))
	check("after a reset of the first client", 2)
	s.Take(Key{"shop", "web-deployment"}, t0)
	check("all taken", 0)
}

// One report's calls of a client are taken together: a reconciler woken by the first
// of them finds them all, so a report makes at most one write per client.
func TestAReportsCallsAreTakenTogether(t *testing.T) {
	var s *Store
	var taken []*Batch
	s = NewStore(func(k Key) { taken = append(taken, s.Take(k, t0)) })
	s.AddAll([]resolve.Call{httpCall("/a", "GET", t0), callFrom(discoveryv1alpha1.KindDeployment, "db"), httpCall("/b", "GET", t0)})
	if len(taken) != 2 {
		t.Fatalf("%d batches taken, want one per client", len(taken))
	}
	if taken[0].Len() != 1 || taken[0].Entries() != 3 || taken[1].Len() != 1 {
		t.Errorf("taken: %d calls and %d entries, then %d calls", taken[0].Len(), taken[0].Entries(), taken[1].Len())
	}
	if s.Entries() != 0 {
		t.Errorf("%d entries left", s.Entries())
	}
}

// Reports in flight together reserve their room: the second of two that would pass
// the bound together is refused, and an empty store takes a report of any size.
func TestReservationsKeepTheBound(t *testing.T) {
	s := NewStore(nil)
	s.Bound(100)
	if !s.Reserve(500) {
		t.Fatal("an empty store refused a report larger than its bound")
	}
	s.Release(500)
	if !s.Reserve(60) || s.Reserve(60) {
		t.Fatal("two reports of 60 in flight against a bound of 100: want the first taken, the second refused")
	}
	if !s.Reserve(40) || !s.Full() {
		t.Fatal("40 more fit; then the store is full")
	}
	s.Release(60)
	s.Release(40)
	if s.Full() || s.Entries() != 0 {
		t.Fatalf("released: full %v, %d entries", s.Full(), s.Entries())
	}
}
