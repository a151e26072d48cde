package written

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// object is a client's DiscoveredIntents with calls to n servers, as the manager writes it.
func object(n int) *discoveryv1alpha1.DiscoveredIntents {
	at := &metav1.Time{Time: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)}
	di := &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "shop", ResourceVersion: "1041", Generation: 2},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: "checkout", Kind: discoveryv1alpha1.KindDeployment}},
	}
	for i := range n {
		di.Status.Calls = append(di.Status.Calls, discoveryv1alpha1.Call{
			Name: fmt.Sprintf("server-%d", i), Namespace: "shop", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallHTTP,
			Services: []string{fmt.Sprintf("server-%d", i)}, Ports: []int32{8080}, FirstSeen: at, LastSeen: at,
			HTTP: []discoveryv1alpha1.HTTPPath{{Path: "/api/orders/*", Methods: []string{"GET", "POST"}, LastSeen: at}},
		})
	}
	di.Status.ObservedGeneration = 2
	di.Status.Summarize()
	return di
}

func TestKeepsWhatWasWrittenAndGivesItBack(t *testing.T) {
	s := &Store{}
	di := object(50)
	if err := s.Wrote(di); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(types.NamespacedName{Namespace: "shop", Name: "checkout"}, "1041", 2)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if !equality.Semantic.DeepEqual(got.Status, di.Status) || got.Spec != di.Spec || got.ResourceVersion != "1041" {
		t.Errorf("got back\n%+v\nwant\n%+v", got, di)
	}
}

func TestSomeoneElsesChangeIsReadAgain(t *testing.T) {
	s := &Store{}
	key := types.NamespacedName{Namespace: "shop", Name: "checkout"}
	di := object(1)
	if err := s.Wrote(di); err != nil { // created at 1041
		t.Fatal(err)
	}
	di.ResourceVersion = "1050"
	if err := s.Wrote(di); err != nil { // its status written at 1050
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rv         string
		generation int64
		kept       bool
	}{
		{"1050", 2, true},  // the last write
		{"1041", 2, true},  // the create, which the watch brings late
		{"1063", 2, false}, // someone else's status write
		{"1050", 3, false}, // a spec change
	} {
		if _, ok, _ := s.Get(key, tc.rv, tc.generation); ok != tc.kept {
			t.Errorf("resourceVersion %s generation %d: kept %v, want %v", tc.rv, tc.generation, ok, tc.kept)
		}
	}
	if err := s.Read(object(1)); err != nil { // read again: 1041 is no write of ours now
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(key, "1050", 2); ok {
		t.Error("an object read from the API server still answers for an older write")
	}
	s.Forget(key)
	if s.Has(key) {
		t.Error("a forgotten object is still kept")
	}
}

// TestKeepsAFractionOfTheObject: the point of the store is memory.
func TestKeepsAFractionOfTheObject(t *testing.T) {
	di := object(50)
	raw, err := json.Marshal(di)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := encode(&di.Status)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("50 calls: %d bytes as JSON, %d kept", len(raw), len(kept))
	if len(kept)*4 > len(raw) {
		t.Errorf("%d bytes kept for a %d-byte object: want under a quarter", len(kept), len(raw))
	}
}

// BenchmarkKeptBytesPerClient reports the heap one client's kept object takes at 50
// calls (B/client), beside the same object decoded as an informer caches it
// (decoded-B/client), measured in the same run.
func BenchmarkKeptBytesPerClient(b *testing.B) {
	const clients = 1000
	objects := make([]*discoveryv1alpha1.DiscoveredIntents, clients)
	for i := range objects {
		objects[i] = object(50)
		objects[i].Name = fmt.Sprintf("client-%d", i)
	}
	var kept, decoded float64
	for b.Loop() {
		kept = heapPer(clients, func() any {
			s := &Store{}
			for _, di := range objects {
				if err := s.Wrote(di); err != nil {
					b.Fatal(err)
				}
			}
			return s
		})
		decoded = heapPer(clients, func() any {
			held := make([]*discoveryv1alpha1.DiscoveredIntents, 0, clients)
			for _, di := range objects {
				held = append(held, di.DeepCopy())
			}
			return held
		})
	}
	b.ReportMetric(kept, "B/client")
	b.ReportMetric(decoded, "decoded-B/client")
}
