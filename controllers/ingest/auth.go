package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Audience is the audience agents' projected tokens are issued for.
const Audience = "intent-mapper"

// Cache bounds: a verdict is kept at most this long, and failures shortly, so that a
// flood of bad tokens costs few TokenReviews without locking out a fixed agent.
const (
	maxCacheTTL     = 5 * time.Minute
	failureCacheTTL = 10 * time.Second
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// Authenticator accepts callers that present a token of one ServiceAccount, issued
// for Audience, as the API server's TokenReview judges it.
type Authenticator struct {
	Client client.Client
	// ServiceAccount is the only caller accepted, as namespace/name.
	ServiceAccount string
	// MaxEntries bounds the cache.
	MaxEntries int
	Now        func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]verdict
}

type verdict struct {
	status  int
	reason  string
	expires time.Time
}

// Authenticate returns http.StatusOK for an accepted caller, or the status and reason
// to refuse it with: 401 for no or an invalid token, 403 for another identity.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (int, string) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return http.StatusUnauthorized, "no bearer token"
	}
	key := sha256.Sum256([]byte(token))
	now := a.Now()
	if v, ok := a.cached(key, now); ok {
		return v.status, v.reason
	}
	v := a.review(ctx, token, now)
	if v.status == http.StatusInternalServerError {
		return v.status, v.reason // the API server's trouble is not the token's
	}
	a.remember(key, v, now)
	return v.status, v.reason
}

func (a *Authenticator) review(ctx context.Context, token string, now time.Time) verdict {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{Audience}}}
	if err := a.Client.Create(ctx, tr); err != nil {
		return verdict{status: http.StatusInternalServerError, reason: "token review failed"}
	}
	st := tr.Status
	fail := verdict{status: http.StatusUnauthorized, expires: now.Add(failureCacheTTL)}
	switch {
	case !st.Authenticated:
		fail.reason = "token not valid for audience " + Audience
		return fail
	case !slices.Contains(st.Audiences, Audience):
		fail.reason = "token not issued for audience " + Audience
		return fail
	}
	want := "system:serviceaccount:" + strings.Replace(a.ServiceAccount, "/", ":", 1)
	if st.User.Username != want {
		return verdict{status: http.StatusForbidden, reason: fmt.Sprintf("%s may not report", st.User.Username), expires: now.Add(failureCacheTTL)}
	}
	return verdict{status: http.StatusOK, expires: tokenExpiry(token, now)}
}

func (a *Authenticator) cached(key [32]byte, now time.Time) (verdict, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.cache[key]
	if !ok || !now.Before(v.expires) {
		return verdict{}, false
	}
	return v, true
}

func (a *Authenticator) remember(key [32]byte, v verdict, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[[32]byte]verdict{}
	}
	if len(a.cache) >= a.MaxEntries {
		for k, old := range a.cache {
			if !now.Before(old.expires) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < a.MaxEntries {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = v
}

// tokenExpiry reads a JWT's exp claim to keep a verdict no longer than the token is
// valid. The claim is trusted only to shorten the cache: validity is TokenReview's.
func tokenExpiry(token string, now time.Time) time.Time {
	limit := now.Add(maxCacheTTL)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return now
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return now
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return now
	}
	if exp := time.Unix(claims.Exp, 0); exp.Before(limit) {
		return exp
	}
	return limit
}
