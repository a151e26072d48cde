package ingest

import (
	"sync"
	"time"
)

// refusalLogEvery is the least time between two log lines about one kind of refusal:
// a flood of bad reports shows in the counters, not as a flood of log lines.
const refusalLogEvery = time.Minute

// refusalLog decides which refusals are logged: the first of each result, then one a
// minute, telling how many went unlogged in between.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// due tells whether a refusal with result is to be logged now, and how many were not.
func (l *refusalLog) due(result string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if last, seen := l.last[result]; seen && now.Sub(last) < refusalLogEvery {
		l.held[result]++
		return 0, false
	}
	suppressed = l.held[result]
	l.last[result], l.held[result] = now, 0
	return suppressed, true
}
