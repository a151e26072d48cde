package helm

import (
	"strings"
	"testing"
)

// TestSchemaRefusesMistypedValues: each mistake is refused before anything renders, with a
// message naming the value and what is wrong with it.
func TestSchemaRefusesMistypedValues(t *testing.T) {
	for _, tc := range []struct{ values, says string }{
		{"imagee: {tag: v2}", "additional properties 'imagee' not allowed"},
		{"image: {pullPolicy: Sometimes}", "/image/pullPolicy"},
		{"image: {repository: ''}", "/image/repository"},
		{"agent: {sources: {istio: 'yes'}}", "/agent/sources/istio"},
		{"agent: {sources: {mesh: true}}", "additional properties 'mesh' not allowed"},
		{"agent: {tolerations: {key: a}}", "/agent/tolerations"},
		{"agent: {tolerration: []}", "additional properties 'tolerration' not allowed"},
		{"agent: {nodeSelector: {zone: 1}}", "/agent/nodeSelector/zone"},
		{"agent: {resources: {limits: {cpu: lots}}}", "/agent/resources/limits/cpu"},
		{"agent: {intervals: {report: 10}}", "/agent/intervals/report"},
		{"agent: {intervals: {scan: ten seconds}}", "/agent/intervals/scan"},
		{"agent: {intervals: {flush: 5s}}", "additional properties 'flush' not allowed"},
		{"manager: {flushInterval: 5}", "/manager/flushInterval"},
		{"manager: {retention: 30d}", "/manager/retention"},
		{"manager: {maxPathsPerCall: 0}", "/manager/maxPathsPerCall"},
		{"manager: {maxPathsPerCall: 2.5}", "/manager/maxPathsPerCall"},
		{"kafka: [{name: brokers}]", "missing property 'namespace'"},
		{"kafka: {namespace: streaming}", "/kafka"},
		{"metrics: {enabled: 'false'}", "/metrics/enabled"},
		{"metrics: {serviceMonitor: {interval: often}}", "/metrics/serviceMonitor/interval"},
	} {
		_, err := render(t, tc.values)
		if err == nil {
			t.Errorf("%s: accepted", tc.values)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "schema") || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: refused with\n%s\nwhich does not say %q", tc.values, msg, tc.says)
		}
	}
}

// TestSchemaAcceptsWhatUsersWrite: the refusals above are not a schema that refuses everything.
func TestSchemaAcceptsWhatUsersWrite(t *testing.T) {
	for _, values := range []string{
		"",
		custom,
		"manager: {retention: ''}",
		"manager: {retention: 1h30m, flushInterval: 500ms}",
		"agent: {resources: {limits: {cpu: 1, memory: 512Mi}}}",
		"kafka: [{namespace: streaming, selector: {matchLabels: {app: kafka}}}]",
		"metrics: {serviceMonitor: {interval: ''}}",
	} {
		if _, err := render(t, values); err != nil {
			t.Errorf("%q refused: %v", values, err)
		}
	}
}
