package cluster

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// TestManifests checks what the tier stages without a cluster: every pod pulls nothing,
// sidecars carry Istio's label and name workloads as Istio does, labels reach the pods.
func TestManifests(t *testing.T) {
	s, err := scenario.Load("scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]corev1.PodTemplateSpec{}
	services := map[string]bool{}
	for _, obj := range manifests(s, stageOptions{Image: appImage, Every: "2s"}) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			pods[o.Name] = o.Spec.Template
		case *appsv1.StatefulSet:
			pods[o.Name] = o.Spec.Template
		case *appsv1.DaemonSet:
			pods[o.Name] = o.Spec.Template
		case *batchv1.Job:
			pods[o.Name] = o.Spec.Template
		case *batchv1.CronJob:
			pods[o.Name] = o.Spec.JobTemplate.Spec.Template
		case *corev1.Pod:
			pods[o.Name] = corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}
		case *corev1.Service:
			services[o.Name] = true
		}
	}
	if len(pods) != len(s.Workloads) {
		t.Fatalf("%d workloads staged, want %d", len(pods), len(s.Workloads))
	}
	for _, w := range s.Workloads {
		p := pods[w.Name]
		for _, c := range p.Spec.Containers {
			if c.ImagePullPolicy != corev1.PullNever || c.Image != appImage {
				t.Errorf("%s/%s: image %s, pull %s: nothing may be pulled", w.Name, c.Name, c.Image, c.ImagePullPolicy)
			}
		}
		if got := p.Labels[scenario.SidecarLabel] == "istio"; got != w.Sidecar || (len(p.Spec.Containers) == 2) != w.Sidecar {
			t.Errorf("%s: sidecar %v, but label %v and %d containers", w.Name, w.Sidecar, got, len(p.Spec.Containers))
		}
		if w.Sidecar && envOf(p.Spec.Containers[1], "WORKLOAD") != w.Name {
			t.Errorf("%s: the sidecar names its workload %q", w.Name, envOf(p.Spec.Containers[1], "WORKLOAD"))
		}
		if services[w.Name] != (w.Port > 0) {
			t.Errorf("%s: port %d but Service %v", w.Name, w.Port, services[w.Name])
		}
		for k, v := range w.Labels {
			if p.Labels[k] != v {
				t.Errorf("%s: pod label %s=%q, want %q", w.Name, k, p.Labels[k], v)
			}
		}
		short := w.Kind == "Job" || w.Kind == "CronJob"
		if (envOf(p.Spec.Containers[0], "ROUNDS") != "") != short {
			t.Errorf("%s (%s): ROUNDS %q", w.Name, w.Kind, envOf(p.Spec.Containers[0], "ROUNDS"))
		}
	}
	if pods["toolbox"].Name != "toolbox" {
		t.Errorf("the bare pod is named %q: Istio names its workload by the pod's name", pods["toolbox"].Name)
	}
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
