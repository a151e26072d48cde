package main

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// goDuration is a Go duration, as metav1.Duration parses it.
const goDuration = `(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)`

// durationPattern is a duration; optional, one or nothing.
const (
	durationPattern = "^" + goDuration + "$"
	optionalPattern = "^" + goDuration + "?$"
)

// JSON Schema's words used more than once.
const (
	keyType    = "type"
	typeString = "string"
)

// intentMapperSpecSchema is the openAPIV3Schema of IntentMapper's spec.
func intentMapperSpecSchema(crd *unstructured.Unstructured) map[string]any {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if served, _, _ := unstructured.NestedBool(v.(map[string]any), "served"); served {
			return nested(v.(map[string]any), "schema", "openAPIV3Schema", "properties", "spec")
		}
	}
	return nil
}

// schema is values.schema.json: the agent's and Kafka's parts are IntentMapper's CRD schema,
// so values are checked as the API server will check IntentMapper, and an unknown key is an error.
func (c *chart) schema() map[string]any {
	spec := func(path ...string) map[string]any {
		s := c.specOf
		for _, p := range path {
			s = nested(s, "properties", p)
		}
		return strict(s)
	}
	agent := spec("agent")
	intervals := spec("intervals")
	props := nested(intervals, "properties")
	for name, field := range props {
		if _, ok := managerIntervals[name]; ok {
			delete(props, name)
			continue
		}
		field.(map[string]any)["pattern"] = durationPattern
	}
	intervals["properties"] = props
	intervals[keyDescription] = "how often the agents report, scan /proc and scrape mesh proxies; the manager's intervals are under manager."
	agent["properties"].(map[string]any)["intervals"] = intervals
	optionalDuration := func(description string) map[string]any {
		return map[string]any{keyType: typeString, "pattern": optionalPattern, keyDescription: description}
	}
	return object("intent-mapper chart values", map[string]any{
		"global": map[string]any{keyType: "object", keyDescription: "Helm's values shared with subcharts; unused."},
		"image": object("The manager's image, and the agents' unless agent.image is set.", map[string]any{
			"repository": map[string]any{keyType: typeString, "minLength": 1},
			"tag":        map[string]any{keyType: typeString, keyDescription: "the chart's appVersion when empty"},
			"pullPolicy": map[string]any{keyType: typeString, "enum": []any{"Always", "IfNotPresent", "Never"}},
		}),
		"manager": object("The manager's resources and settings.", map[string]any{
			keyResources:       spec("agent", keyResources),
			keyFlushInterval:   optionalDuration("shortest time between two writes of one DiscoveredIntents"),
			keyLastSeenStep:    optionalDuration("step in which lastSeen moves"),
			keyRetention:       optionalDuration("drop calls not seen for this long; empty keeps them"),
			keyMaxPathsPerCall: spec(keyMaxPathsPerCall),
		}),
		"agent": agent,
		"kafka": spec("kafka"),
		keyMetrics: object("The manager's metrics.", map[string]any{
			keyEnabled: map[string]any{keyType: "boolean"},
			"serviceMonitor": object("A Prometheus Operator ServiceMonitor for the metrics.", map[string]any{
				keyEnabled: map[string]any{keyType: "boolean"},
				"interval": optionalDuration("scrape interval; Prometheus's own when empty"),
			}),
		}),
	})
}

func object(description string, properties map[string]any) map[string]any {
	return map[string]any{keyType: "object", keyDescription: description, "additionalProperties": false, "properties": properties}
}

// strict copies a CRD schema for values: without defaults (values.yaml holds them) or
// Kubernetes extensions, and refusing keys the API does not know.
func strict(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		if k == "default" || strings.HasPrefix(k, "x-kubernetes-") {
			continue
		}
		switch k {
		case "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				props[name] = strict(p.(map[string]any))
			}
			out[k] = props
		case "items", "additionalProperties":
			if m, ok := v.(map[string]any); ok {
				out[k] = strict(m)
			} else {
				out[k] = v
			}
		case "anyOf", "oneOf", "allOf":
			list := make([]any, 0, len(v.([]any)))
			for _, e := range v.([]any) {
				list = append(list, strict(e.(map[string]any)))
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	if _, ok := s["properties"]; ok && s["x-kubernetes-preserve-unknown-fields"] != true {
		if _, set := out["additionalProperties"]; !set {
			out["additionalProperties"] = false
		}
	}
	return out
}
