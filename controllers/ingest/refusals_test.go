package ingest

import (
	"testing"
	"time"
)

func TestRefusalLogOncePerResultAMinute(t *testing.T) {
	var l refusalLog
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, ok := l.due(NodeMismatch, at); !ok {
		t.Fatal("the first refusal is not logged")
	}
	for i := 1; i <= 5; i++ {
		if _, ok := l.due(NodeMismatch, at.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("refusal %d within the minute logged", i)
		}
	}
	if _, ok := l.due(Unbound, at.Add(time.Second)); !ok {
		t.Error("another result's first refusal is not logged")
	}
	suppressed, ok := l.due(NodeMismatch, at.Add(refusalLogEvery))
	if !ok || suppressed != 5 {
		t.Errorf("a minute later: logged=%v with %d held back, want true with 5", ok, suppressed)
	}
}
