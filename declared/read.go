package declared

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Read reads a ClientIntents of any version Otterize serves. Unknown fields are an
// error (a typo must not declare nothing); targets intent-mapper cannot observe
// (databases, clouds) are skipped. An object without a namespace is in namespace.
func Read(o *unstructured.Unstructured, namespace string) (*Intent, error) {
	return read(o, namespace, true)
}

// read reads strictly, or not: what an API server stored has passed its schema, and
// fields a newer Otterize adds must not blind the operator.
func read(o *unstructured.Unstructured, namespace string, strictly bool) (*Intent, error) {
	if ns := o.GetNamespace(); ns != "" {
		namespace = ns
	}
	raw, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	strict := func(into any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if strictly {
			dec.DisallowUnknownFields()
		}
		if err := dec.Decode(into); err != nil {
			return fmt.Errorf("%s: %w", o.GetAPIVersion(), err)
		}
		return nil
	}
	in := &Intent{Namespace: namespace}
	switch o.GetAPIVersion() {
	case V1alpha2:
		ci := &V1alpha2Intents{}
		if err := strict(ci); err != nil {
			return nil, err
		}
		in.Workload = Workload(ci.Spec.Service)
		for _, c := range ci.Spec.Calls {
			if c.Type == "database" {
				continue
			}
			v1 := V1Call{Name: c.Name, Type: c.Type, HTTPResources: c.Resources, KafkaTopics: c.Topics}
			if err := in.addV1(v1); err != nil {
				return nil, err
			}
		}
	case V1alpha3, V1beta1:
		ci := &V1Intents{}
		if err := strict(ci); err != nil {
			return nil, err
		}
		in.Workload = Workload(ci.Spec.Service)
		for _, c := range ci.Spec.Calls {
			if err := in.addV1(c); err != nil {
				return nil, err
			}
		}
	case V2alpha1, V2beta1:
		ci := &V2Intents{}
		if err := strict(ci); err != nil {
			return nil, err
		}
		in.Workload = ci.Spec.Workload
		for _, t := range ci.Spec.Targets {
			if err := in.addV2(t); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("apiVersion %q is not a ClientIntents version (%s)", o.GetAPIVersion(), strings.Join(Readable, ", "))
	}
	if in.Workload.Name == "" {
		return nil, fmt.Errorf("the client has no name")
	}
	return in, nil
}

func (in *Intent) addV1(c V1Call) error {
	switch c.Type {
	case "internet":
		if c.Internet == nil {
			return fmt.Errorf("an internet call without internet")
		}
		in.Targets = append(in.Targets, Target{Type: TargetInternet, Internet: c.Internet})
		return nil
	case "database", "aws", "gcp", "azure":
		return nil
	}
	t := Target{Type: TargetKubernetes, HTTP: c.HTTPResources}
	switch {
	case c.Type == "kafka":
		t.Type, t.Topics = TargetKafka, c.KafkaTopics
	case c.Kind == serviceKind:
		t.Type = TargetService
	}
	return in.addServer(t, c.Name)
}

func (in *Intent) addV2(t V2Target) error {
	switch {
	case t.Kubernetes != nil && t.Kubernetes.Kind == serviceKind:
		return in.addServer(Target{Type: TargetService, HTTP: t.Kubernetes.HTTP}, t.Kubernetes.Name)
	case t.Kubernetes != nil:
		return in.addServer(Target{Type: TargetKubernetes, Kind: t.Kubernetes.Kind, HTTP: t.Kubernetes.HTTP}, t.Kubernetes.Name)
	case t.Service != nil:
		return in.addServer(Target{Type: TargetService, HTTP: t.Service.HTTP}, t.Service.Name)
	case t.Kafka != nil:
		return in.addServer(Target{Type: TargetKafka, Topics: t.Kafka.Topics}, t.Kafka.Name)
	case t.Internet != nil:
		in.Targets = append(in.Targets, Target{Type: TargetInternet, Internet: t.Internet})
	}
	return nil
}

func (in *Intent) addServer(t Target, ref string) error {
	if ref == "" {
		return fmt.Errorf("a %s target without a name", t.Type)
	}
	name, ns, err := parseServerRef(ref, in.Namespace)
	if err != nil {
		return err
	}
	t.Name, t.Namespace = name, ns
	in.Targets = append(in.Targets, t)
	return nil
}
