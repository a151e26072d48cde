// Package v1 is the report an agent sends to the manager (POST /v1/reports): what one
// node observed during one report interval. Agent and manager share these types.
package v1

import (
	"net/netip"
	"time"
)

// Version names this report format; the manager rejects reports of another version.
const Version = "intentmapper.io/report/v1"

// Report is one batch of observations from one node.
type Report struct {
	// Version is always Version.
	Version string `json:"version"`
	// Node is the name of the node the agent runs on.
	Node string `json:"node"`
	// AgentTime is the agent's clock when it sent the report.
	AgentTime time.Time `json:"agentTime"`

	// DNS holds DNS answers captured on the node.
	DNS []DNSAnswer `json:"dns,omitempty"`
	// Connections holds TCP connections, established (from /proc) or opened (a SYN).
	Connections []Connection `json:"connections,omitempty"`
	// HTTP holds HTTP calls counted by Envoy sidecars and waypoints.
	HTTP []HTTPCall `json:"http,omitempty"`
	// Mesh holds L4 calls counted by ztunnel.
	Mesh []MeshCall `json:"mesh,omitempty"`
}

// DNSAnswer is a DNS response seen on its way to a client.
type DNSAnswer struct {
	// Client is the address the response was sent to.
	Client netip.Addr `json:"client"`
	// Name is the question's name, without the trailing dot.
	Name string `json:"name"`
	// IPs are the A and AAAA answers, CNAME chains followed.
	IPs []netip.Addr `json:"ips"`
	// TTL is the smallest TTL of the answers, in seconds.
	TTL uint32 `json:"ttl"`
	// Time is when the response was seen.
	Time time.Time `json:"time"`
}

// Connection is a TCP connection from a client to a server.
type Connection struct {
	Client netip.Addr `json:"client"`
	Server netip.Addr `json:"server"`
	Port   uint16     `json:"port"`
	// Time is the newest time the connection was seen.
	Time time.Time `json:"time"`
}

// Workload is a workload as Istio's metric labels name it.
type Workload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Reporters of an Istio request metric.
const (
	ReporterSource      = "source"
	ReporterDestination = "destination"
	ReporterWaypoint    = "waypoint"
)

// HTTPCall is a count of HTTP requests from one workload to another, on one path and
// method, that a mesh proxy saw grow since its previous scrape.
type HTTPCall struct {
	// Reporter is the proxy's view: source, destination or waypoint.
	Reporter string `json:"reporter"`
	// Proxy is the address of the proxy that was scraped.
	Proxy netip.Addr `json:"proxy"`
	// Source and Destination are the workloads the proxy's labels name.
	Source      Workload `json:"source"`
	Destination Workload `json:"destination"`
	// DestinationService is the service host the request was sent to, if known.
	DestinationService string `json:"destinationService,omitempty"`
	Method             string `json:"method,omitempty"`
	Path               string `json:"path,omitempty"`
	Port               uint16 `json:"port,omitempty"`
	// MutualTLS is true when both sides had sidecars (connection_security_policy
	// mutual_tls): then the source's own view of the call exists too.
	MutualTLS bool `json:"mutualTLS,omitempty"`
	// Count is how many requests were added since the previous scrape.
	Count uint64 `json:"count"`
	// Time is when the growth was seen (the scrape time).
	Time time.Time `json:"time"`
	// History is true on a proxy's first scrape: the requests happened at some time
	// before Time, not necessarily near it.
	History bool `json:"history,omitempty"`
}

// MeshCall is a count of L4 connections from one workload to another seen by ztunnel.
type MeshCall struct {
	Proxy              netip.Addr `json:"proxy"`
	Source             Workload   `json:"source"`
	Destination        Workload   `json:"destination"`
	DestinationService string     `json:"destinationService,omitempty"`
	Count              uint64     `json:"count"`
	Time               time.Time  `json:"time"`
	History            bool       `json:"history,omitempty"`
}

// Len is the number of observations in the report.
func (r *Report) Len() int {
	return len(r.DNS) + len(r.Connections) + len(r.HTTP) + len(r.Mesh)
}
