package scenario

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// cronJobName is a Job name a CronJob made: the CronJob's name and a timestamp.
var cronJobName = regexp.MustCompile(`^(.+)-\d{8,10}$`)

// istioWorkload names a pod's workload as Istio's sidecar injector does for the
// source_workload and destination_workload labels: a pod whose name was generated is
// named after its controller (a ReplicaSet's Deployment, a Job's CronJob when the Job's
// name ends in a timestamp); any other pod, a bare pod above all, by its own name.
func istioWorkload(pod *corev1.Pod) string {
	if pod.GenerateName == "" {
		return pod.Name
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		hash := pod.Labels["pod-template-hash"]
		switch {
		case ref.Kind == kindReplicaSet && hash != "" && strings.HasSuffix(ref.Name, hash):
			return strings.TrimSuffix(ref.Name, "-"+hash)
		case ref.Kind == kindJob:
			if m := cronJobName.FindStringSubmatch(ref.Name); m != nil {
				return m[1]
			}
		}
		return ref.Name
	}
	return pod.Name
}

// istioCanonicalService is Istio's canonical service of a pod: its canonical-name
// label, else app.kubernetes.io/name, else app, else the workload's name.
func istioCanonicalService(pod *corev1.Pod) string {
	for _, l := range []string{"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"} {
		if v := pod.Labels[l]; v != "" {
			return v
		}
	}
	return istioWorkload(pod)
}
