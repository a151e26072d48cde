// Package ingest serves POST /v1/reports: agents' reports arrive over TLS, callers are
// authenticated by TokenReview, bodies are bounded and checked, and every report is
// either handed on whole or refused with a reason that is counted.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// Path is where agents send reports.
const Path = "/v1/reports"

// DefaultMaxBody is the largest report accepted, after decompression.
const DefaultMaxBody = 8 << 20

// Results of a report, as counted in intentmapper_reports_total.
const (
	Accepted        = "accepted"
	Unauthenticated = "unauthenticated"
	Forbidden       = "forbidden"
	TooLarge        = "too-large"
	BadEncoding     = "bad-encoding"
	BadJSON         = "bad-json"
	Invalid         = "invalid"
	WrongMethod     = "wrong-method"
	AuthUnavailable = "auth-unavailable"
	NotLeader       = "not-leader"
	// Unbound: a token bound to no pod, or to a pod that is gone.
	Unbound = "unbound-token"
	// NodeMismatch: a report naming another node than the caller's own.
	NodeMismatch = "node-mismatch"
	// Backlog: the manager holds as much unwritten as it may; agents keep the report
	// and send it again.
	BacklogFull = "backlog-full"
)

// RetryAfter is what a replica that does not lead tells agents to wait, in seconds:
// about the time the ingest Service takes to follow a new leader's label.
const RetryAfter = "5"

// BacklogRetryAfter is what the manager tells agents to wait, in seconds, while its
// backlog is full: agents that wait longer than the backlog takes to drain would leave
// the writers idle (agents' own backoff starts at a second).
const BacklogRetryAfter = "5"

var (
	reportsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_reports_total",
		Help: "Agent reports received, by result: accepted, or the reason they were refused.",
	}, []string{"result"})
	observationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_observations_total",
		Help: "Observations in accepted reports, by kind.",
	}, []string{"kind"})
)

func init() { metrics.Registry.MustRegister(reportsTotal, observationsTotal) }

// Server is the ingest endpoint.
type Server struct {
	// Addr to listen on, unless Listener is set.
	Addr     string
	Listener net.Listener
	// GetCertificate supplies the serving certificate.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Auth           *Authenticator
	// MaxBody bounds a report's size, compressed and decompressed.
	MaxBody int64
	// Times bounds observation times around the manager's clock.
	Times Window
	// Now is the manager's clock; time.Now when nil.
	Now func() time.Time
	// Sink receives every accepted report.
	Sink func(*reportv1.Report)
	// Backlog bounds what is accepted and not yet written: beyond it reports are
	// answered 429, which agents retry, so the backlog waits in them. Nil: no bound.
	Backlog Backlog
	// Nodes learns which nodes' agents report.
	Nodes Nodes
	// Log says why reports are refused, at most once per reason a minute.
	Log logr.Logger

	// Decoding bounds the reports read and handed on at once (GOMAXPROCS when zero):
	// agents reporting together would otherwise all hold their reports in memory at once.
	Decoding int

	refusals  refusalLog
	slots     chan struct{}
	slotsOnce sync.Once

	serving      atomic.Bool
	leading      atomic.Bool
	leadingSince atomic.Pointer[time.Time]
	stopped      chan struct{}
	once         sync.Once
}

// Stopped is closed once the server has stopped and answered its last report: from
// then on nothing is added to what it accepted.
func (s *Server) Stopped() <-chan struct{} {
	s.once.Do(func() { s.stopped = make(chan struct{}) })
	return s.stopped
}

// NeedLeaderElection: every replica serves, so that readiness never waits for the
// lease (a rolling upgrade's new pod must become Ready while the old one leads); only
// the leader accepts reports, the others answer 503.
func (s *Server) NeedLeaderElection() bool { return false }

// SetLeading says whether this replica holds the lease and so accepts reports.
func (s *Server) SetLeading(leading bool) {
	now := time.Now()
	s.leadingSince.Store(&now)
	s.leading.Store(leading)
}

// LastReport is when node's agent last had a report accepted here.
func (s *Server) LastReport(node string) (time.Time, bool) { return s.Nodes.LastReport(node) }

