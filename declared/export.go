package declared

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// methods ClientIntents accept; others observed (HEAD, say) cannot be declared.
var methods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"}

func httpResources(paths []discoveryv1alpha1.HTTPPath) []HTTPResource {
	var out []HTTPResource
	for _, p := range paths {
		var ms []string
		for _, m := range p.Methods {
			if slices.Contains(methods, m) {
				ms = append(ms, m)
			}
		}
		if len(ms) > 0 {
			out = append(out, HTTPResource{Path: p.Path, Methods: ms})
		}
	}
	return out
}

func kafkaTopics(topics []discoveryv1alpha1.KafkaTopic) []KafkaTopic {
	var out []KafkaTopic
	for _, t := range topics {
		if ops := kafkaOperations(t.Operations); len(ops) > 0 {
			out = append(out, KafkaTopic{Name: t.Name, Operations: ops})
		}
	}
	return out
}

func internet(c discoveryv1alpha1.Call) *Internet {
	in := &Internet{Ports: c.Ports}
	if c.Internet != nil {
		in.Domains, in.IPs = c.Internet.Domains, c.Internet.IPs
	}
	return in
}

// Export writes a DiscoveredIntents as a ClientIntents of the given API version,
// named and namespaced as the client, ready for kubectl apply.
func Export(di *discoveryv1alpha1.DiscoveredIntents, apiVersion string) (any, error) {
	if err := checkVersion(apiVersion); err != nil {
		return nil, err
	}
	meta := metav1.ObjectMeta{Name: di.Spec.Workload.Name, Namespace: di.Namespace}
	tm := metav1.TypeMeta{APIVersion: apiVersion, Kind: Kind}
	if apiVersion == V1alpha3 {
		out := &V1alpha3Intents{TypeMeta: tm, ObjectMeta: meta, Spec: V1alpha3Spec{
			Service: V1alpha3Service{Name: di.Spec.Workload.Name, Kind: string(di.Spec.Workload.Kind)}, Calls: []V1alpha3Call{},
		}}
		for _, c := range di.Status.Calls {
			out.Spec.Calls = append(out.Spec.Calls, v1alpha3Call(c, di.Namespace))
		}
		return out, nil
	}
	out := &V2beta1Intents{TypeMeta: tm, ObjectMeta: meta, Spec: V2beta1Spec{
		Workload: Workload{Name: di.Spec.Workload.Name, Kind: string(di.Spec.Workload.Kind)}, Targets: []Target{},
	}}
	for _, c := range di.Status.Calls {
		out.Spec.Targets = append(out.Spec.Targets, v2beta1Target(c, di.Namespace))
	}
	return out, nil
}

func v1alpha3Call(c discoveryv1alpha1.Call, clientNamespace string) V1alpha3Call {
	name := serverRef(c.Name, c.Namespace, clientNamespace)
	switch c.Type {
	case discoveryv1alpha1.CallInternet:
		return V1alpha3Call{Type: "internet", Internet: internet(c)}
	case discoveryv1alpha1.CallHTTP:
		return V1alpha3Call{Name: name, Type: "http", HTTPResources: httpResources(c.HTTP)}
	case discoveryv1alpha1.CallKafka:
		return V1alpha3Call{Name: name, Type: "kafka", KafkaTopics: kafkaTopics(c.Kafka)}
	}
	return V1alpha3Call{Name: name}
}

func v2beta1Target(c discoveryv1alpha1.Call, clientNamespace string) Target {
	name := serverRef(c.Name, c.Namespace, clientNamespace)
	switch c.Type {
	case discoveryv1alpha1.CallInternet:
		return Target{Internet: internet(c)}
	case discoveryv1alpha1.CallKafka:
		return Target{Kafka: &KafkaTarget{Name: name, Topics: kafkaTopics(c.Kafka)}}
	}
	return Target{Kubernetes: &KubernetesTarget{Name: name, Kind: string(c.Kind), HTTP: httpResources(c.HTTP)}}
}
