// Package resolve turns the IPs and names in agent reports into workloads: pods by IP
// (with tombstones, so a late report is blamed on the pod that had the IP then),
// Services by ClusterIP and DNS name, and owner references up to the top controller.
package resolve

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/resolved"
)

// ServiceNameLabel on a pod overrides the name of its workload.
const ServiceNameLabel = "intentmapper.io/service-name"

// Owner kinds whose own owners are looked up.
const (
	kindReplicaSet = "ReplicaSet"
	kindJob        = "Job"
)

// Workload identifies a workload; see package resolved.
type Workload = resolved.Workload

// OwnerLookup returns the controller owner (kind and name) of a namespaced object of
// the given kind, as recorded in its metadata.
type OwnerLookup interface {
	ControllerOf(ctx context.Context, kind, namespace, name string) (ownerKind, ownerName string, found bool)
}

// workloadOf walks a pod's owner references to its top controller. Kinds outside the
// known chain (a custom controller owning a ReplicaSet, say) stop the walk at the last
// known kind rather than guess.
func workloadOf(ctx context.Context, owners OwnerLookup, pod *corev1.Pod) (w Workload, settled bool) {
	w = Workload{Namespace: pod.Namespace, Name: pod.Name, Kind: discoveryv1alpha1.KindPod}
	settled = true
	if ref := controllerRef(pod); ref != nil {
		switch ref.Kind {
		case kindReplicaSet:
			w.Name, w.Kind, settled = replicaSetOwner(ctx, owners, pod, ref.Name)
		case kindJob:
			w.Name, w.Kind, settled = jobOwner(ctx, owners, pod.Namespace, ref.Name)
		case "StatefulSet", "DaemonSet":
			w.Name, w.Kind = ref.Name, discoveryv1alpha1.WorkloadKind(ref.Kind)
		}
	}
	if name := pod.Labels[ServiceNameLabel]; name != "" {
		w.Name = name
	}
	return w, settled
}

func controllerRef(pod *corev1.Pod) *struct{ Kind, Name string } {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return &struct{ Kind, Name string }{ref.Kind, ref.Name}
		}
	}
	return nil
}

// replicaSetOwner finds the Deployment behind a ReplicaSet. When the ReplicaSet is not
// known (yet, or any more), the pod-template-hash suffix that Deployments give their
// ReplicaSets names the Deployment; the answer is then not settled and is asked again.
func replicaSetOwner(ctx context.Context, owners OwnerLookup, pod *corev1.Pod, rs string) (string, discoveryv1alpha1.WorkloadKind, bool) {
	kind, name, found := owners.ControllerOf(ctx, kindReplicaSet, pod.Namespace, rs)
	switch {
	case found && kind == "Deployment":
		return name, discoveryv1alpha1.KindDeployment, true
	case found:
		return rs, discoveryv1alpha1.KindReplicaSet, true
	}
	if hash := pod.Labels["pod-template-hash"]; hash != "" {
		if name, ok := strings.CutSuffix(rs, "-"+hash); ok {
			return name, discoveryv1alpha1.KindDeployment, false
		}
	}
	return rs, discoveryv1alpha1.KindReplicaSet, false
}

// jobOwner finds the CronJob behind a Job.
func jobOwner(ctx context.Context, owners OwnerLookup, namespace, job string) (string, discoveryv1alpha1.WorkloadKind, bool) {
	kind, name, found := owners.ControllerOf(ctx, kindJob, namespace, job)
	if found && kind == "CronJob" {
		return name, discoveryv1alpha1.KindCronJob, true
	}
	return job, discoveryv1alpha1.KindJob, found
}
