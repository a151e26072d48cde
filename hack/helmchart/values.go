package main

import (
	"strings"
)

// Names the generator writes in more than one place: values' keys (some also IntentMapper's
// spec fields), and kinds.
const (
	keyFlushInterval   = "flushInterval"
	keyLastSeenStep    = "lastSeenStep"
	keyRetention       = "retention"
	keyMaxPathsPerCall = "maxPathsPerCall"
	keyResources       = "resources"
	keyMetrics         = "metrics"
	keyEnabled         = "enabled"
	keyName            = "name"
	keyDescription     = "description"
	kindService        = "Service"
	kindIntentMapper   = "IntentMapper"
)

// managerIntervals are IntentMapper's intervals that the manager keeps; the rest are the agents'.
var managerIntervals = map[string]string{"flush": keyFlushInterval, keyLastSeenStep: keyLastSeenStep}

// section is one top-level key of values.yaml with the comment above it.
type section struct {
	key, comment string
	value        any
}

// values writes values.yaml: the defaults are what config/ installs.
func (c *chart) values() (string, error) {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("# Every key is checked by values.schema.json: a mistyped name or value fails the install.\n")
	for _, s := range c.sections() {
		text, err := toYAML(map[string]any{s.key: s.value})
		if err != nil {
			return "", err
		}
		b.WriteString("\n")
		for _, line := range strings.Split(s.comment, "\n") {
			b.WriteString("# " + line + "\n")
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

func (c *chart) sections() []section {
	repository, _ := splitImage(c.manager["image"].(string))
	intervals := nested(c.settings, "intervals")
	manager := map[string]any{keyResources: c.manager[keyResources], keyRetention: ""}
	for from, to := range managerIntervals {
		manager[to] = stringOr(intervals[from], c.specDefault("intervals", from))
		delete(intervals, from)
	}
	if v, ok := c.settings[keyRetention]; ok {
		manager[keyRetention] = v
	}
	manager[keyMaxPathsPerCall] = c.settings[keyMaxPathsPerCall]
	if manager[keyMaxPathsPerCall] == nil {
		manager[keyMaxPathsPerCall] = c.specDefault(keyMaxPathsPerCall)
	}

	agent := nested(c.settings, "agent")
	if agent == nil {
		agent = map[string]any{}
	}
	for key, empty := range map[string]any{"nodeSelector": map[string]any{}, "tolerations": []any{}, keyResources: map[string]any{}} {
		if _, ok := agent[key]; !ok {
			agent[key] = empty
		}
	}
	agent["intervals"] = intervals

	kafka, _ := c.settings["kafka"].([]any)
	if kafka == nil {
		kafka = []any{}
	}
	return []section{
		{"image", "The manager's image; the agents run it too unless agent.image names another.\ntag defaults to the chart's appVersion.",
			map[string]any{"repository": repository, "tag": "", "pullPolicy": "IfNotPresent"}},
		{"manager", "The manager: its resources and its settings (flags, and IntentMapper cluster's spec).\nDurations as Go writes them (5s, 1m, 720h); retention \"\" keeps calls forever.", manager},
		{"agent", "The node agents, as IntentMapper cluster's spec.agent holds them (see its CRD):\nsources (dns, connections, istio, ambient), tolerations, nodeSelector, resources ({}: the\nmeasured defaults), and how often they report, scan /proc and scrape mesh proxies (intervals).", agent},
		{"kafka", "Kafka brokers whose authorizer logs reveal topic access: {namespace, name} or {namespace, selector}.", kafka},
		{keyMetrics, "The manager's Prometheus metrics, and a ServiceMonitor for the Prometheus Operator (its CRD must exist).",
			map[string]any{keyEnabled: true, "serviceMonitor": map[string]any{keyEnabled: false, "interval": "30s"}}},
	}
}

// specDefault is the default IntentMapper's CRD gives a spec field.
func (c *chart) specDefault(path ...string) any {
	s := c.specOf
	for _, p := range path {
		s = nested(s, "properties", p)
	}
	return s["default"]
}

// splitImage splits name:tag; a registry's port is part of the name.
func splitImage(image string) (name, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

func stringOr(v, fallback any) any {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	if fallback == nil {
		return ""
	}
	return fallback
}