// LeadingSince is when this replica last started or stopped leading: reports arrive
// only from then on.
func (s *Server) LeadingSince() time.Time {
	if t := s.leadingSince.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Leading tells whether this replica accepts reports.
func (s *Server) Leading() bool { return s.leading.Load() }

// Ready is a readiness check: it passes while the server listens, leader or not.
func (s *Server) Ready(*http.Request) error {
	if !s.serving.Load() {
		return errors.New("not serving reports yet")
	}
	return nil
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	s.Stopped()
	defer close(s.stopped)
	ln := s.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.Addr); err != nil {
			return fmt.Errorf("listening for reports: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{GetCertificate: s.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	// Shutdown returns once the handlers in flight have answered: only then is
	// everything accepted in the sink, and the server stopped.
	shutdown := make(chan struct{})
	go func() {
		defer close(shutdown)
		<-ctx.Done()
		s.serving.Store(false)
		wait, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(wait)
	}()
	s.serving.Store(true)
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-shutdown
	return nil
}

// ServeHTTP handles one report.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, r, http.StatusMethodNotAllowed, WrongMethod, "use POST")
		return
	}
	if !s.leading.Load() {
		w.Header().Set("Retry-After", RetryAfter)
		s.refuse(w, r, http.StatusServiceUnavailable, NotLeader, "this replica does not lead: retry")
		return
	}
	if s.Backlog != nil && s.Backlog.Full() { // before anything is spent on the report
		s.refuseBacklog(w, r)
		return
	}
	received := s.now()
	caller, status, result, reason := s.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if status != http.StatusOK {
		s.refuse(w, r, status, result, reason)
		return
	}
	if !s.acquire(r.Context()) {
		return // the agent went away while waiting: it sends the report again
	}
	defer s.release()
	if s.Backlog != nil && s.Backlog.Full() { // filled up while this report waited
		s.refuseBacklog(w, r)
		return
	}
	rep, status, result, err := s.decode(w, r)
	if err != nil {
		s.refuse(w, r, status, result, err.Error())
		return
	}
	if caller.Node != "" && rep.Node != caller.Node {
		s.refuse(w, r, http.StatusForbidden, NodeMismatch, fmt.Sprintf("the caller runs on node %q, not %q", caller.Node, rep.Node))
		return
	}
	if s.Backlog != nil {
		n := rep.Len()
		if !s.Backlog.Reserve(n) { // reports in flight together all passed the first check
			s.refuseBacklog(w, r)
			return
		}
		defer s.Backlog.Release(n)
	}
	s.Times.Report(rep, received)
	s.Sink(rep)
	s.Nodes.Mark(rep.Node, time.Now())
	reportsTotal.WithLabelValues(Accepted).Inc()
	observationsTotal.WithLabelValues("dns").Add(float64(len(rep.DNS)))
	observationsTotal.WithLabelValues("connection").Add(float64(len(rep.Connections)))
	observationsTotal.WithLabelValues("http").Add(float64(len(rep.HTTP)))
	observationsTotal.WithLabelValues("mesh").Add(float64(len(rep.Mesh)))
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// decode reads a report: gzip or plain, at most MaxBody bytes either way, one JSON
// object of the current version with no unknown fields, valid throughout.
func (s *Server) decode(w http.ResponseWriter, r *http.Request) (*reportv1.Report, int, string, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.MaxBody)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, decodeStatus(err), decodeResult(err), fmt.Errorf("gzip: %w", err)
		}
		body = gz
	default:
		return nil, http.StatusUnsupportedMediaType, BadEncoding, errors.New("content encoding must be gzip or none")
	}
	data, err := io.ReadAll(io.LimitReader(body, s.MaxBody+1))
	if err != nil {
		return nil, decodeStatus(err), decodeResult(err), fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(data)) > s.MaxBody {
		return nil, http.StatusRequestEntityTooLarge, TooLarge, fmt.Errorf("report larger than %d bytes", s.MaxBody)
	}
	rep := &reportv1.Report{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rep); err != nil {
		return nil, http.StatusBadRequest, BadJSON, fmt.Errorf("json: %w", err)
	}
	if dec.More() {
		return nil, http.StatusBadRequest, BadJSON, errors.New("json: data after the report")
	}
	if err := rep.Validate(); err != nil {
		return nil, http.StatusBadRequest, Invalid, err
	}
	return rep, 0, "", nil
}

func decodeStatus(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func decodeResult(err error) string {
	if decodeStatus(err) == http.StatusRequestEntityTooLarge {
		return TooLarge
	}
	return BadEncoding
}

// refuse answers a refused report, counts it, and logs it unless its reason was
// logged within the last minute.
// acquire waits for a decoding slot, or for the request to end.
func (s *Server) acquire(ctx context.Context) bool {
	s.slotsOnce.Do(func() {
		n := s.Decoding
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		s.slots = make(chan struct{}, n)
	})
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) release() { <-s.slots }

// Backlog is what is accepted and not yet written, as ingest sees it.
type Backlog interface {
	// Full tells whether no report can be taken now.
	Full() bool
	// Reserve makes room for a report of n observations, or tells there is none;
	// Release gives the room back once the report is handed on.
	Reserve(n int) bool
	Release(n int)
}

func (s *Server) refuseBacklog(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", BacklogRetryAfter)
	s.refuse(w, r, http.StatusTooManyRequests, BacklogFull, "the manager's backlog of unwritten observations is full: retry")
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, result, reason string) {
	reportsTotal.WithLabelValues(result).Inc()
	if suppressed, ok := s.refusals.due(result, s.now()); ok {
		s.Log.Info("refused a report", "result", result, "reason", reason, "from", r.RemoteAddr, "sameResultSinceLastLog", suppressed)
	}
	http.Error(w, reason, status)
}

// ReportsTotal returns the counter of reports with the given result.
func ReportsTotal(result string) prometheus.Counter { return reportsTotal.WithLabelValues(result) }
