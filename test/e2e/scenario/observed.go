package scenario

import (
	"fmt"
	"sort"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Score compares what intent-mapper found with what the scenario does, item by item:
// one item per client → server call, and one per HTTP path and method on it.
type Score struct {
	Expected, Observed, Matched int
	Missing, Unexpected         []string
}

// Recall is the share of expected items found; 0 when nothing is expected, so a
// scenario that expects nothing never passes.
func (s Score) Recall() float64 { return ratio(s.Matched, s.Expected) }

// Precision is the share of found items that are expected; 0 when nothing is found.
func (s Score) Precision() float64 { return ratio(s.Matched, s.Observed) }

// Perfect: something was expected, all of it was found, and nothing else.
func (s Score) Perfect() bool { return s.Recall() == 1 && s.Precision() == 1 }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (s Score) String() string {
	return fmt.Sprintf("recall %.0f%% (%d of %d), precision %.0f%% (%d of %d)",
		100*s.Recall(), s.Matched, s.Expected, 100*s.Precision(), s.Matched, s.Observed)
}

// Compare scores the DiscoveredIntents found against the scenario.
func (s *Scenario) Compare(found []discoveryv1alpha1.DiscoveredIntents) Score {
	want := map[string]bool{}
	for _, e := range s.Expect() {
		want[fmt.Sprintf("%s -> %s (%s, ports %v, via %s)", e.Client, e.Server, e.Type, e.Ports, e.Service)] = true
		for path, methods := range e.Paths {
			for _, m := range methods {
				want[fmt.Sprintf("%s -> %s %s %s", e.Client, e.Server, m, path)] = true
			}
		}
	}
	got := map[string]bool{}
	for _, di := range found {
		client := di.Namespace + "/" + di.Name
		for _, c := range di.Status.Calls {
			server := c.Namespace + "/" + c.Name // "/NAME" for an internet call
			service := ""
			if len(c.Services) == 1 {
				service = c.Services[0]
			}
			got[fmt.Sprintf("%s -> %s (%s, ports %v, via %s)", client, server, c.Type, c.Ports, service)] = true
			for _, h := range c.HTTP {
				for _, m := range h.Methods {
					got[fmt.Sprintf("%s -> %s %s %s", client, server, m, h.Path)] = true
				}
			}
		}
	}
	score := Score{Expected: len(want), Observed: len(got)}
	for item := range want {
		if got[item] {
			score.Matched++
		} else {
			score.Missing = append(score.Missing, item)
		}
	}
	for item := range got {
		if !want[item] {
			score.Unexpected = append(score.Unexpected, item)
		}
	}
	sort.Strings(score.Missing)
	sort.Strings(score.Unexpected)
	return score
}

// Fresh reports whether every call and path has been seen since intent-mapper started
// looking (a lastSeen), not only in the counters proxies had when first read.
func Fresh(found []discoveryv1alpha1.DiscoveredIntents) bool {
	for _, di := range found {
		for _, c := range di.Status.Calls {
			if c.LastSeen == nil {
				return false
			}
			for _, h := range c.HTTP {
				if h.LastSeen == nil {
					return false
				}
			}
		}
	}
	return true
}
