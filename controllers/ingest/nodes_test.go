package ingest

import (
	"fmt"
	"testing"
	"time"
)

func TestNodesRemembersTheLatestReportAndStaysBounded(t *testing.T) {
	var n Nodes
	at := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	n.Mark("node-a", at)
	n.Mark("node-a", at.Add(time.Second))
	if got, ok := n.LastReport("node-a"); !ok || !got.Equal(at.Add(time.Second)) {
		t.Errorf("node-a: %v %v", got, ok)
	}
	if _, ok := n.LastReport("node-b"); ok {
		t.Error("a node that never reported")
	}
	for i := range maxNodes {
		n.Mark(fmt.Sprintf("node-%d", i), at.Add(time.Duration(i+2)*time.Second))
	}
	if _, ok := n.LastReport("node-a"); ok {
		t.Error("the stalest node should have gone to keep the bound")
	}
	if _, ok := n.LastReport(fmt.Sprintf("node-%d", maxNodes-1)); !ok {
		t.Error("the latest node is missing")
	}
}
