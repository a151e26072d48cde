// Package cluster is the cluster tier: intent-mapper installed as users install it into
// the real one-node cluster of hack/cluster, mapping real pods' traffic.
package cluster

import (
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

const (
	// appLabel selects a workload's pods, as its Service and controller do.
	appLabel = "app"
	kindJob  = "Job"
)

// Ports of the scenario's sidecars, as Istio's: the app names the sidecar as its HTTP
// proxy, and behind an inbound sidecar the app listens here on loopback.
const (
	sidecarProxy = "127.0.0.1:15001"
	appBehind    = 15080
	sidecarStats = 15020
)

// stageOptions say how the scenario's pods run.
type stageOptions struct {
	Image string // the scenario app's image, imported, never pulled
	Every string // time between two rounds of calls
}

// manifests are the scenario's objects: its namespaces, a workload of the given kind per
// workload, and a ClusterIP Service for each workload that serves.
func manifests(s *scenario.Scenario, o stageOptions) []client.Object {
	var out []client.Object
	seen := map[string]bool{}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if !seen[w.Namespace] {
			seen[w.Namespace] = true
			out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}})
		}
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		out = append(out, workload(s, w, o))
		if w.Port > 0 {
			out = append(out, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{appLabel: w.Name},
					Ports:    []corev1.ServicePort{{Name: "main", Port: int32(w.Port)}},
				},
			})
		}
	}
	return out
}

func workload(s *scenario.Scenario, w *scenario.Workload, o stageOptions) client.Object {
	labels := map[string]string{appLabel: w.Name}
	podLabels := map[string]string{appLabel: w.Name}
	for k, v := range w.Labels {
		podLabels[k] = v
	}
	if w.Sidecar {
		podLabels[scenario.SidecarLabel] = "istio"
	}
	meta := metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: labels}
	spec := podSpec(s, w, o)
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: spec}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	switch w.Kind {
	case "StatefulSet":
		return &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{ServiceName: w.Name, Selector: selector, Template: template}}
	case "DaemonSet":
		return &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: selector, Template: template}}
	case kindJob, "CronJob":
		template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		job := batchv1.JobSpec{Template: template, BackoffLimit: ptr.To[int32](2), TTLSecondsAfterFinished: ptr.To[int32](600)}
		if w.Kind == kindJob {
			return &batchv1.Job{ObjectMeta: meta, Spec: job}
		}
		return &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: job},
		}}
	case "Pod":
		meta.Labels = podLabels // a bare pod: Istio names its workload by the pod's name
		return &corev1.Pod{ObjectMeta: meta, Spec: spec}
	default:
		return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: selector, Template: template}}
	}
}

// callSpec is the app's CALLS entry (test/cluster/app).
type callSpec struct {
	Host string             `json:"host"`
	Port int                `json:"port"`
	HTTP []scenario.Request `json:"http,omitempty"`
}

func podSpec(s *scenario.Scenario, w *scenario.Workload, o stageOptions) corev1.PodSpec {
	var calls []callSpec
	for _, c := range s.Calls {
		if s.Workload(c.From) == w {
			calls = append(calls, callSpec{Host: c.DNS, Port: c.Port, HTTP: c.HTTP})
		}
	}
	raw, _ := json.Marshal(calls) // plain structs: cannot fail
	env := []corev1.EnvVar{{Name: "CALLS", Value: string(raw)}, {Name: "EVERY", Value: o.Every}}
	if w.Kind == kindJob || w.Kind == "CronJob" {
		env = append(env, corev1.EnvVar{Name: "ROUNDS", Value: "10"}) // short-lived
	}
	app := container("app", o.Image, "run", env)
	containers := []corev1.Container{app}
	if w.Port > 0 {
		listen := ":" + strconv.Itoa(w.Port)
		if w.Sidecar {
			listen = fmt.Sprintf("127.0.0.1:%d", appBehind)
		}
		containers[0].Env = append(containers[0].Env, corev1.EnvVar{Name: "LISTEN", Value: listen})
		containers[0].Ports = []corev1.ContainerPort{{Name: "main", ContainerPort: int32(w.Port)}}
	}
	if w.Sidecar {
		containers[0].Env = append(containers[0].Env, corev1.EnvVar{Name: "PROXY", Value: sidecarProxy})
		// Istio's workload name: the top controller's, the pod's own for a bare pod.
		senv := []corev1.EnvVar{{Name: "WORKLOAD", Value: w.Name}, {Name: "NAMESPACE", Value: w.Namespace}}
		if w.Port > 0 {
			senv = append(senv, corev1.EnvVar{Name: "INBOUND", Value: fmt.Sprintf("%d:%d", w.Port, appBehind)})
		}
		sc := container("istio-proxy", o.Image, "sidecar", senv)
		sc.Ports = []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: sidecarStats}}
		containers = append(containers, sc)
	}
	return corev1.PodSpec{
		Containers:                    containers,
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		EnableServiceLinks:            ptr.To(false),
	}
}

func container(name, image, role string, env []corev1.EnvVar) corev1.Container {
	return corev1.Container{
		Name: name, Image: image, ImagePullPolicy: corev1.PullNever, Args: []string{role}, Env: env,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: ptr.To[int64](65532), RunAsNonRoot: ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}
