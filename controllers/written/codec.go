package written

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"io"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// dictionary primes the compressor with the field names and values every status
// repeats, so that even a small status compresses well on its own.
var dictionary = func() []byte {
	at := &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	sample := discoveryv1alpha1.DiscoveredIntentsStatus{
		ObservedGeneration: 1,
		Conditions: []metav1.Condition{{
			Type: discoveryv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1,
			LastTransitionTime: *at, Reason: discoveryv1alpha1.ReasonReconciled, Message: "calls observed",
		}},
		Calls: []discoveryv1alpha1.Call{{
			Name: "server", Namespace: "default", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallHTTP,
			Services: []string{"server"}, Ports: []int32{80, 443, 8080}, Declared: new(bool), FirstSeen: at, LastSeen: at,
			HTTP: []discoveryv1alpha1.HTTPPath{{Path: "/api/v1/", Methods: []string{"GET", "POST"}, LastSeen: at}},
		}, {Name: "db", Namespace: "default", Kind: discoveryv1alpha1.KindStatefulSet, Type: discoveryv1alpha1.CallTCP}},
		CallCount: 1, LastSeen: at,
	}
	raw, err := json.Marshal(sample)
	if err != nil {
		panic(err) // a fixed value of our own types
	}
	return raw
}()

var (
	writers = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(io.Discard, flate.BestSpeed, dictionary)
		if err != nil {
			panic(err) // only for a bad level
		}
		return w
	}}
	readers = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), dictionary) }}
)

func encode(status *discoveryv1alpha1.DiscoveredIntentsStatus) ([]byte, error) {
	raw, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := writers.Get().(*flate.Writer)
	defer writers.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

func decode(data []byte, status *discoveryv1alpha1.DiscoveredIntentsStatus) error {
	r := readers.Get().(io.ReadCloser)
	defer readers.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(data), dictionary); err != nil {
		return err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, status)
}
