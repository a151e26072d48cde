package ingest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

func TestWindowEdges(t *testing.T) {
	w := Window{Ahead: time.Minute, MaxAge: 10 * time.Minute}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		at   time.Time
		want time.Time
		kept bool
	}{
		{"now", now, now, true},
		{"a second old", now.Add(-time.Second), now.Add(-time.Second), true},
		{"as old as can be attributed", now.Add(-10 * time.Minute), now.Add(-10 * time.Minute), true},
		{"older than can be attributed", now.Add(-10*time.Minute - time.Nanosecond), time.Time{}, false},
		{"ahead within the tolerance", now.Add(time.Minute), now, true},
		{"ahead beyond the tolerance", now.Add(time.Minute + time.Nanosecond), now, true},
		{"ten years ahead", now.AddDate(10, 0, 0), now, true},
	}
	for _, c := range cases {
		got, kept := w.Time(c.at, now)
		if kept != c.kept || (kept && !got.Equal(c.want)) {
			t.Errorf("%s: got %v kept=%v, want %v kept=%v", c.name, got, kept, c.want, c.kept)
		}
	}
}

func TestWindowReportCountsWhatItChanges(t *testing.T) {
	w := Window{Ahead: time.Minute, MaxAge: 10 * time.Minute}
	now := time.Now()
	ip := netip.MustParseAddr("10.244.0.5")
	rep := &reportv1.Report{
		DNS: []reportv1.DNSAnswer{{Client: ip, Name: "a.example", Time: now.Add(-time.Hour)}},
		Connections: []reportv1.Connection{
			{Client: ip, Server: ip, Port: 80, Time: now.Add(-time.Hour)},
			{Client: ip, Server: ip, Port: 81, Time: now.AddDate(1, 0, 0)},
			{Client: ip, Server: ip, Port: 82, Time: now.Add(-time.Minute)},
		},
		HTTP: []reportv1.HTTPCall{{Proxy: ip, Count: 1, Time: now.Add(time.Hour)}},
	}
	clamped, dropped := testutil.ToFloat64(ObservationTimes(ClampedFuture)), testutil.ToFloat64(ObservationTimes(DroppedOld))
	w.Report(rep, now)
	if len(rep.DNS) != 0 || len(rep.Connections) != 2 || len(rep.HTTP) != 1 {
		t.Fatalf("kept dns=%d connections=%d http=%d, want 0, 2, 1", len(rep.DNS), len(rep.Connections), len(rep.HTTP))
	}
	if rep.Connections[0].Port != 81 || !rep.Connections[0].Time.Equal(now) || !rep.HTTP[0].Time.Equal(now) {
		t.Errorf("future times not clamped to now: %+v %+v", rep.Connections[0], rep.HTTP[0])
	}
	if got := testutil.ToFloat64(ObservationTimes(ClampedFuture)) - clamped; got != 2 {
		t.Errorf("counted %v clamped, want 2", got)
	}
	if got := testutil.ToFloat64(ObservationTimes(DroppedOld)) - dropped; got != 2 {
		t.Errorf("counted %v dropped, want 2", got)
	}
}
