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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// The user extras a TokenReview gives a token bound to a pod: the pod's name and UID
// (Kubernetes 1.20 on, where projected tokens are always pod-bound) and, from
// Kubernetes 1.30, the node the pod was scheduled to when the token was issued.
const (
	extraPodName  = "authentication.kubernetes.io/pod-name"
	extraPodUID   = "authentication.kubernetes.io/pod-uid"
	extraNodeName = "authentication.kubernetes.io/node-name"
)

// Authenticator accepts callers that present a token of one ServiceAccount, issued
// for Audience, as the API server's TokenReview judges it, and learns from the token
// which node the caller runs on.
type Authenticator struct {
	Client client.Client
	// ServiceAccount is the only caller accepted, as namespace/name.
	ServiceAccount string
	// AllowUnbound accepts tokens bound to no pod, for clusters too old to bind
	// them; such a caller's node is then unknown and the report's word is taken.
	AllowUnbound bool
	// MaxEntries bounds the cache.
	MaxEntries int
	Now        func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]verdict
}

// Caller is an authenticated agent.
type Caller struct {
	// Node is the node the caller's pod runs on, from its token; empty only for an
	// unbound token accepted under AllowUnbound.
	Node string
}

type verdict struct {
	caller  Caller
	status  int
	result  string
	reason  string
	expires time.Time
}

// Authenticate returns the caller and http.StatusOK, or the status, counted result
// and reason to refuse it with: 401 for no or an invalid token, 403 for another
// identity or a token bound to no pod.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Caller, int, string, string) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return Caller{}, http.StatusUnauthorized, Unauthenticated, "no bearer token"
	}
	key := sha256.Sum256([]byte(token))
	now := a.Now()
	if v, ok := a.cached(key, now); ok {
		return v.caller, v.status, v.result, v.reason
	}
	v := a.review(ctx, token, now)
	if v.status == http.StatusInternalServerError {
		return v.caller, v.status, v.result, v.reason // the API server's trouble is not the token's
	}
	a.remember(key, v, now)
	return v.caller, v.status, v.result, v.reason
}

func (a *Authenticator) review(ctx context.Context, token string, now time.Time) verdict {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{Audience}}}
	if err := a.Client.Create(ctx, tr); err != nil {
		return unavailable("token review failed")
	}
	st := tr.Status
	fail := verdict{status: http.StatusUnauthorized, result: Unauthenticated, expires: now.Add(failureCacheTTL)}
	switch {
	case !st.Authenticated:
		fail.reason = "token not valid for audience " + Audience
		return fail
	case !slices.Contains(st.Audiences, Audience):
		fail.reason = "token not issued for audience " + Audience
		return fail
	}
	namespace, _, _ := strings.Cut(a.ServiceAccount, "/")
	want := "system:serviceaccount:" + strings.Replace(a.ServiceAccount, "/", ":", 1)
	if st.User.Username != want {
		return forbidden(Forbidden, fmt.Sprintf("%s may not report", st.User.Username), now)
	}
	node, v := a.nodeOf(ctx, namespace, st.User.Extra, now)
	if v != nil {
		return *v
	}
	return verdict{caller: Caller{Node: node}, status: http.StatusOK, expires: tokenExpiry(token, now)}
}

// nodeOf finds the caller's node: named in the token, or else the bound pod's, which
// must still be the pod the token was issued for.
func (a *Authenticator) nodeOf(ctx context.Context, namespace string, extra map[string]authenticationv1.ExtraValue, now time.Time) (string, *verdict) {
	if node := single(extra[extraNodeName]); node != "" {
		return node, nil
	}
	podName, podUID := single(extra[extraPodName]), single(extra[extraPodUID])
	if podName == "" || podUID == "" {
		if a.AllowUnbound {
			return "", nil
		}
		v := forbidden(Unbound, "token is not bound to a pod", now)
		return "", &v
	}
	pod := &corev1.Pod{}
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: podName}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			v := forbidden(Unbound, "the token's pod is gone", now)
			return "", &v
		}
		v := unavailable("looking up the token's pod failed")
		return "", &v
	}
	if string(pod.UID) != podUID || pod.Spec.NodeName == "" {
		v := forbidden(Unbound, "the token's pod is gone or not scheduled", now)
		return "", &v
	}
	return pod.Spec.NodeName, nil
}

func single(v authenticationv1.ExtraValue) string {
	if len(v) != 1 {
		return ""
	}
	return v[0]
}

func forbidden(result, reason string, now time.Time) verdict {
	return verdict{status: http.StatusForbidden, result: result, reason: reason, expires: now.Add(failureCacheTTL)}
}

func unavailable(reason string) verdict {
	return verdict{status: http.StatusInternalServerError, result: AuthUnavailable, reason: reason}
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
