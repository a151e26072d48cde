package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// A full backlog answers 429 with a time to wait, before authentication is spent on the
// report; once it has room, the report goes on to be authenticated as any other.
func TestAFullBacklogSaysRetryLater(t *testing.T) {
	store := pending.NewStore(nil)
	store.Bound(1)
	web := resolve.Workload{Namespace: "shop", Name: "web", Kind: discoveryv1alpha1.KindDeployment}
	db := resolve.Workload{Namespace: "shop", Name: "db", Kind: discoveryv1alpha1.KindDeployment}
	store.Add(resolve.Call{Client: web, Server: db, Type: discoveryv1alpha1.CallTCP, Port: 5432, Time: time.Now()})
	s := &Server{MaxBody: DefaultMaxBody, Backlog: store}
	s.SetLeading(true)

	expectToldToRetry(t, s, http.StatusTooManyRequests, BacklogRetryAfter, "backlog", BacklogFull)

	store.Take(pending.Key{Namespace: "shop", Name: "web"}, time.Now()) // written
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(seedReport))) // no token
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("backlog with room, a report without a token: %d", rec.Code)
	}
}

// expectToldToRetry posts a report and fails unless it is refused with code, the
// Retry-After agents wait for, a body that says why, and one count of result.
func expectToldToRetry(t *testing.T, s *Server, code int, retryAfter, says, result string) {
	t.Helper()
	before := testutil.ToFloat64(ReportsTotal(result))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(seedReport)))
	if rec.Code != code || rec.Header().Get("Retry-After") != retryAfter || !strings.Contains(rec.Body.String(), says) {
		t.Errorf("got %d %q %q, want %d, Retry-After %q, a body saying %q", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String(), code, retryAfter, says)
	}
	if testutil.ToFloat64(ReportsTotal(result)) != before+1 {
		t.Errorf("the refusal is not counted as %s", result)
	}
}
