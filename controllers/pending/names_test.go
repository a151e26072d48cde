package pending

import (
	"testing"
	"time"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

func callFrom(kind discoveryv1alpha1.WorkloadKind, server string) resolve.Call {
	return resolve.Call{
		Client: resolve.Workload{Namespace: "shop", Name: "web", Kind: kind},
		Server: resolve.Workload{Namespace: "shop", Name: server, Kind: discoveryv1alpha1.KindDeployment},
		Type:   discoveryv1alpha1.CallTCP, Port: 80, Time: time.Now(),
	}
}

func TestSameNameOtherKindGetsItsOwnObject(t *testing.T) {
	s := NewStore(nil)
	s.Add(callFrom(discoveryv1alpha1.KindDeployment, "db"))
	s.Add(callFrom(discoveryv1alpha1.KindStatefulSet, "cache"))
	plain, other := Key{"shop", "web"}, Key{"shop", "web-statefulset"}
	if name, kind, ok := s.Workload(plain); !ok || name != "web" || kind != discoveryv1alpha1.KindDeployment {
		t.Fatalf("web: %q %q %v", name, kind, ok)
	}
	if name, kind, ok := s.Workload(other); !ok || name != "web" || kind != discoveryv1alpha1.KindStatefulSet {
		t.Fatalf("web-statefulset: %q %q %v", name, kind, ok)
	}
	if b := s.Take(plain, time.Now()); b.Len() != 1 || b.calls[serverKey{"shop", "db"}] == nil {
		t.Fatalf("the Deployment's object got %d calls", b.Len())
	}
}

// After a restart the first report may come from the other kind: the object in the
// API server says who owns the plain name, and pending calls move accordingly.
func TestClaimMovesCallsToTheirOwnObjects(t *testing.T) {
	var notified []Key
	s := NewStore(func(k Key) { notified = append(notified, k) })
	s.Add(callFrom(discoveryv1alpha1.KindStatefulSet, "cache")) // arrives first: takes "web"
	s.Add(callFrom(discoveryv1alpha1.KindDeployment, "db"))     // goes to web-deployment
	notified = nil
	s.Claim(Key{"shop", "web"}, discoveryv1alpha1.KindDeployment) // the object "web" is the Deployment's
	if _, kind, _ := s.Workload(Key{"shop", "web"}); kind != discoveryv1alpha1.KindDeployment {
		t.Fatalf("web holds %q calls", kind)
	}
	if _, kind, _ := s.Workload(Key{"shop", "web-statefulset"}); kind != discoveryv1alpha1.KindStatefulSet {
		t.Fatalf("web-statefulset holds %q calls", kind)
	}
	if s.Pending(Key{"shop", "web-deployment"}) || len(notified) != 2 {
		t.Fatalf("web-deployment still pending, or notified %v", notified)
	}
	s.Add(callFrom(discoveryv1alpha1.KindStatefulSet, "queue"))
	if b := s.Take(Key{"shop", "web-statefulset"}, time.Now()); b.Len() != 2 {
		t.Fatalf("web-statefulset has %d calls, want 2", b.Len())
	}
}
