package ingest

import (
	"sync"
	"time"
)

// maxNodes bounds what Nodes remembers; the stalest node goes first.
const maxNodes = 20_000

// Nodes remembers when each node's agent last had a report accepted, so that the
// operator can tell agents that run from agents that report.
type Nodes struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Mark records an accepted report of node at at.
func (n *Nodes) Mark(node string, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		n.last = map[string]time.Time{}
	}
	if _, ok := n.last[node]; !ok && len(n.last) >= maxNodes {
		n.forgetStalest()
	}
	n.last[node] = at
}

func (n *Nodes) forgetStalest() {
	var stalest string
	var at time.Time
	for node, t := range n.last {
		if stalest == "" || t.Before(at) {
			stalest, at = node, t
		}
	}
	delete(n.last, stalest)
}

// LastReport is when node's agent last had a report accepted.
func (n *Nodes) LastReport(node string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.last[node]
	return t, ok
}
