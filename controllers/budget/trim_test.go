package budget

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// status has calls × paths, call i last seen i minutes after start.
func status(calls, paths int) *discoveryv1alpha1.DiscoveredIntentsStatus {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := &discoveryv1alpha1.DiscoveredIntentsStatus{}
	for i := range calls {
		at := &metav1.Time{Time: start.Add(time.Duration(i) * time.Minute)}
		c := discoveryv1alpha1.Call{Name: fmt.Sprintf("server-%04d", i), Namespace: "shop", Type: discoveryv1alpha1.CallHTTP, LastSeen: at}
		for j := range paths {
			c.HTTP = append(c.HTTP, discoveryv1alpha1.HTTPPath{Path: fmt.Sprintf("/api/section-%03d", j), Methods: []string{"GET"}, LastSeen: at})
		}
		s.Calls = append(s.Calls, c)
	}
	return s
}

func TestUnderBudgetNothingDropped(t *testing.T) {
	s := status(10, 10)
	if d := Trim(s, Default); d != (Dropped{}) {
		t.Fatalf("dropped %+v from a small object", d)
	}
	if len(s.Calls) != 10 || len(s.Calls[0].HTTP) != 10 || s.Calls[0].Truncated {
		t.Fatalf("changed: %d calls, %d paths", len(s.Calls), len(s.Calls[0].HTTP))
	}
}

func TestOldestPathsGoFirst(t *testing.T) {
	s := status(100, 50)
	limit := Size(s) * 3 / 4
	d := Trim(s, limit)
	if d.Paths == 0 || d.Calls != 0 {
		t.Fatalf("dropped %+v; want paths only", d)
	}
	if Size(s) > limit {
		t.Fatalf("size %d over %d", Size(s), limit)
	}
	if first, last := s.Calls[0], s.Calls[99]; len(first.HTTP) != 0 || !first.Truncated || len(last.HTTP) != 50 || last.Truncated {
		t.Fatalf("oldest call kept %d paths (truncated %v), newest %d (truncated %v)", len(first.HTTP), first.Truncated, len(last.HTTP), last.Truncated)
	}
}

func TestCallsGoWhenPathsAreNotEnough(t *testing.T) {
	s := status(2000, 0)
	limit := Size(s) / 2
	d := Trim(s, limit)
	if d.Calls == 0 || Size(s) > limit {
		t.Fatalf("dropped %+v, size %d, limit %d", d, Size(s), limit)
	}
	if s.Find("shop", "server-1999") == nil || s.Find("shop", "server-0000") != nil {
		t.Fatal("dropped the newest call, or kept the oldest")
	}
}

// BenchmarkTrimBaseline measures the status only, as every write does.
func BenchmarkTrimBaseline(b *testing.B) {
	s := status(200, 100)
	for b.Loop() {
		_ = Size(s)
	}
}

// BenchmarkTrim trims an object four times over its budget.
func BenchmarkTrim(b *testing.B) {
	base := status(200, 100)
	limit := Size(base) / 4
	for b.Loop() {
		b.StopTimer()
		s := base.DeepCopy()
		b.StartTimer()
		Trim(s, limit)
	}
}
