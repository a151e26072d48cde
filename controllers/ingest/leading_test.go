package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAReplicaThatDoesNotLeadIsReadyAndSaysRetry: readiness must not wait for the lease
// (a rolling upgrade's new pod would never be Ready), and reports it cannot take get a
// 503 the agent retries, before any authentication is spent on them.
func TestAReplicaThatDoesNotLeadIsReadyAndSaysRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Listener: ln, MaxBody: DefaultMaxBody,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("none here") }}
	if s.Ready(nil) == nil {
		t.Fatal("ready before serving")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for i := 0; s.Ready(nil) != nil; i++ {
		if i > 500 {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Leading() {
		t.Fatal("leading without the lease")
	}

	expectToldToRetry(t, s, http.StatusServiceUnavailable, RetryAfter, "does not lead", NotLeader)

	s.SetLeading(true)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(seedReport))) // no token: authentication's turn
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("leading, a report without a token: %d", rec.Code)
	}
}
