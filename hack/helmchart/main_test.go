package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyConfig copies config/ to a temporary directory, to change it there.
func copyConfig(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "config")
	if err := os.CopyFS(dst, os.DirFS("../../config")); err != nil {
		t.Fatal(err)
	}
	return dst
}

func edit(t *testing.T, path, old, replacement string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(raw), old, replacement, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readChart(t *testing.T, dir, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestChartFollowsConfig: what another change to config/ adds (a flag, a probe, a rule, a
// metrics port) reaches the chart by regenerating, alone.
func TestChartFollowsConfig(t *testing.T) {
	config := copyConfig(t)
	edit(t, filepath.Join(config, "manager", "manager.yaml"), "        - --leader-elect\n",
		"        - --leader-elect\n        - --zap-log-level=info\n")
	edit(t, filepath.Join(config, "manager", "manager.yaml"), "initialDelaySeconds: 15", "initialDelaySeconds: 25")
	edit(t, filepath.Join(config, "rbac", "agent", "role.yaml"), "  - pods\n", "  - pods\n  - nodes\n")
	edit(t, filepath.Join(config, "manager", "metrics_service.yaml"), "port: 8443", "port: 8444")

	out := filepath.Join(t.TempDir(), "chart")
	if err := run(filepath.Join(config, "default"), out, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	deployment := readChart(t, out, "templates/deployment-intent-mapper-controller-manager.yaml")
	for _, want := range []string{"- --leader-elect\n        - --zap-log-level=info\n", "initialDelaySeconds: 25", "- --flush-interval={{ . }}"} {
		if !strings.Contains(deployment, want) {
			t.Errorf("the Deployment template lacks %q:\n%s", want, deployment)
		}
	}
	if role := readChart(t, out, "templates/clusterrole-intent-mapper-agent-role.yaml"); !strings.Contains(role, "- nodes") {
		t.Errorf("the agent's ClusterRole lacks the new rule:\n%s", role)
	}
	svc := readChart(t, out, "templates/service-intent-mapper-metrics.yaml")
	if !strings.Contains(svc, "{{- if .Values.metrics.enabled }}") || !strings.Contains(svc, "port: 8444") {
		t.Errorf("config's metrics Service is not the chart's, behind metrics.enabled:\n%s", svc)
	}
	monitor := readChart(t, out, "templates/servicemonitor-intent-mapper-metrics-monitor.yaml")
	for _, want := range []string{"port: https", "scheme: https", "app.kubernetes.io/component: metrics"} {
		if !strings.Contains(monitor, want) {
			t.Errorf("the ServiceMonitor lacks %q:\n%s", want, monitor)
		}
	}
	if chart := readChart(t, out, "Chart.yaml"); !strings.Contains(chart, "version: 1.2.3") || !strings.Contains(chart, `appVersion: "1.2.3"`) {
		t.Errorf("Chart.yaml:\n%s", chart)
	}
}

// TestExpandRefusesLeftoverTokens: a token the writer mangled is an error, not a broken chart.
func TestExpandRefusesLeftoverTokens(t *testing.T) {
	tk := newTokens()
	tok := tk.Inline("{{ .Release.Namespace }}")
	if _, err := tk.Expand("namespace: " + tok + "\nname: " + strings.ToUpper(tok) + "\nother: zzhelmtoken999x\n"); err == nil {
		t.Error("a token with no action was left in the template, unreported")
	}
	got, err := tk.Expand("namespace: " + tok + "\n")
	if err != nil || got != "namespace: {{ .Release.Namespace }}\n" {
		t.Errorf("got %q, %v", got, err)
	}
}
