package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/intent-mapper/intent-mapper/hack/internal/kustomized"
)

// managerContainer is the container that runs the manager, and whose flags the chart sets.
const managerContainer = "manager"

// chart is what config/ says, sorted into what the chart needs.
type chart struct {
	namespace string                       // config/'s namespace, which becomes the release's
	objects   []*unstructured.Unstructured // templates, in kustomize's order
	crds      []*unstructured.Unstructured
	settings  map[string]any // IntentMapper cluster's spec in config/
	specOf    map[string]any // IntentMapper's spec schema, from its CRD
	manager   map[string]any // the manager container in config/
	metrics   *unstructured.Unstructured
}

func newChart(objs []*unstructured.Unstructured) (*chart, error) {
	c := &chart{}
	for _, ns := range kustomized.ByKind(objs, "Namespace") {
		c.namespace = ns.GetName()
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace": // the release's namespace takes its place
		case "CustomResourceDefinition":
			c.crds = append(c.crds, o)
			if kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind"); kind == kindIntentMapper {
				c.specOf = intentMapperSpecSchema(o)
			}
		case kindIntentMapper:
			c.settings = nested(o.Object, "spec")
			c.objects = append(c.objects, o)
		default:
			if isMetricsService(o) {
				c.metrics = o
			}
			c.objects = append(c.objects, o)
		}
	}
	deployments := kustomized.ByKind(objs, "Deployment")
	if len(deployments) != 1 {
		return nil, fmt.Errorf("config has %d Deployments, want the manager's alone", len(deployments))
	}
	c.manager = findContainer(deployments[0], managerContainer)
	switch {
	case c.manager == nil:
		return nil, fmt.Errorf("the Deployment has no container named %s", managerContainer)
	case c.settings == nil:
		return nil, fmt.Errorf("config has no IntentMapper")
	case c.specOf == nil:
		return nil, fmt.Errorf("config has no IntentMapper CRD")
	case c.namespace == "":
		return nil, fmt.Errorf("config has no Namespace")
	}
	if c.metrics == nil {
		if svc := metricsServiceFor(deployments[0]); svc != nil {
			c.metrics = svc
			c.objects = append(c.objects, svc)
		}
	}
	if c.metrics != nil && len(kustomized.ByKind(objs, "ServiceMonitor")) == 0 {
		c.objects = append(c.objects, serviceMonitorFor(c.metrics))
	}
	return c, nil
}

// files are the generated files of the chart, by path in it.
func (c *chart) files(version string) (map[string]string, error) {
	out := map[string]string{"Chart.yaml": header + chartYAML(version)}
	for _, crd := range c.crds {
		text, err := toYAML(crd.Object)
		if err != nil {
			return nil, err
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		out["crds/"+group+"_"+plural+".yaml"] = header + text
	}
	for _, o := range c.objects {
		text, err := c.template(o)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		out["templates/"+strings.ToLower(o.GetKind())+"-"+o.GetName()+".yaml"] = text
	}
	values, err := c.values()
	if err != nil {
		return nil, err
	}
	out["values.yaml"] = values
	schema, err := json.MarshalIndent(c.schema(), "", "  ")
	if err != nil {
		return nil, err
	}
	out["values.schema.json"] = string(schema) + "\n"
	return out, nil
}

func chartYAML(version string) string {
	return fmt.Sprintf(`apiVersion: v2
name: intent-mapper
description: Maps which workloads call which, from real traffic, into DiscoveredIntents objects.
type: application
version: %s
appVersion: %q
keywords: [network-policy, intents, istio, discovery]
`, version, version)
}

// template turns one object of config/ into a template.
func (c *chart) template(obj *unstructured.Unstructured) (string, error) {
	o := obj.DeepCopy()
	t := newTokens()
	labels := o.GetLabels()
	delete(labels, "app.kubernetes.io/managed-by") // the chart's labels say Helm
	if labels == nil {
		labels = map[string]string{}
	}
	labels[t.Line(func(indent int) string {
		return fmt.Sprintf(`{{- include "intent-mapper.labels" . | nindent %d }}`, indent)
	})] = ""
	o.SetLabels(labels)
	o.Object = replaceNamespace(o.Object, c.namespace, t.Inline("{{ .Release.Namespace }}")).(map[string]any)

	condition := ""
	switch {
	case o.GetKind() == "Deployment":
		if err := templateManager(o, t); err != nil {
			return "", err
		}
	case o.GetKind() == kindIntentMapper:
		o.Object["spec"] = t.Value(func(col int) string {
			return fmt.Sprintf(`{{- include "intent-mapper.intentMapperSpec" . | nindent %d }}`, col+2)
		})
	case o.GetKind() == "ServiceMonitor":
		condition = "and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled"
		setServiceMonitorInterval(o, t)
	case c.metrics != nil && o.GetKind() == kindService && o.GetName() == c.metrics.GetName(),
		isMetricsReader(o):
		condition = ".Values.metrics.enabled"
	}
	text, err := toYAML(o.Object)
	if err != nil {
		return "", err
	}
	if text, err = t.Expand(text); err != nil {
		return "", err
	}
	if condition != "" {
		text = "{{- if " + condition + " }}\n" + text + "{{- end }}\n"
	}
	return header + text, nil
}

// templateManager makes the manager's image, pull policy, resources and flags values.
func templateManager(d *unstructured.Unstructured, t *tokens) error {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for i, raw := range containers {
		c := raw.(map[string]any)
		if c[keyName] != managerContainer {
			continue
		}
		image := t.Inline(`{{ include "intent-mapper.image" . | quote }}`)
		c["image"] = image
		c["imagePullPolicy"] = t.Inline("{{ .Values.image.pullPolicy }}")
		c[keyResources] = t.Value(func(col int) string {
			return fmt.Sprintf("{{- toYaml .Values.manager.resources | nindent %d }}", col+2)
		})
		env, _ := c["env"].([]any)
		c["env"] = append(env, map[string]any{keyName: "AGENT_IMAGE", "value": image})
		args, _ := c["args"].([]any)
		for j, a := range args {
			if s, ok := a.(string); ok && strings.HasPrefix(s, "--metrics-bind-address=") {
				args[j] = t.Inline("{{ if .Values.metrics.enabled }}" + s + "{{ else }}--metrics-bind-address=0{{ end }}")
			}
		}
		c["args"] = append(args, t.Line(managerFlags))
		containers[i] = c
	}
	return unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers")
}

// managerFlags are the flags set from values.manager, each when it is set.
func managerFlags(indent int) string {
	pad := strings.Repeat(" ", indent)
	flags := [][2]string{
		{keyFlushInterval, "--flush-interval={{ . }}"},
		{keyLastSeenStep, "--last-seen-step={{ . }}"},
		{keyRetention, "--retention={{ . }}"},
		{keyMaxPathsPerCall, "--max-paths-per-call={{ . | int }}"},
	}
	var b strings.Builder
	for i, f := range flags {
		if i > 0 {
			b.WriteString("\n" + pad)
		}
		fmt.Fprintf(&b, "{{- with .Values.manager.%s }}\n%s- %s\n%s{{- end }}", f[0], pad, f[1], pad)
	}
	return b.String()
}

// replaceNamespace puts token wherever a string names config/'s namespace.
func replaceNamespace(v any, namespace, token string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, namespace, token)
	case map[string]any:
		for k, e := range x {
			x[k] = replaceNamespace(e, namespace, token)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceNamespace(e, namespace, token)
		}
	}
	return v
}

