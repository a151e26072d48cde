// Package metrics holds the agent's Prometheus metrics, served on its own port.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every agent metric.
var Registry = prometheus.NewRegistry()

var (
	// Packets counts captured packets by outcome: captured, decoded, malformed,
	// kernel-dropped.
	Packets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_packets_total",
		Help: "Packets by outcome: captured (passed the kernel filter), decoded, malformed, kernel-dropped.",
	}, []string{"outcome"})
	// Observations counts observations made, by kind: dns, connection, syn, http, mesh.
	Observations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_observations_total",
		Help: "Observations made, by kind.",
	}, []string{"kind"})
	// Reports counts reports sent, by result: sent, retried, refused.
	Reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_reports_total",
		Help: "Reports by result: sent, failed (kept and retried), split (too large for the manager: sent again in halves), refused (malformed, dropped).",
	}, []string{"result"})
	// Buffered is the number of observations waiting to be sent.
	Buffered = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_agent_buffered_observations",
		Help: "Observations waiting to be sent.",
	})
	// Dropped counts observations dropped because the buffer was full or the manager refused them.
	Dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_dropped_observations_total",
		Help: "Observations dropped, by reason: buffer-full (oldest first), refused.",
	}, []string{"reason"})
	// MeshWaiting is 1 while the mesh source waits for the first list of the node's pods.
	MeshWaiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_agent_mesh_waiting",
		Help: "1 while the mesh source waits for the first list of this node's pods (reporting goes on without it).",
	})
	// ScanSeconds is the duration of /proc scans.
	ScanSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "intentmapper_agent_scan_duration_seconds",
		Help:    "Duration of a /proc connection scan.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	// ScanSockets and ScanNamespaces describe the last /proc scan: what it read, so an
	// operator sees whether the pods' namespaces are found at all.
	ScanSockets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_agent_scan_sockets",
		Help: "TCP sockets read by the last /proc scan, in every network namespace it found.",
	})
	ScanNamespaces = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intentmapper_agent_scan_namespaces",
		Help: "Network namespaces read by the last /proc scan.",
	})
)

func init() {
	Registry.MustRegister(Packets, Observations, Reports, Buffered, Dropped, ScanSeconds, ScanSockets, ScanNamespaces, MeshWaiting,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
