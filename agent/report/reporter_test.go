package report

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intent-mapper/intent-mapper/agent/metrics"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// manager is a TLS server that takes reports like the manager, or fails on demand.
type manager struct {
	srv     *httptest.Server
	failing atomic.Bool
	token   atomic.Value
	mu      sync.Mutex
	seen    map[netip.Addr]bool // clients of the connections received
	reports int
	// maxBody, when set, is the largest report taken after decompression, as the
	// manager's --max-report-bytes: a larger one is answered 413.
	maxBody atomic.Int64
}

func newManager(t *testing.T) *manager {
	m := &manager{seen: map[netip.Addr]bool{}}
	m.token.Store("token-1")
	m.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.failing.Load() {
			http.Error(w, "away", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+m.token.Load().(string) {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if limit := m.maxBody.Load(); limit > 0 && int64(len(raw)) > limit {
			http.Error(w, "report too large", http.StatusRequestEntityTooLarge)
			return
		}
		rep := &reportv1.Report{}
		if err := json.Unmarshal(raw, rep); err != nil || rep.Validate() != nil {
			http.Error(w, "bad report", http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.reports++
		for _, c := range rep.Connections {
			m.seen[c.Client] = true
		}
		m.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *manager) received() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

func startReporter(t *testing.T, m *manager, buffer int) (*Reporter, string) {
	return startReporterWith(t, m, buffer, nil)
}

func startReporterWith(t *testing.T, m *manager, buffer int, beat func(time.Time)) (*Reporter, string) {
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.srv.Certificate().Raw})
	opts := Options{
		URL: m.srv.URL + "/v1/reports", CAFile: filepath.Join(dir, "ca.crt"), TokenFile: filepath.Join(dir, "token"),
		Node: "node-a", Interval: 20 * time.Millisecond, BufferSize: buffer, MaxPerReport: 40,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Beat: beat,
	}
	must(t, os.WriteFile(opts.CAFile, ca, 0o600))
	must(t, os.WriteFile(opts.TokenFile, []byte("token-1\n"), 0o600))
	r := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, opts.TokenFile
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 { // at most 10 s
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func addConnections(r *Reporter, from, n int) {
	for i := from; i < from+n; i++ {
		r.AddConnection(reportv1.Connection{
			Client: netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i)}), Server: netip.MustParseAddr("10.96.0.20"), Port: 80, Time: time.Now(),
		})
	}
}

func TestNothingLostWhileTheManagerIsAway(t *testing.T) {
	m := newManager(t)
	m.failing.Store(true)
	r, _ := startReporter(t, m, 1000)
	addConnections(r, 0, 300)
	eventually(t, "the batch closed and retried", func() bool {
		return testutil.ToFloat64(metrics.Reports.WithLabelValues("failed")) > 2
	})
	if m.received() != 0 {
		t.Fatal("a failing manager received reports")
	}
	m.failing.Store(false)
	eventually(t, "all 300 connections delivered", func() bool { return m.received() == 300 && r.Buffered() == 0 })
}

// TestTheLoopBeatsWhileTheManagerIsAway: the heartbeat says the loop turns, not that the
// manager answers (ingest's AgentsReporting says that), so an agent is not restarted
// for the manager's absence.
func TestTheLoopBeatsWhileTheManagerIsAway(t *testing.T) {
	m := newManager(t)
	m.failing.Store(true)
	var beats atomic.Int32
	r, _ := startReporterWith(t, m, 1000, func(time.Time) { beats.Add(1) })
	addConnections(r, 0, 10)
	eventually(t, "beats while every send fails", func() bool {
		return beats.Load() > 3 && testutil.ToFloat64(metrics.Reports.WithLabelValues("failed")) > 0
	})
	if r.Buffered() != 10 {
		t.Errorf("kept %d observations, want 10", r.Buffered())
	}
}

func TestBeyondTheBufferTheOldestAreDroppedAndCounted(t *testing.T) {
	m := newManager(t)
	m.failing.Store(true)
	dropped := testutil.ToFloat64(metrics.Dropped.WithLabelValues("buffer-full"))
	r, _ := startReporter(t, m, 100)
	addConnections(r, 0, 150)
	eventually(t, "the batch closed", func() bool { return r.Buffered() == 100 })
	if got := testutil.ToFloat64(metrics.Dropped.WithLabelValues("buffer-full")) - dropped; got != 50 {
		t.Errorf("%v drops counted, want 50", got)
	}
	m.failing.Store(false)
	eventually(t, "the 100 kept delivered", func() bool { return m.received() == 100 && r.Buffered() == 0 })
}

func TestTheTokenIsReadAgainWhenRotated(t *testing.T) {
	m := newManager(t)
	r, tokenFile := startReporter(t, m, 1000)
	addConnections(r, 0, 1)
	eventually(t, "the first report", func() bool { return m.received() == 1 })

	m.token.Store("token-2") // the manager now wants the new token
	addConnections(r, 1, 1)
	eventually(t, "a refusal with the old token", func() bool { return r.Buffered() > 0 })
	must(t, os.WriteFile(tokenFile, []byte("token-2"), 0o600)) // the kubelet rotates it
	eventually(t, "delivery with the new token", func() bool { return m.received() == 2 && r.Buffered() == 0 })
}

func TestDuplicatesWithinABatchAreOne(t *testing.T) {
	r := New(Options{Node: "n", BufferSize: 100, MaxPerReport: 100})
	c := reportv1.Connection{Client: netip.MustParseAddr("10.0.0.1"), Server: netip.MustParseAddr("10.0.0.2"), Port: 80}
	for i := range 5 {
		c.Time = time.Unix(int64(1000+i), 0)
		r.AddConnection(c)
	}
	r.AddDNS(reportv1.DNSAnswer{Client: c.Client, Name: "a.example", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Time: time.Unix(10, 0)})
	r.AddDNS(reportv1.DNSAnswer{Client: c.Client, Name: "a.example", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.2")}, Time: time.Unix(20, 0)})
	r.closeBatch()
	rep := r.outbox[0]
	if len(rep.Connections) != 1 || !rep.Connections[0].Time.Equal(time.Unix(1004, 0)) {
		t.Errorf("connections %+v: want one, with the newest time", rep.Connections)
	}
	if len(rep.DNS) != 1 || len(rep.DNS[0].IPs) != 2 || !rep.DNS[0].Time.Equal(time.Unix(20, 0)) {
		t.Errorf("dns %+v: want one answer with both addresses", rep.DNS)
	}
}

// A report written one observation at a time reads back as the report, in the
// manager's strict decoding, and an empty list is left out as omitempty leaves it.
func TestEncodedReportReadsBackWhole(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	rep := &reportv1.Report{Version: reportv1.Version, Node: "node-a", AgentTime: at,
		DNS: []reportv1.DNSAnswer{{Client: netip.MustParseAddr("10.0.0.1"), Name: "a<b>.example", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}, TTL: 30, Time: at}},
		Connections: []reportv1.Connection{
			{Client: netip.MustParseAddr("10.0.0.1"), Server: netip.MustParseAddr("10.0.0.2"), Port: 80, Time: at},
			{Client: netip.MustParseAddr("10.0.0.3"), Server: netip.MustParseAddr("10.0.0.2"), Port: 443, Time: at},
		},
		HTTP: []reportv1.HTTPCall{{Reporter: "source", Method: "GET", Path: "/a\"b", Count: 2, Time: at}},
	}
	body, err := encode(rep)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	got := &reportv1.Report{}
	if err := dec.Decode(got); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
	want, _ := json.Marshal(rep)
	if again, _ := json.Marshal(got); !bytes.Equal(again, want) {
		t.Errorf("read back\n%s\nwant\n%s", again, want)
	}
	if bytes.Contains(raw, []byte(`"mesh"`)) {
		t.Errorf("an empty list written: %s", raw)
	}
}

// TestATooLargeReportIsSentInHalves: the manager bounds a report in bytes, the agent
// a batch in observations; a batch of long names over the manager's bound arrives
// whole, in smaller reports, and none of it is dropped.
func TestATooLargeReportIsSentInHalves(t *testing.T) {
	m := newManager(t)
	m.maxBody.Store(2 << 10) // a handful of observations
	dropped := testutil.ToFloat64(metrics.Dropped.WithLabelValues("refused"))
	split := testutil.ToFloat64(metrics.Reports.WithLabelValues("split"))
	r, _ := startReporter(t, m, 1000)
	addConnections(r, 0, 40) // one batch: MaxPerReport is 40
	eventually(t, "all 40 clients received", func() bool { return m.received() == 40 })
	if got := testutil.ToFloat64(metrics.Reports.WithLabelValues("split")) - split; got < 1 {
		t.Errorf("%v reports split, want at least one", got)
	}
	if got := testutil.ToFloat64(metrics.Dropped.WithLabelValues("refused")) - dropped; got != 0 {
		t.Errorf("%v observations dropped", got)
	}
}

func TestHalvesKeepEveryObservationInOrder(t *testing.T) {
	rep := fullReport()
	first, second := halves(rep)
	if first.Len() == 0 || second.Len() == 0 || first.Len()+second.Len() != rep.Len() {
		t.Fatalf("halves of %d: %d and %d", rep.Len(), first.Len(), second.Len())
	}
	joined := append(append([]reportv1.Connection{}, first.Connections...), second.Connections...)
	if len(joined) != len(rep.Connections) || joined[len(joined)-1] != rep.Connections[len(rep.Connections)-1] {
		t.Fatalf("connections out of order: %d of %d", len(joined), len(rep.Connections))
	}
	two := &reportv1.Report{Version: rep.Version, Node: rep.Node, Mesh: make([]reportv1.MeshCall, 2)}
	if a, b := halves(two); a.Len() != 1 || b.Len() != 1 {
		t.Fatalf("two observations halved into %d and %d", a.Len(), b.Len())
	}
}

// A scrape round's calls, megabytes on a busy node, are kept rather than copied into
// an empty batch; a second round's are added after them, and a report has both.
func TestHTTPCallsAreKeptNotCopied(t *testing.T) {
	r := New(Options{Node: "n", BufferSize: 100_000, MaxPerReport: 100_000})
	first := make([]reportv1.HTTPCall, 10_000)
	allocs := testing.AllocsPerRun(10, func() {
		r.http = nil // an empty batch, as after a report
		r.AddHTTP(first...)
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations to add 10,000 calls to an empty batch: copied", allocs)
	}
	r.AddHTTP(reportv1.HTTPCall{Path: "/second"})
	r.closeBatch()
	if n := len(r.outbox[0].HTTP); n != len(first)+1 || r.outbox[0].HTTP[n-1].Path != "/second" {
		t.Errorf("a report of %d calls, want both rounds' %d", n, len(first)+1)
	}
}
