package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SingletonName is the only name an IntentMapper may have.
const SingletonName = "cluster"

// AgentSources turns each of the agent's observation sources on or off.
type AgentSources struct {
	// dns captures DNS answers, to map IPs to the names clients resolved.
	// +kubebuilder:default=true
	// +optional
	DNS *bool `json:"dns,omitempty"`

	// connections scans /proc for established TCP connections and captures outgoing SYNs.
	// +kubebuilder:default=true
	// +optional
	Connections *bool `json:"connections,omitempty"`

	// istio scrapes Envoy sidecars for HTTP paths and methods.
	// +kubebuilder:default=true
	// +optional
	Istio *bool `json:"istio,omitempty"`

	// ambient scrapes ztunnel (L4) and waypoint proxies (L7) of Istio's ambient mode.
	// +kubebuilder:default=false
	// +optional
	Ambient *bool `json:"ambient,omitempty"`
}

// AgentSpec configures the node agent DaemonSet.
type AgentSpec struct {
	// image of the agent; the manager's own image when empty.
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the agent container: Never for images loaded on the nodes by
	// hand; when empty, Kubernetes' rule (Always for an untagged or :latest image,
	// IfNotPresent otherwise) is written into the DaemonSet.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of the agent container; defaults come from the measured limits.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector restricts the nodes the agent runs on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the agent run on tainted nodes.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// priorityClassName of the agent pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// interfaces to capture packets on; all interfaces when empty.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// sources turns observation sources on or off.
	// +kubebuilder:default={}
	// +optional
	Sources AgentSources `json:"sources,omitempty"`
}

// Intervals sets how often each stage runs.
type Intervals struct {
	// report is how often an agent sends what it observed.
	// +kubebuilder:default="10s"
	// +optional
	Report *metav1.Duration `json:"report,omitempty"`

	// scan is how often an agent reads /proc for established connections. Each scan
	// walks the node's TCP table once per pod network namespace, so it is the agent's
	// largest cost on a busy node; new connections are seen as they open (SYNs). Keep
	// it at most half of lastSeenStep, so long-lived connections move lastSeen each step.
	// +kubebuilder:default="30s"
	// +optional
	Scan *metav1.Duration `json:"scan,omitempty"`

	// scrape is how often an agent reads its node's mesh proxies' metrics.
	// +kubebuilder:default="15s"
	// +optional
	Scrape *metav1.Duration `json:"scrape,omitempty"`

	// flush is the shortest time between two writes of one DiscoveredIntents.
	// +kubebuilder:default="5s"
	// +optional
	Flush *metav1.Duration `json:"flush,omitempty"`

	// lastSeenStep is the step in which lastSeen moves, so steady traffic does not rewrite objects.
	// +kubebuilder:default="1m"
	// +optional
	LastSeenStep *metav1.Duration `json:"lastSeenStep,omitempty"`
}

// KafkaServer selects Kafka broker pods whose authorizer logs reveal topic access.
type KafkaServer struct {
	// namespace of the brokers.
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`

	// name of the broker workload; either name or selector is set.
	// +optional
	Name string `json:"name,omitempty"`

	// selector of the broker pods; either name or selector is set.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// container whose log holds the authorizer's lines, in a pod with several (a mesh
	// sidecar, a metrics exporter). Default: the pod's only container, else the one
	// named kafka or broker, else the only one that is not a known sidecar.
	// +optional
	Container string `json:"container,omitempty"`
}

// IntentMapperSpec configures intent-mapper for the whole cluster.
type IntentMapperSpec struct {
	// agent configures the node agent DaemonSet.
	// +kubebuilder:default={}
	// +optional
	Agent AgentSpec `json:"agent,omitempty"`

	// intervals of reporting, scanning, scraping, writing and the lastSeen step.
	// +kubebuilder:default={}
	// +optional
	Intervals Intervals `json:"intervals,omitempty"`

	// retention: calls not seen for this long leave DiscoveredIntents; kept forever when unset.
	// +optional
	Retention *metav1.Duration `json:"retention,omitempty"`

	// maxPathsPerCall caps the HTTP paths listed per call; the rest is marked truncated.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxPathsPerCall int32 `json:"maxPathsPerCall,omitempty"`

	// kafka lists Kafka brokers whose authorizer logs are read for topic access.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Kafka []KafkaServer `json:"kafka,omitempty"`
}

// IntentMapperStatus reports the state of what the operator deployed.
type IntentMapperStatus struct {
	// observedGeneration is the metadata.generation this status was last reconciled for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Available (agents ready), AgentsReporting (ready agents' reports
	// arrive), Progressing and Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// desiredAgents is the number of nodes that should run an agent.
	// +optional
	DesiredAgents int32 `json:"desiredAgents,omitempty"`

	// readyAgents is the number of agents running and ready.
	// +optional
	ReadyAgents int32 `json:"readyAgents,omitempty"`

	// reportingAgents is the number of agents whose reports reached the manager
	// within three report intervals.
	// +optional
	ReportingAgents int32 `json:"reportingAgents,omitempty"`
}

// IntentMapper configures intent-mapper; there is one, named cluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=intents
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'cluster'",message="IntentMapper is a singleton: its name must be 'cluster'"
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredAgents`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyAgents`
// +kubebuilder:printcolumn:name="Reporting",type=integer,JSONPath=`.status.reportingAgents`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IntentMapper struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec configures the operator and its agents.
	// +kubebuilder:default={}
	// +optional
	Spec IntentMapperSpec `json:"spec,omitempty"`

	// status reports what the operator deployed.
	// +optional
	Status IntentMapperStatus `json:"status,omitempty"`
}

// IntentMapperList is a list of IntentMapper.
// +kubebuilder:object:root=true
type IntentMapperList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IntentMapper `json:"items"`
}
