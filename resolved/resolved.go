// Package resolved holds what attribution produces: a call from one workload to
// another. The resolver makes them, and the pending store and the Kafka recorder take
// them, without either depending on the other.
package resolved

import (
	"time"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Workload identifies a workload by namespace, name and top-controller kind.
type Workload struct {
	Namespace string
	Name      string
	Kind      discoveryv1alpha1.WorkloadKind
}

// Call is one resolved observation: a client workload calling a server.
type Call struct {
	Client Workload
	// ClientAccount is the ServiceAccount of the client's pod.
	ClientAccount string
	// Server is the server workload; for an internet call its Namespace is empty and
	// its Name is the domain (or the IP when no name was seen).
	Server  Workload
	Type    discoveryv1alpha1.CallType
	Service string // the Service the client went through, if any
	Port    uint16
	Domain  string // internet calls: the name the client resolved
	IP      string // internet calls with no name
	// ResolvedIP is the address an internet call's name resolved to, and was connected to.
	ResolvedIP string
	Method     string
	Path       string
	// Topic and Operation are a Kafka access.
	Topic     string
	Operation string
	Time      time.Time
	// History marks an observation known only to have happened before Time.
	History bool
}
