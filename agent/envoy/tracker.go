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
	proxies map[string]*proxySeries
}

type seriesKey struct {
	family string
	labels Labels
}

// proxySeries are one proxy's series, updated in place: a scrape rewrites the values
// it saw and stamps them, and what it did not see is swept (fewer allocations than a
// new map per scrape, which every 15 s of a hundred sidecars churned).
type proxySeries struct {
	scrape uint64
	last   map[seriesKey]seriesValue
	grew   int // series that grew at the last scrape: the next one's starting capacity
}

type seriesValue struct {
	value  float64
	scrape uint64
}

// Observe compares a scrape of proxy with the previous one and returns what grew. The
// first scrape is history. A counter that went down means the proxy restarted: its
// new value counts as requests made since, and becomes the baseline.
func (t *Tracker) Observe(proxy string, series []Series, now time.Time) []Delta {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proxies == nil {
		t.proxies = map[string]*proxySeries{}
	}
	ps, known := t.proxies[proxy]
	if !known {
		ps = &proxySeries{last: make(map[seriesKey]seriesValue, min(len(series), t.MaxSeries))}
		t.proxies[proxy] = ps
	}
	ps.scrape++
	out := make([]Delta, 0, ps.grew)
	for i, s := range series {
		if i >= t.MaxSeries {
			break
		}
		key := seriesKey{s.Family, s.Labels}
		prev, seen := ps.last[key]
		ps.last[key] = seriesValue{value: s.Value, scrape: ps.scrape}
		var grew float64
		switch {
		case !known:
			grew = s.Value
		case !seen || s.Value < prev.value:
			grew = s.Value // a new series, or a restarted proxy: all of it since
		default:
			grew = s.Value - prev.value
		}
		if grew >= 1 {
			out = append(out, Delta{Family: s.Family, Labels: s.Labels, Count: uint64(grew), Time: now, History: !known})
		}
	}
	ps.grew = len(out)
	for key, v := range ps.last { // series no longer on the page are forgotten
		if v.scrape != ps.scrape {
			delete(ps.last, key)
		}
	}
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
