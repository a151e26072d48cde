package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent runs on every node: it must not link the manager's Kubernetes libraries
// (their code and package initialisation were half of its memory).
func TestAgentLinksNoKubernetesLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list gave %d packages; expected the agent's whole tree", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "sigs.k8s.io/controller-runtime") {
			t.Errorf("the agent links %s", p)
		}
	}
}
