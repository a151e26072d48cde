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
	"sync"
	"sync/atomic"
	"time"

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
)

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
	// Sink receives every accepted report.
	Sink func(*reportv1.Report)

	serving atomic.Bool
	stopped chan struct{}
	once    sync.Once
}

// Stopped is closed once the server has stopped and answered its last report: from
// then on nothing is added to what it accepted.
func (s *Server) Stopped() <-chan struct{} {
	s.once.Do(func() { s.stopped = make(chan struct{}) })
	return s.stopped
}

// NeedLeaderElection: only the leader accepts reports, and readiness follows, so the
// ingest Service routes to the leader.
func (s *Server) NeedLeaderElection() bool { return true }

// Ready is a readiness check: it passes while the server accepts reports.
func (s *Server) Ready(*http.Request) error {
	if !s.serving.Load() {
		return errors.New("not serving reports (not the leader, or starting)")
	}
	if _, err := s.GetCertificate(nil); err != nil {
		return err
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
		refuse(w, http.StatusMethodNotAllowed, WrongMethod, "use POST")
		return
	}
	if status, reason := s.Auth.Authenticate(r.Context(), r.Header.Get("Authorization")); status != http.StatusOK {
		refuse(w, status, authResult(status), reason)
		return
	}
	rep, status, result, err := s.decode(w, r)
	if err != nil {
		refuse(w, status, result, err.Error())
		return
	}
	s.Sink(rep)
	reportsTotal.WithLabelValues(Accepted).Inc()
	observationsTotal.WithLabelValues("dns").Add(float64(len(rep.DNS)))
	observationsTotal.WithLabelValues("connection").Add(float64(len(rep.Connections)))
	observationsTotal.WithLabelValues("http").Add(float64(len(rep.HTTP)))
	observationsTotal.WithLabelValues("mesh").Add(float64(len(rep.Mesh)))
	w.WriteHeader(http.StatusAccepted)
}

func authResult(status int) string {
	switch status {
	case http.StatusForbidden:
		return Forbidden
	case http.StatusUnauthorized:
		return Unauthenticated
	}
	return AuthUnavailable
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

func refuse(w http.ResponseWriter, status int, result, reason string) {
	reportsTotal.WithLabelValues(result).Inc()
	http.Error(w, reason, status)
}

// ReportsTotal returns the counter of reports with the given result.
func ReportsTotal(result string) prometheus.Counter { return reportsTotal.WithLabelValues(result) }
