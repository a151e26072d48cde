package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// What the clock check did to an observation, as counted in
// intentmapper_observation_times_total.
const (
	ClampedFuture = "clamped-future"
	DroppedOld    = "dropped-too-old"
)

var observationTimesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "intentmapper_observation_times_total",
	Help: "Observations whose time the manager's clock did not allow: later than receive time plus the tolerance (clamped to receive time), or older than can still be attributed (dropped).",
}, []string{"action"})

func init() { metrics.Registry.MustRegister(observationTimesTotal) }

// ObservationTimes counts observations the clock check clamped or dropped.
func ObservationTimes(action string) prometheus.Counter {
	return observationTimesTotal.WithLabelValues(action)
}

// Window is the span of observation times the manager accepts around its own clock:
// an agent's clock may run ahead by Ahead at most, and nothing older than MaxAge can
// be attributed (pods are remembered that long after they are gone).
type Window struct {
	Ahead  time.Duration
	MaxAge time.Duration
}

// Time checks one observation time received at now: a time too far ahead becomes now,
// so that lastSeen is never in the future; one too old is refused.
func (w Window) Time(t, now time.Time) (time.Time, bool) {
	switch {
	case t.After(now.Add(w.Ahead)):
		observationTimesTotal.WithLabelValues(ClampedFuture).Inc()
		return now, true
	case w.MaxAge > 0 && t.Before(now.Add(-w.MaxAge)):
		observationTimesTotal.WithLabelValues(DroppedOld).Inc()
		return t, false
	case t.After(now):
		return now, true // within the tolerance, but never later than what the manager saw
	}
	return t, true
}

// Report applies Time to every observation of a report received at now, dropping
// the ones too old.
func (w Window) Report(rep *reportv1.Report, now time.Time) {
	rep.DNS = keep(rep.DNS, func(o *reportv1.DNSAnswer) *time.Time { return &o.Time }, w, now)
	rep.Connections = keep(rep.Connections, func(o *reportv1.Connection) *time.Time { return &o.Time }, w, now)
	rep.HTTP = keep(rep.HTTP, func(o *reportv1.HTTPCall) *time.Time { return &o.Time }, w, now)
	rep.Mesh = keep(rep.Mesh, func(o *reportv1.MeshCall) *time.Time { return &o.Time }, w, now)
}

func keep[T any](obs []T, at func(*T) *time.Time, w Window, now time.Time) []T {
	kept := obs[:0]
	for i := range obs {
		t := at(&obs[i])
		if checked, ok := w.Time(*t, now); ok {
			*t = checked
			kept = append(kept, obs[i])
		}
	}
	return kept
}
