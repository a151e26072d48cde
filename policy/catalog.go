// Package policy turns the observed map (DiscoveredIntents) into NetworkPolicies and Istio
// AuthorizationPolicies, and previews which observed calls a set of policies would deny.
package policy

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// Workload is what policies need of a workload: the labels its pods carry and the ports
// its containers name.
type Workload struct {
	Namespace, Name string
	Kind            string
	Labels          map[string]string
	Ports           []corev1.ContainerPort
	// Unknown is set for a workload not found in the cluster, whose labels are unknown.
	Unknown bool
	// Ambiguous says why the labels cannot select this workload's pods alone; empty when they can.
	Ambiguous string
}

type ref struct{ namespace, name string }

// Catalog holds the workloads, namespaces and Services of the namespaces a map touches.
type Catalog struct {
	workloads  map[ref]*Workload
	namespaces map[string]map[string]string
	services   map[ref][]corev1.ServicePort
}

// NewCatalog returns an empty catalog; Add and AddNamespace fill it.
func NewCatalog() *Catalog {
	return &Catalog{workloads: map[ref]*Workload{}, namespaces: map[string]map[string]string{}, services: map[ref][]corev1.ServicePort{}}
}

// Workload returns the workload namespace/name, or nil.
func (c *Catalog) Workload(namespace, name string) *Workload {
	return c.workloads[ref{namespace, name}]
}

// NamespaceLabels are a namespace's labels; kubernetes.io/metadata.name is always among them.
func (c *Catalog) NamespaceLabels(namespace string) map[string]string {
	if l, ok := c.namespaces[namespace]; ok {
		return l
	}
	return map[string]string{corev1.LabelMetadataName: namespace}
}

// AddNamespace records a namespace's labels.
func (c *Catalog) AddNamespace(name string, l map[string]string) {
	out := map[string]string{corev1.LabelMetadataName: name}
	for k, v := range l {
		out[k] = v
	}
	c.namespaces[name] = out
}

// AddService records a Service's ports, to find the pod port behind a Service port.
func (c *Catalog) AddService(namespace, name string, ports []corev1.ServicePort) {
	c.services[ref{namespace, name}] = ports
}

// Add records a workload under the name the operator gives it: the override label's
// value when its pods carry it. Two controllers under one name keep the labels they share.
func (c *Catalog) Add(namespace, name, kind string, podLabels map[string]string, ports []corev1.ContainerPort) {
	if override := podLabels[resolve.ServiceNameLabel]; override != "" {
		name = override
		podLabels = map[string]string{resolve.ServiceNameLabel: override}
	}
	key := ref{namespace, name}
	if old := c.workloads[key]; old != nil {
		old.Labels = shared(old.Labels, podLabels)
		old.Ports = append(old.Ports, ports...)
		return
	}
	c.workloads[key] = &Workload{Namespace: namespace, Name: name, Kind: kind, Labels: podLabels, Ports: ports}
}

func shared(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if b[k] == v {
			out[k] = v
		}
	}
	return out
}

// Settle marks every workload whose labels also select another workload's pods (or
// every pod of its namespace): a policy for it would cover more than it.
func (c *Catalog) Settle() {
	for _, w := range c.workloads {
		w.Ambiguous = ""
		if len(w.Labels) == 0 {
			w.Ambiguous = "its pods carry no labels"
			continue
		}
		sel := labels.SelectorFromSet(w.Labels)
		var others []string
		for _, o := range c.workloads {
			if o != w && o.Namespace == w.Namespace && sel.Matches(labels.Set(o.Labels)) {
				others = append(others, o.Name)
			}
		}
		if len(others) > 0 {
			slices.Sort(others)
			w.Ambiguous = fmt.Sprintf("labels %s also select %v", sel, others)
		}
	}
}

// LoadCatalog reads the workloads, Services and labels of the given namespaces.
func LoadCatalog(ctx context.Context, r client.Reader, namespaces []string) (*Catalog, error) {
	c := NewCatalog()
	for _, ns := range namespaces {
		if err := c.load(ctx, r, ns); err != nil {
			return nil, err
		}
	}
	c.Settle()
	return c, nil
}

func (c *Catalog) load(ctx context.Context, r client.Reader, ns string) error {
	nsObj := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err == nil {
		c.AddNamespace(ns, nsObj.Labels)
	} else {
		c.AddNamespace(ns, nil)
	}
	in := client.InNamespace(ns)
	var (
		deps  appsv1.DeploymentList
		sts   appsv1.StatefulSetList
		dss   appsv1.DaemonSetList
		rss   appsv1.ReplicaSetList
		jobs  batchv1.JobList
		crons batchv1.CronJobList
		pods  corev1.PodList
		svcs  corev1.ServiceList
	)
	for _, l := range []client.ObjectList{&deps, &sts, &dss, &rss, &jobs, &crons, &pods, &svcs} {
		if err := r.List(ctx, l, in); err != nil {
			return fmt.Errorf("listing %T in %s: %w", l, ns, err)
		}
	}
	for _, d := range deps.Items {
		c.addTemplate(&d.ObjectMeta, "Deployment", &d.Spec.Template)
	}
	for _, s := range sts.Items {
		c.addTemplate(&s.ObjectMeta, "StatefulSet", &s.Spec.Template)
	}
	for _, d := range dss.Items {
		c.addTemplate(&d.ObjectMeta, "DaemonSet", &d.Spec.Template)
	}
	for _, rs := range rss.Items {
		c.addTemplate(&rs.ObjectMeta, "ReplicaSet", &rs.Spec.Template)
	}
	for _, j := range jobs.Items {
		c.addTemplate(&j.ObjectMeta, "Job", &j.Spec.Template)
	}
	for _, cj := range crons.Items {
		c.addTemplate(&cj.ObjectMeta, "CronJob", &cj.Spec.JobTemplate.Spec.Template)
	}
	for _, p := range pods.Items {
		if metav1.GetControllerOf(&p) == nil {
			c.Add(ns, p.Name, "Pod", p.Labels, containerPorts(p.Spec.Containers))
		}
	}
	for _, s := range svcs.Items {
		c.AddService(ns, s.Name, s.Spec.Ports)
	}
	return nil
}

// addTemplate records a top controller; one that another controller owns (a Deployment's
// ReplicaSet, a CronJob's Job) is part of its owner.
func (c *Catalog) addTemplate(meta *metav1.ObjectMeta, kind string, t *corev1.PodTemplateSpec) {
	if metav1.GetControllerOfNoCopy(meta) != nil {
		return
	}
	c.Add(meta.Namespace, meta.Name, kind, withoutRunLabels(t.Labels), containerPorts(t.Spec.Containers))
}

// runLabels are the labels the Job controller gives one run's pods: a policy that
// selected by them would not select the pods of the Job run again under its name.
var runLabels = []string{batchv1.ControllerUidLabel, "controller-uid"}

func withoutRunLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if !slices.Contains(runLabels, k) {
			out[k] = v
		}
	}
	return out
}

func containerPorts(cs []corev1.Container) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, ctr := range cs {
		out = append(out, ctr.Ports...)
	}
	return out
}
