package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadKind is the kind of a workload's top controller.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;ReplicaSet;Job;CronJob;Pod
type WorkloadKind string

// Workload kinds, as found at the top of a pod's owner chain.
const (
	KindDeployment  WorkloadKind = "Deployment"
	KindStatefulSet WorkloadKind = "StatefulSet"
	KindDaemonSet   WorkloadKind = "DaemonSet"
	KindReplicaSet  WorkloadKind = "ReplicaSet"
	KindJob         WorkloadKind = "Job"
	KindCronJob     WorkloadKind = "CronJob"
	KindPod         WorkloadKind = "Pod"
)

// CallType says what is known about a call: tcp (a connection), http (with paths and
// methods), kafka (with topics and operations) or internet (a server outside the cluster).
// +kubebuilder:validation:Enum=tcp;http;kafka;internet
type CallType string

// Call types, from least to most detailed for in-cluster servers.
const (
	CallTCP      CallType = "tcp"
	CallHTTP     CallType = "http"
	CallKafka    CallType = "kafka"
	CallInternet CallType = "internet"
)

// WorkloadRef names a workload in the DiscoveredIntents' own namespace.
type WorkloadRef struct {
	// name of the workload: its top controller's name, or the value of the pod label
	// intentmapper.io/service-name when the pod carries it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// kind of the workload's top controller (Pod for a pod that no controller owns).
	// +optional
	Kind WorkloadKind `json:"kind,omitempty"`
}

// DiscoveredIntentsSpec names the client workload whose calls the object records.
type DiscoveredIntentsSpec struct {
	// workload is the client workload that made the calls listed in status.
	Workload WorkloadRef `json:"workload"`
}

// HTTPPath is one HTTP path a client requested from a server, with the methods it used.
type HTTPPath struct {
	// path requested, normalised: no query string, and id-like segments (numbers, UUIDs,
	// long hex) collapsed into a trailing "*", the only wildcard Istio accepts in paths.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Path string `json:"path"`

	// methods used on this path, upper-case and sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[A-Z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	// +optional
	Methods []string `json:"methods,omitempty"`

	// lastSeen is when a request on this path was last observed, in lastSeen steps.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// seenBefore is set while the path is known only from counters a proxy had when
	// first read: requests happened at some time before this, not necessarily near it.
	// +optional
	SeenBefore *metav1.Time `json:"seenBefore,omitempty"`
}

// InternetTarget describes a server outside the cluster.
type InternetTarget struct {
	// domains the client resolved to reach the server, sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	Domains []string `json:"domains,omitempty"`

	// ips the client connected to that no domain was seen for, sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=45
	// +optional
	IPs []string `json:"ips,omitempty"`

	// resolvedIPs are the addresses the domains resolved to that the client connected to,
	// sorted: what an IP-based egress policy must allow (they change when the DNS does).
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=45
	// +optional
	ResolvedIPs []string `json:"resolvedIPs,omitempty"`
}

// KafkaTopic is one Kafka topic a client accessed, with the operations it performed.
type KafkaTopic struct {
	// name of the topic, or a prefix ending in "*" for a prefixed resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=249
	Name string `json:"name"`

	// operations performed on the topic (describe, read, write, create, alter, delete, …), sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Operations []string `json:"operations,omitempty"`
}

// Call is one server that the client was observed calling.
type Call struct {
	// name of the server: its workload's name, or for an internet call the first DNS name
	// the client resolved for it (its IP when no name was seen).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the server workload; empty for internet calls.
	// +kubebuilder:default=""
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace"`

	// kind of the server workload's top controller; empty for internet calls.
	// +optional
	Kind WorkloadKind `json:"kind,omitempty"`

	// type of the call: tcp, http, kafka or internet.
	Type CallType `json:"type"`

	// services are the Kubernetes Services through which the client reached the server, sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Services []string `json:"services,omitempty"`

	// ports the client connected to on the server, sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +optional
	Ports []int32 `json:"ports,omitempty"`

	// http lists the paths requested and their methods, sorted by path; set when a
	// mesh proxy reported them.
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	HTTP []HTTPPath `json:"http,omitempty"`

	// truncated is true when more distinct paths were seen than the per-call cap;
	// those beyond it are not listed.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// internet describes a server outside the cluster; set for internet calls.
	// +optional
	Internet *InternetTarget `json:"internet,omitempty"`

	// kafka lists the topics accessed and their operations, sorted by name; set for kafka calls.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Kafka []KafkaTopic `json:"kafka,omitempty"`

	// declared tells whether a ClientIntents of the client declares this call; unset when
	// declarations are not known (no ClientIntents API in the cluster).
	// +optional
	Declared *bool `json:"declared,omitempty"`

	// firstSeen is when the call was first observed.
	// +optional
	FirstSeen *metav1.Time `json:"firstSeen,omitempty"`

	// lastSeen is when the call was last observed, in lastSeen steps (default one minute).
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// seenBefore is set while the call is known only from counters a proxy had when
	// first read: it happened at some time before this, not necessarily near it.
	// +optional
	SeenBefore *metav1.Time `json:"seenBefore,omitempty"`
}

// DiscoveredIntentsStatus is what was observed of the client: its calls, and summaries of them.
type DiscoveredIntentsStatus struct {
	// observedGeneration is the metadata.generation that this status was last reconciled for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the status is reconciled), Declared (every observed call is
	// declared) and HTTPPaths (False when proxies report HTTP calls without paths).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// calls are the servers the client was observed calling, sorted by namespace and name,
	// one per namespace and name. Atomic: the manager alone writes status, and a granular
	// list would make the API server track every call again in managedFields, doubling
	// the stored object and the cost of each write.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2000
	// +optional
	Calls []Call `json:"calls,omitempty"`

	// serviceAccounts are the ServiceAccounts the client's pods ran as when their calls were
	// observed, sorted; Istio names the client by them (cluster.local/ns/NAMESPACE/sa/NAME).
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// callCount is the number of entries in calls.
	// +optional
	CallCount int32 `json:"callCount,omitempty"`

	// undeclaredCount is the number of calls that no ClientIntents declares; unset when
	// declarations are not known.
	// +optional
	UndeclaredCount *int32 `json:"undeclaredCount,omitempty"`

	// lastSeen is the newest lastSeen of all calls.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
}

// DiscoveredIntents records, for one client workload, the calls it was observed making.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=di,categories=intents
// +kubebuilder:printcolumn:name="Workload",type=string,JSONPath=`.spec.workload.name`
// +kubebuilder:printcolumn:name="Calls",type=integer,JSONPath=`.status.callCount`
// +kubebuilder:printcolumn:name="Undeclared",type=integer,JSONPath=`.status.undeclaredCount`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.lastSeen`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DiscoveredIntents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the client workload.
	Spec DiscoveredIntentsSpec `json:"spec"`

	// status holds what was observed.
	// +optional
	Status DiscoveredIntentsStatus `json:"status,omitempty"`
}

// DiscoveredIntentsList is a list of DiscoveredIntents.
// +kubebuilder:object:root=true
type DiscoveredIntentsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DiscoveredIntents `json:"items"`
}
