// Package declared speaks Otterize's ClientIntents: it models observed calls as the
// targets a ClientIntents declares, writes and reads every version Otterize serves,
// and compares what was observed with what is declared.
package declared

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// API versions of ClientIntents, oldest first.
const (
	Group    = "k8s.otterize.com"
	V1alpha2 = Group + "/v1alpha2"
	V1alpha3 = Group + "/v1alpha3"
	V1beta1  = Group + "/v1beta1"
	V2alpha1 = Group + "/v2alpha1"
	V2beta1  = Group + "/v2beta1"
	Kind     = "ClientIntents"
	// serviceKind marks a v1 call, or a v2 kubernetes target, that names a Service.
	serviceKind = "Service"
)

// Readable lists the versions Read accepts; Writable those Write produces
// (v1alpha2 has no internet or Service calls, so nothing is written in it).
var (
	Readable = []string{V1alpha2, V1alpha3, V1beta1, V2alpha1, V2beta1}
	Writable = []string{V1alpha3, V1beta1, V2alpha1, V2beta1}
)

// V1Intents is a ClientIntents in v1alpha3 or v1beta1: a service and its calls.
type V1Intents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              V1Spec `json:"spec"`
	Status            any    `json:"status,omitempty"`
}

// V1Spec names the client and its calls.
type V1Spec struct {
	Service V1Service `json:"service"`
	Calls   []V1Call  `json:"calls"`
}

// V1Service is the client.
type V1Service struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// V1Call is one server called. Kind "Service" makes Name a Kubernetes Service.
type V1Call struct {
	Name          string         `json:"name,omitempty"`
	Kind          string         `json:"kind,omitempty"`
	Type          string         `json:"type,omitempty"`
	HTTPResources []HTTPResource `json:"HTTPResources,omitempty"`
	KafkaTopics   []KafkaTopic   `json:"kafkaTopics,omitempty"`
	Internet      *Internet      `json:"internet,omitempty"`
	// Targets intent-mapper does not observe; kept so that reading is strict.
	DatabaseResources   any `json:"databaseResources,omitempty"`
	AWSActions          any `json:"awsActions,omitempty"`
	GCPPermissions      any `json:"gcpPermissions,omitempty"`
	AzureRoles          any `json:"azureRoles,omitempty"`
	AzureActions        any `json:"azureActions,omitempty"`
	AzureDataActions    any `json:"azureDataActions,omitempty"`
	AzureKeyVaultPolicy any `json:"azureKeyVaultPolicy,omitempty"`
}

// V1alpha2Intents is a ClientIntents in v1alpha2, which only reads.
type V1alpha2Intents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Service V1Service `json:"service"`
		Calls   []struct {
			Name              string         `json:"name"`
			Type              string         `json:"type,omitempty"`
			Resources         []HTTPResource `json:"resources,omitempty"`
			Topics            []KafkaTopic   `json:"topics,omitempty"`
			DatabaseResources any            `json:"databaseResources,omitempty"`
		} `json:"calls"`
	} `json:"spec"`
	Status any `json:"status,omitempty"`
}

// V2Intents is a ClientIntents in v2alpha1 or v2beta1: a workload and its targets.
type V2Intents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              V2Spec `json:"spec"`
	Status            any    `json:"status,omitempty"`
}

// V2Spec names the client workload and its targets.
type V2Spec struct {
	Workload Workload   `json:"workload"`
	Targets  []V2Target `json:"targets"`
}

// Workload names a workload.
type Workload struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// V2Target is one thing called; exactly one field is set.
type V2Target struct {
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
	Service    *ServiceTarget    `json:"service,omitempty"`
	Kafka      *KafkaTarget      `json:"kafka,omitempty"`
	Internet   *Internet         `json:"internet,omitempty"`
	// Targets intent-mapper does not observe; kept so that reading is strict.
	SQL   any `json:"sql,omitempty"`
	AWS   any `json:"aws,omitempty"`
	GCP   any `json:"gcp,omitempty"`
	Azure any `json:"azure,omitempty"`
}

// KubernetesTarget is a workload, NAME or NAME.NAMESPACE.
type KubernetesTarget struct {
	Name string         `json:"name"`
	Kind string         `json:"kind,omitempty"`
	HTTP []HTTPResource `json:"http,omitempty"`
}

// ServiceTarget is a Kubernetes Service, NAME or NAME.NAMESPACE.
type ServiceTarget struct {
	Name string         `json:"name"`
	HTTP []HTTPResource `json:"http,omitempty"`
}

// KafkaTarget is a Kafka server and the topics used on it.
type KafkaTarget struct {
	Name   string       `json:"name"`
	Topics []KafkaTopic `json:"topics,omitempty"`
}

// HTTPResource is a path and the methods used on it.
type HTTPResource struct {
	Path    string   `json:"path"`
	Methods []string `json:"methods"`
}

// KafkaTopic is a topic and the operations used on it.
type KafkaTopic struct {
	Name       string   `json:"name"`
	Operations []string `json:"operations"`
}

// Internet is a destination outside the cluster.
type Internet struct {
	Domains []string `json:"domains,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	Ports   []int32  `json:"ports,omitempty"`
}

// serverRef writes a server as ClientIntents do: NAME in the client's namespace,
// NAME.NAMESPACE elsewhere.
func serverRef(name, namespace, clientNamespace string) string {
	if namespace == "" || namespace == clientNamespace {
		return name
	}
	return name + "." + namespace
}

// parseServerRef reads NAME or NAME.NAMESPACE; Otterize forbids a second dot.
func parseServerRef(ref, clientNamespace string) (name, namespace string, err error) {
	switch strings.Count(ref, ".") {
	case 0:
		return ref, clientNamespace, nil
	case 1:
		name, namespace, _ = strings.Cut(ref, ".")
		return name, namespace, nil
	}
	return "", "", fmt.Errorf("server %q: a name holds at most one '.' (NAME.NAMESPACE)", ref)
}

// checkVersion accepts the versions Write produces.
func checkVersion(v string) error {
	for _, w := range Writable {
		if v == w {
			return nil
		}
	}
	return fmt.Errorf("api version %q: use one of %s", v, strings.Join(Writable, ", "))
}
