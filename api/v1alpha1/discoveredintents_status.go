package v1alpha1

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons set on DiscoveredIntents.
const (
	// ConditionReady is True when status has been reconciled for the current generation.
	ConditionReady = "Ready"
	// ConditionDeclared is True when every observed call is declared by a ClientIntents.
	ConditionDeclared = "Declared"
	// ConditionHTTPPaths is False when a mesh proxy reported HTTP calls without paths:
	// the mesh lacks the Telemetry that adds request_method and request_path.
	ConditionHTTPPaths = "HTTPPaths"

	ReasonReconciled   = "Reconciled"
	ReasonPathsSeen    = "PathsSeen"
	ReasonNoPathLabels = "NoPathLabels"
)

// Conditions of the object's size and writes.
const (
	// ConditionTruncated is True once least-recently-seen paths or calls were dropped
	// to keep the object under its size budget; the message counts them.
	ConditionTruncated = "Truncated"
	// ConditionWritten is False when the API server refused the last status write
	// (invalid or too large): its observations were dropped, not retried.
	ConditionWritten = "Written"

	ReasonSizeBudget = "SizeBudget"
	ReasonRefused    = "Refused"
)

// Sort puts calls and everything inside them in their canonical order, so that the
// same observations always serialise to the same bytes.
func (s *DiscoveredIntentsStatus) Sort() {
	slices.Sort(s.ServiceAccounts)
	for i := range s.Calls {
		s.Calls[i].sort()
	}
	slices.SortFunc(s.Calls, func(a, b Call) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

func (c *Call) sort() {
	slices.Sort(c.Services)
	slices.Sort(c.Ports)
	for i := range c.HTTP {
		slices.Sort(c.HTTP[i].Methods)
	}
	slices.SortFunc(c.HTTP, func(a, b HTTPPath) int { return cmp.Compare(a.Path, b.Path) })
	for i := range c.Kafka {
		slices.Sort(c.Kafka[i].Operations)
	}
	slices.SortFunc(c.Kafka, func(a, b KafkaTopic) int { return cmp.Compare(a.Name, b.Name) })
	if c.Internet != nil {
		slices.Sort(c.Internet.Domains)
		slices.Sort(c.Internet.IPs)
		slices.Sort(c.Internet.ResolvedIPs)
	}
}

// Summarize derives the fields behind the printer columns from calls: the call count,
// the undeclared count (unset when no call's declaration is known) and the newest lastSeen.
func (s *DiscoveredIntentsStatus) Summarize() {
	s.CallCount = int32(len(s.Calls))
	s.UndeclaredCount = nil
	var newest *metav1.Time
	for _, c := range s.Calls {
		if c.Declared != nil {
			if s.UndeclaredCount == nil {
				s.UndeclaredCount = new(int32)
			}
			if !*c.Declared {
				*s.UndeclaredCount++
			}
		}
		newest = NewerTime(newest, c.LastSeen)
	}
	s.LastSeen = newest.DeepCopy()
}

// Find returns the call to the server namespace/name, or nil.
func (s *DiscoveredIntentsStatus) Find(namespace, name string) *Call {
	for i := range s.Calls {
		if s.Calls[i].Namespace == namespace && s.Calls[i].Name == name {
			return &s.Calls[i]
		}
	}
	return nil
}

// NewerTime returns the later of two times, either of which may be nil.
func NewerTime(a, b *metav1.Time) *metav1.Time {
	if a == nil || (b != nil && a.Before(b)) {
		return b
	}
	return a
}
