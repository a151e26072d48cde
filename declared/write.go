package declared

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Export writes a DiscoveredIntents as a ClientIntents of the given API version,
// leaving out what FromDiscovered reports it cannot express; nil when the client
// itself cannot have one.
func Export(di *discoveryv1alpha1.DiscoveredIntents, apiVersion string) (any, error) {
	in, _ := FromDiscovered(di)
	if in == nil {
		return nil, checkVersion(apiVersion)
	}
	return Write(in, apiVersion)
}

// Write writes an Intent as a ClientIntents of the given API version, named and
// namespaced as the client, ready for kubectl apply.
func Write(in *Intent, apiVersion string) (any, error) {
	if err := checkVersion(apiVersion); err != nil {
		return nil, err
	}
	name := in.Name
	if name == "" {
		name = in.Workload.Name
	}
	meta := metav1.ObjectMeta{Name: name, Namespace: in.Namespace}
	tm := metav1.TypeMeta{APIVersion: apiVersion, Kind: Kind}
	if apiVersion == V1alpha3 || apiVersion == V1beta1 {
		out := &V1Intents{TypeMeta: tm, ObjectMeta: meta, Spec: V1Spec{Service: V1Service(in.Workload), Calls: []V1Call{}}}
		for _, t := range in.Targets {
			out.Spec.Calls = append(out.Spec.Calls, v1Call(t, in.Namespace))
		}
		return out, nil
	}
	out := &V2Intents{TypeMeta: tm, ObjectMeta: meta, Spec: V2Spec{Workload: in.Workload, Targets: []V2Target{}}}
	for _, t := range in.Targets {
		out.Spec.Targets = append(out.Spec.Targets, v2Target(t, in.Namespace))
	}
	return out, nil
}

func v1Call(t Target, clientNamespace string) V1Call {
	name := serverRef(t.Name, t.Namespace, clientNamespace)
	var call V1Call
	switch t.Type {
	case TargetInternet:
		return V1Call{Type: "internet", Internet: t.Internet}
	case TargetKafka:
		return V1Call{Name: name, Type: "kafka", KafkaTopics: t.Topics}
	case TargetService:
		call = V1Call{Name: name, Kind: serviceKind, HTTPResources: t.HTTP}
	default:
		call = V1Call{Name: name, HTTPResources: t.HTTP}
	}
	if len(t.HTTP) > 0 {
		call.Type = "http"
	}
	return call
}

func v2Target(t Target, clientNamespace string) V2Target {
	name := serverRef(t.Name, t.Namespace, clientNamespace)
	switch t.Type {
	case TargetInternet:
		return V2Target{Internet: t.Internet}
	case TargetKafka:
		return V2Target{Kafka: &KafkaTarget{Name: name, Topics: t.Topics}}
	case TargetService:
		return V2Target{Service: &ServiceTarget{Name: name, HTTP: t.HTTP}}
	}
	return V2Target{Kubernetes: &KubernetesTarget{Name: name, Kind: t.Kind, HTTP: t.HTTP}}
}
