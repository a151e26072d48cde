package kafka

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// sidecars are containers that meshes and monitoring put beside a broker.
var sidecars = []string{"istio-proxy", "linkerd-proxy", "envoy", "kafka-exporter", "jmx-exporter", "metrics-exporter", "prometheus-jmx-exporter", "tls-sidecar"}

// brokerContainer picks the container whose log holds the authorizer's lines: the one
// named, else the only one, else one named kafka or broker, else the only one that is
// not a known sidecar.
func brokerContainer(pod *corev1.Pod, named string) (string, error) {
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	switch {
	case named != "":
		if !slices.Contains(names, named) {
			return "", fmt.Errorf("pod %s/%s has no container %q (it has %v)", pod.Namespace, pod.Name, named, names)
		}
		return named, nil
	case len(names) == 1:
		return names[0], nil
	}
	for _, n := range []string{"kafka", "broker"} {
		if slices.Contains(names, n) {
			return n, nil
		}
	}
	var rest []string
	for _, n := range names {
		if !slices.Contains(sidecars, n) {
			rest = append(rest, n)
		}
	}
	if len(rest) == 1 {
		return rest[0], nil
	}
	return "", fmt.Errorf("pod %s/%s has containers %v: name the broker's in spec.kafka's container", pod.Namespace, pod.Name, names)
}
