package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagerContainer is the manager's container in its Deployment.
const ManagerContainer = "manager"

// OwnImage is the image the manager's own pod runs, so that agents run the same
// release the user deployed: the container named ManagerContainer, or the pod's only
// container.
func OwnImage(ctx context.Context, reader client.Reader, namespace, pod string) (string, error) {
	p := &corev1.Pod{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: pod}, p); err != nil {
		return "", fmt.Errorf("reading the manager's own pod %s/%s: %w", namespace, pod, err)
	}
	for _, c := range p.Spec.Containers {
		if c.Name == ManagerContainer {
			return c.Image, nil
		}
	}
	if len(p.Spec.Containers) == 1 {
		return p.Spec.Containers[0].Image, nil
	}
	return "", fmt.Errorf("pod %s/%s has no container named %q", namespace, pod, ManagerContainer)
}

// AgentImage picks the agents' image when IntentMapper names none: the one asked for
// explicitly (flag or AGENT_IMAGE), else the manager's own, else fallback.
func AgentImage(ctx context.Context, reader client.Reader, explicit, namespace, pod, fallback string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if pod == "" {
		return fallback, nil
	}
	return OwnImage(ctx, reader, namespace, pod)
}