func findContainer(d *unstructured.Unstructured, name string) map[string]any {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, raw := range containers {
		if c, ok := raw.(map[string]any); ok && c[keyName] == name {
			return c
		}
	}
	return nil
}

// isMetricsService tells the Service that serves the manager's metrics, as kubebuilder names it.
func isMetricsService(o *unstructured.Unstructured) bool {
	return o.GetKind() == kindService && strings.Contains(o.GetName(), keyMetrics)
}

// isMetricsReader tells the ClusterRole that lets callers read the metrics, as kubebuilder
// names it: without metrics, there is nothing for it to grant.
func isMetricsReader(o *unstructured.Unstructured) bool {
	return o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "metrics-reader")
}

// metricsServiceFor makes a Service for the manager's container port named metrics, when
// config/ has none.
func metricsServiceFor(d *unstructured.Unstructured) *unstructured.Unstructured {
	c := findContainer(d, managerContainer)
	ports, _ := c["ports"].([]any)
	for _, raw := range ports {
		p, _ := raw.(map[string]any)
		if p[keyName] != keyMetrics {
			continue
		}
		selector := nested(d.Object, "spec", "selector", "matchLabels")
		labels := map[string]any{"app.kubernetes.io/component": keyMetrics}
		if name, ok := selector["app.kubernetes.io/name"]; ok {
			labels["app.kubernetes.io/name"] = name
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       kindService,
			"metadata":   map[string]any{keyName: d.GetName() + "-metrics-service", "namespace": d.GetNamespace(), "labels": labels},
			"spec": map[string]any{
				"selector": selector,
				"ports":    []any{map[string]any{keyName: keyMetrics, "port": p["containerPort"], "targetPort": keyMetrics}},
			},
		}}
	}
	return nil
}

// serviceMonitorFor makes a Prometheus Operator ServiceMonitor for the metrics Service.
func serviceMonitorFor(svc *unstructured.Unstructured) *unstructured.Unstructured {
	selector := map[string]any{}
	for k, v := range svc.GetLabels() {
		if k != "app.kubernetes.io/managed-by" {
			selector[k] = v
		}
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	port, _ := ports[0].(map[string]any)
	endpoint := map[string]any{"port": port[keyName], "path": "/metrics", "scheme": "http"}
	if port[keyName] == "https" {
		// kubebuilder's authenticated metrics: Prometheus shows its token, the certificate is self-signed
		endpoint["scheme"] = "https"
		endpoint["bearerTokenFile"] = "/var/run/secrets/kubernetes.io/serviceaccount/token"
		endpoint["tlsConfig"] = map[string]any{"insecureSkipVerify": true}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "ServiceMonitor",
		"metadata": map[string]any{
			keyName:     strings.TrimSuffix(svc.GetName(), "-service") + "-monitor",
			"namespace": svc.GetNamespace(),
			"labels":    selector,
		},
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": selector},
			"endpoints": []any{endpoint},
		},
	}}
}

// setServiceMonitorInterval sets each endpoint's interval from the values, when one is set.
func setServiceMonitorInterval(o *unstructured.Unstructured, t *tokens) {
	endpoints, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
	for _, raw := range endpoints {
		if e, ok := raw.(map[string]any); ok {
			e[t.Line(func(indent int) string {
				pad := strings.Repeat(" ", indent)
				return "{{- with .Values.metrics.serviceMonitor.interval }}\n" + pad + "interval: {{ . | quote }}\n" + pad + "{{- end }}"
			})] = ""
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, endpoints, "spec", "endpoints")
}
