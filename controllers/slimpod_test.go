package controllers

import (
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// realisticPod is a pod as Deployments write them: three containers (app, sidecar,
// exporter) with env, mounts, probes and resources, a few volumes and a last-applied
// annotation.
func realisticPod() *corev1.Pod {
	container := func(name string, port int32) corev1.Container {
		c := corev1.Container{
			Name: name, Image: "registry.example/shop/" + name + ":1.4.2",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(port)}}, PeriodSeconds: 5},
			LivenessProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/live", Port: intstr.FromInt32(port)}}, PeriodSeconds: 10},
			SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(true)},
		}
		for i := range 12 {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", i), Value: fmt.Sprintf("value-of-setting-%d-for-%s", i, name)})
		}
		for _, v := range []string{"config", "tls", "cache", "kube-api-access"} {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v, MountPath: "/etc/" + name + "/" + v, ReadOnly: true})
		}
		return c
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "checkout-7d9f8b6c5d-x2k4q", Namespace: "shop", UID: "5f0c7e2a-1b1d-4c55-9f7e-2f3c1a9b8d00",
			Labels:          map[string]string{"app": "checkout", "pod-template-hash": "7d9f8b6c5d"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z", "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d", UID: "r1", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-a", ServiceAccountName: "checkout",
			Containers: []corev1.Container{container("checkout", 8080), container("proxy", 15020), container("exporter", 9100)},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "checkout-tls"}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}, {IP: "fd00::7"}},
			HostIP:     "192.0.2.10",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

// TestSlimPodKeepsWhatTheManagerReads: every field the resolver, the Kafka follower and
// the deployer read survives, and the cached pod is a fraction of the real one.
func TestSlimPodKeepsWhatTheManagerReads(t *testing.T) {
	full := realisticPod()
	out, err := slimPod(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	kept := []struct {
		name      string
		got, want any
	}{
		{"name", slim.Name, full.Name}, {"namespace", slim.Namespace, full.Namespace}, {"uid", slim.UID, full.UID},
		{"labels", slim.Labels, full.Labels}, {"owners", slim.OwnerReferences, full.OwnerReferences},
		{"created", slim.CreationTimestamp, full.CreationTimestamp},
		{"node", slim.Spec.NodeName, full.Spec.NodeName}, {"host network", slim.Spec.HostNetwork, full.Spec.HostNetwork},
		{"service account", slim.Spec.ServiceAccountName, full.Spec.ServiceAccountName},
		{"phase", slim.Status.Phase, full.Status.Phase}, {"pod IP", slim.Status.PodIP, full.Status.PodIP},
		{"pod IPs", slim.Status.PodIPs, full.Status.PodIPs}, {"host IP", slim.Status.HostIP, full.Status.HostIP},
	}
	for _, k := range kept {
		if !equality.Semantic.DeepEqual(k.got, k.want) {
			t.Errorf("%s: got %v, want %v", k.name, k.got, k.want)
		}
	}
	if len(slim.Spec.Containers) != 0 {
		t.Errorf("a pod with an IP of its own keeps %d containers", len(slim.Spec.Containers))
	}
	if len(slim.ManagedFields) != 0 || len(slim.Annotations) != 0 || len(slim.Spec.Volumes) != 0 {
		t.Errorf("managedFields, annotations or volumes kept")
	}
	fullJSON, _ := json.Marshal(full)
	slimJSON, _ := json.Marshal(slim)
	if len(slimJSON)*3 > len(fullJSON) {
		t.Errorf("slim pod is %d bytes of %d: want under a third", len(slimJSON), len(fullJSON))
	}
	t.Logf("pod JSON %d bytes, cached %d bytes", len(fullJSON), len(slimJSON))
}

// A host-network pod shares the node's IP: its ports tell which pod serves a port, so
// they stay, and nothing else of its containers.
func TestSlimPodKeepsAHostNetworkPodsPorts(t *testing.T) {
	full := realisticPod()
	full.Spec.HostNetwork = true
	out, err := slimPod(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	if got, want := podPortsOf(slim), podPortsOf(full); !equality.Semantic.DeepEqual(got, want) || len(want) != 3 {
		t.Errorf("ports: got %v, want %v", got, want)
	}
	for _, c := range slim.Spec.Containers {
		if c.Image != "" || len(c.Env) != 0 || len(c.VolumeMounts) != 0 || c.ReadinessProbe != nil {
			t.Errorf("container %s keeps more than its ports", c.Name)
		}
	}
}

func podPortsOf(p *corev1.Pod) []int32 {
	var out []int32
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			out = append(out, port.ContainerPort)
		}
	}
	return out
}

// TestSlimPodPassesTombstones: a deleted object the informer only knows as a tombstone
// is not a pod and passes through untouched.
func TestSlimPodPassesTombstones(t *testing.T) {
	in := "not a pod"
	out, err := slimPod(in)
	if err != nil || out != in {
		t.Fatalf("got %v, %v", out, err)
	}
}
