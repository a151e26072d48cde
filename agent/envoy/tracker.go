package envoy

import (
	"sync"
	"time"
)

// Delta is the growth of one series between two scrapes of a proxy.
type Delta struct {
	Family string
	Labels Labels
	Count  uint64
	Time   time.Time
	// History: seen on a proxy's first scrape, so it happened at some time before
	// Time, not necessarily near it.
	History bool
}

// Tracker keeps the last value of every series of every proxy.
type Tracker struct {
	// MaxSeries bounds the series kept per proxy; beyond it, series are ignored.
	MaxSeries int

	mu      sync.Mutex
	proxies map[string]map[seriesKey]float64
}

type seriesKey struct {
	family string
	labels Labels
}

// Observe compares a scrape of proxy with the previous one and returns what grew. The
// first scrape is history. A counter that went down means the proxy restarted: its
// new value counts as requests made since, and becomes the baseline.
func (t *Tracker) Observe(proxy string, series []Series, now time.Time) []Delta {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proxies == nil {
		t.proxies = map[string]map[seriesKey]float64{}
	}
	last, known := t.proxies[proxy]
	current := make(map[seriesKey]float64, min(len(series), t.MaxSeries))
	var out []Delta
	for _, s := range series {
		if len(current) >= t.MaxSeries {
			break
		}
		key := seriesKey{s.Family, s.Labels}
		current[key] = s.Value
		prev, seen := last[key]
		var grew float64
		switch {
		case !known:
			grew = s.Value
		case !seen || s.Value < prev:
			grew = s.Value // a new series, or a restarted proxy: all of it since
		default:
			grew = s.Value - prev
		}
		if grew >= 1 {
			out = append(out, Delta{Family: s.Family, Labels: s.Labels, Count: uint64(grew), Time: now, History: !known})
		}
	}
	t.proxies[proxy] = current // series no longer on the page are forgotten
	return out
}

// Forget drops a proxy that went away.
func (t *Tracker) Forget(proxy string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.proxies, proxy)
}

// Proxies lists the proxies tracked.
func (t *Tracker) Proxies() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.proxies))
	for p := range t.proxies {
		out = append(out, p)
	}
	return out
}
