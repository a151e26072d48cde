package controllers

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The metrics endpoint checks each caller's token (TokenReview) and asks the API
// server whether it may get /metrics (SubjectAccessReview): the metrics-reader
// ClusterRole grants that.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// MetricsOptions serve the manager's metrics on addr: over HTTPS to authenticated and
// authorized callers when secure, in plain HTTP otherwise (for local runs only).
func MetricsOptions(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		// HTTP/2 stays off: its stream resets (CVE-2023-44487) cost a server more than
		// a metrics endpoint is worth.
		o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return o
}
