package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// slimPod keeps of a cached Pod only what the manager reads: identity, labels and owners
// (workload and override label), node, host network, ServiceAccount, phase and IPs, and
// for a host-network pod its containers' ports (they tell which of the pods sharing the
// node's IP serves a port). Containers, env, volumes, probes, annotations and
// managedFields make a real pod several times larger and are never read from the cache:
// at 15,000 pods the containers alone were a fifth of the manager's heap. What reads
// containers (the manager's own image, a Kafka broker's container) reads the API server.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone passes as it is
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, Generation: pod.Generation,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
			Labels: pod.Labels, OwnerReferences: pod.OwnerReferences,
		},
		Spec: corev1.PodSpec{
			NodeName: pod.Spec.NodeName, HostNetwork: pod.Spec.HostNetwork,
			ServiceAccountName: pod.Spec.ServiceAccountName,
			Containers:         hostPorts(pod),
		},
		Status: corev1.PodStatus{
			Phase: pod.Status.Phase, PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs,
			HostIP: pod.Status.HostIP, HostIPs: pod.Status.HostIPs, StartTime: pod.Status.StartTime,
		},
	}, nil
}

// hostPorts keeps a host-network pod's container ports, in one container.
func hostPorts(pod *corev1.Pod) []corev1.Container {
	if !pod.Spec.HostNetwork {
		return nil
	}
	var ports []corev1.ContainerPort
	for _, c := range pod.Spec.Containers {
		ports = append(ports, c.Ports...)
	}
	if len(ports) == 0 {
		return nil
	}
	return []corev1.Container{{Name: "ports", Ports: ports}}
}
