package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestAgentPullPolicy(t *testing.T) {
	for _, tc := range []struct {
		asked corev1.PullPolicy
		image string
		want  corev1.PullPolicy
	}{
		{"", "intent-mapper", corev1.PullAlways},
		{"", "intent-mapper:latest", corev1.PullAlways},
		{"", "registry.example:5000/intent-mapper", corev1.PullAlways},
		{"", "registry.example:5000/intent-mapper:0.1.0", corev1.PullIfNotPresent},
		{"", "registry.example/intent-mapper@sha256:0123", corev1.PullIfNotPresent},
		{corev1.PullNever, "intent-mapper:latest", corev1.PullNever},
		{corev1.PullAlways, "intent-mapper:0.1.0", corev1.PullAlways},
	} {
		if got := agentPullPolicy(tc.asked, tc.image); got != tc.want {
			t.Errorf("agentPullPolicy(%q, %q) = %q, want %q", tc.asked, tc.image, got, tc.want)
		}
	}
}
