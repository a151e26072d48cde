package scenario

import (
	"context"
	"fmt"
	"net"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SidecarLabel marks pods with an Istio sidecar.
const SidecarLabel = "security.istio.io/tlsMode"

const (
	appsV1         = "apps/v1"
	appLabel       = "app"
	kindReplicaSet = "ReplicaSet"
)

// Stage registers the scenario's workloads in the API server as their controllers and
// the kubelet would: namespace, owner chain, a running pod on node with its IP, and a
// Service for each workload that serves.
func (s *Scenario) Stage(ctx context.Context, c client.Client, node string) error {
	for i := range s.Workloads {
		if err := stageWorkload(ctx, c, &s.Workloads[i], node); err != nil {
			return fmt.Errorf("staging %s: %w", s.Workloads[i].Key(), err)
		}
	}
	return nil
}

func stageWorkload(ctx context.Context, c client.Client, w *Workload, node string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	labels := map[string]string{appLabel: w.Name}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: w.Name, Image: w.Name + ":demo"}}},
	}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: w.Namespace, Labels: labels}
	}
	// Pods are named as their controllers name them, generateName included (Istio
	// reads it); a bare pod has the name its author gave it.
	podName, generateName, podLabels := w.Name, "", map[string]string{appLabel: w.Name}
	var owner client.Object
	var ownerKind, ownerVersion string
	switch w.Kind {
	case kindDeployment:
		d := &appsv1.Deployment{ObjectMeta: meta(w.Name), Spec: appsv1.DeploymentSpec{Selector: selector, Template: template}}
		if err := c.Create(ctx, d); err != nil {
			return err
		}
		rs := &appsv1.ReplicaSet{ObjectMeta: meta(w.Name + "-6d4cf56db6"), Spec: appsv1.ReplicaSetSpec{Selector: selector, Template: template}}
		rs.OwnerReferences = controlledBy(d, kindDeployment, appsV1)
		if err := c.Create(ctx, rs); err != nil {
			return err
		}
		owner, ownerKind, ownerVersion = rs, kindReplicaSet, appsV1
		generateName, podLabels["pod-template-hash"] = rs.Name+"-", "6d4cf56db6"
		podName = generateName + "x4m2q"
	case kindStatefulSet:
		st := &appsv1.StatefulSet{ObjectMeta: meta(w.Name), Spec: appsv1.StatefulSetSpec{Selector: selector, Template: template}}
		owner, ownerKind, ownerVersion = st, kindStatefulSet, appsV1
		generateName, podName = w.Name+"-", w.Name+"-0"
	case kindDaemonSet:
		ds := &appsv1.DaemonSet{ObjectMeta: meta(w.Name), Spec: appsv1.DaemonSetSpec{Selector: selector, Template: template}}
		owner, ownerKind, ownerVersion = ds, kindDaemonSet, appsV1
		generateName = w.Name + "-"
		podName = generateName + "k8d2f"
	case kindJob, kindCronJob:
		never := template
		never.Spec.RestartPolicy = corev1.RestartPolicyNever
		job := &batchv1.Job{ObjectMeta: meta(w.Name), Spec: batchv1.JobSpec{Template: never}}
		if w.Kind == kindCronJob {
			cj := &batchv1.CronJob{ObjectMeta: meta(w.Name), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: job.Spec}}}
			if err := c.Create(ctx, cj); err != nil {
				return err
			}
			job.Name, job.OwnerReferences = w.Name+"-29390400", controlledBy(cj, kindCronJob, "batch/v1")
		}
		owner, ownerKind, ownerVersion = job, kindJob, "batch/v1"
		generateName = job.Name + "-"
		podName = generateName + "r7n4c"
	}
	if owner != nil && ownerKind != kindReplicaSet {
		if err := c.Create(ctx, owner); err != nil {
			return err
		}
	}
	if w.Sidecar {
		podLabels[SidecarLabel] = "istio"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, GenerateName: generateName, Namespace: w.Namespace, Labels: podLabels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: template.Spec.Containers, RestartPolicy: template.Spec.RestartPolicy},
	}
	if owner != nil {
		pod.OwnerReferences = controlledBy(owner, ownerKind, ownerVersion)
	}
	if w.Port > 0 {
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: int32(w.Port)}}
	}
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	w.istioName, w.istioService, w.app = istioWorkload(pod), istioCanonicalService(pod), pod.Labels[appLabel]
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: w.IP, PodIPs: []corev1.PodIP{{IP: w.IP}}}
	if err := c.Status().Update(ctx, pod); err != nil {
		return err
	}
	if w.Port == 0 {
		return nil
	}
	svc := &corev1.Service{ObjectMeta: meta(w.Name), Spec: corev1.ServiceSpec{
		Selector: map[string]string{appLabel: w.Name},
		Ports:    []corev1.ServicePort{{Port: int32(w.Port)}},
	}}
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("service %s got ClusterIP %q: clients reach Services here on loopback ClusterIPs, so the API server must allocate them from %s", w.Key(), svc.Spec.ClusterIP, ServiceCIDR)
	}
	w.ServiceIP = svc.Spec.ClusterIP
	return nil
}

func controlledBy(owner client.Object, kind, apiVersion string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}}
}
