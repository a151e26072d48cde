package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A full backlog answers 429 with a time to wait, before authentication is spent on the
// report; once it has room, the report goes on to be authenticated as any other.
func TestAFullBacklogSaysRetryLater(t *testing.T) {
	var full atomic.Bool
	full.Store(true)
	s := &Server{MaxBody: DefaultMaxBody, Busy: full.Load}
	s.SetLeading(true)

	before := testutil.ToFloat64(ReportsTotal(Backlog))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(seedReport)))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != BacklogRetryAfter || !strings.Contains(rec.Body.String(), "backlog") {
		t.Errorf("backlog full: got %d %q %q", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
	if testutil.ToFloat64(ReportsTotal(Backlog)) != before+1 {
		t.Error("the refusal is not counted")
	}

	full.Store(false)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(seedReport))) // no token
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("backlog with room, a report without a token: %d", rec.Code)
	}
}
