// Package declared speaks Otterize's ClientIntents: it exports DiscoveredIntents as
// ClientIntents (v1alpha3 or v2beta1), reads ClientIntents back, and compares what
// was observed with what is declared.
package declared

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/intent-mapper/intent-mapper/kafka/operation"
)

// API versions of ClientIntents.
const (
	Group    = "k8s.otterize.com"
	V1alpha3 = Group + "/v1alpha3"
	V2beta1  = Group + "/v2beta1"
	Kind     = "ClientIntents"
)

// V1alpha3Intents is a ClientIntents in k8s.otterize.com/v1alpha3.
type V1alpha3Intents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              V1alpha3Spec `json:"spec"`
}

// V1alpha3Spec names the client and its calls.
type V1alpha3Spec struct {
	Service V1alpha3Service `json:"service"`
	Calls   []V1alpha3Call  `json:"calls"`
}

// V1alpha3Service is the client.
type V1alpha3Service struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// V1alpha3Call is one server called.
type V1alpha3Call struct {
	Name          string         `json:"name,omitempty"`
	Type          string         `json:"type,omitempty"`
	HTTPResources []HTTPResource `json:"HTTPResources,omitempty"`
	KafkaTopics   []KafkaTopic   `json:"kafkaTopics,omitempty"`
	Internet      *Internet      `json:"internet,omitempty"`
}

// V2beta1Intents is a ClientIntents in k8s.otterize.com/v2beta1.
type V2beta1Intents struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              V2beta1Spec `json:"spec"`
}

// V2beta1Spec names the client workload and its targets.
type V2beta1Spec struct {
	Workload Workload `json:"workload"`
	Targets  []Target `json:"targets"`
}

// Workload names a workload.
type Workload struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// Target is one thing called; exactly one field is set.
type Target struct {
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
	Service    *ServiceTarget    `json:"service,omitempty"`
	Kafka      *KafkaTarget      `json:"kafka,omitempty"`
	Internet   *Internet         `json:"internet,omitempty"`
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

// parseServerRef reads NAME or NAME.NAMESPACE.
func parseServerRef(ref, clientNamespace string) (name, namespace string) {
	if name, ns, ok := strings.Cut(ref, "."); ok {
		return name, ns
	}
	return ref, clientNamespace
}

// kafkaOperation maps an operation as authorizer logs name it to ClientIntents'.
func kafkaOperation(op string) string { return operation.Otterize(op) }

func kafkaOperations(ops []string) []string {
	var out []string
	for _, op := range ops {
		if mapped := kafkaOperation(op); mapped != "" && !slices.Contains(out, mapped) {
			out = append(out, mapped)
		}
	}
	slices.Sort(out)
	return out
}

// checkVersion accepts the two versions export writes.
func checkVersion(v string) error {
	if v != V1alpha3 && v != V2beta1 {
		return fmt.Errorf("api version %q: use %s or %s", v, V1alpha3, V2beta1)
	}
	return nil
}
