package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

const (
	managerSel = "app.kubernetes.io/component=manager"
	agentSel   = "app.kubernetes.io/component=agent"
)

// with is e for a subtest.
func (e *env) with(t *testing.T) *env { c := *e; c.t = t; return &c }

func loadScenario(t *testing.T) *scenario.Scenario {
	path := os.Getenv("CLUSTER_SCENARIO")
	if path == "" {
		path = "scenario.yaml"
	} else if !filepath.IsAbs(path) {
		path = filepath.Join("../..", path) // make runs from the repository's root
	}
	s, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// buildApp builds the scenario app and imports its image.
func (e *env) buildApp() string {
	bin := filepath.Join(e.root, "bin/cluster/scenario-app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./test/cluster/app")
	cmd.Dir, cmd.Env = e.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("building the scenario app: %v\n%s", err, out)
	}
	e.run("hack/cluster/image.sh", appImage, bin, "65532:65532", "run")
	return bin
}

// installed waits for the manager and the agents of image img to be ready.
func (e *env) installed(img string) {
	e.t.Helper()
	e.waitFor("the manager's rollout", 4*time.Minute, func() (bool, string) {
		out, err := e.try("kubectl", "-n", systemNS, "rollout", "status", "deployment", "-l", managerSel, "--timeout=1s")
		return err == nil, strings.TrimSpace(out)
	})
	// Until IntentMapper's pull policy is set, the agent DaemonSet would pull (config/'s
	// sample sets none; the chart sets image.pullPolicy).
	if e.intentMapper().Spec.Agent.ImagePullPolicy != corev1.PullNever {
		e.kubectl("patch", "intentmapper", "cluster", "--type", "merge", "-p", `{"spec":{"agent":{"imagePullPolicy":"Never"}}}`)
	}
	// The leader deploys the agents with its own image: after an upgrade, once the new
	// manager leads.
	e.waitFor("the agent DaemonSet on the manager's image "+img+", never pulled", 2*time.Minute, func() (bool, string) {
		out, _ := e.try("kubectl", "-n", systemNS, "get", "ds", "-l", agentSel, "-o",
			`jsonpath={.items[0].spec.template.spec.containers[0].image} {.items[0].spec.template.spec.containers[0].imagePullPolicy}`)
		return out == img+" Never", out
	})
	e.waitFor("the agents' rollout", 3*time.Minute, func() (bool, string) {
		out, err := e.try("kubectl", "-n", systemNS, "rollout", "status", "ds/"+e.agentDaemonSet(), "--timeout=1s")
		return err == nil, strings.TrimSpace(out)
	})
}

func (e *env) agentDaemonSet() string {
	out, _ := e.try("kubectl", "-n", systemNS, "get", "ds", "-l", agentSel, "-o", "jsonpath={.items[0].metadata.name}")
	return out
}

// mapped waits until the DiscoveredIntents score 100% recall and precision, every item
// seen since intent-mapper started.
func (e *env) mapped(s *scenario.Scenario, limit time.Duration) {
	e.t.Helper()
	var score scenario.Score
	e.waitFor("every call and path mapped", limit, func() (bool, string) {
		items := ofScenario(s, e.intents())
		score = s.Compare(items)
		ok := score.Recall() == 1 && score.Precision() == 1 && scenario.Fresh(items)
		return ok, fmt.Sprintf("%s; missing %v; unexpected %v", score, score.Missing, score.Unexpected)
	})
}

// ofScenario keeps the DiscoveredIntents of the scenario's namespaces: the cluster's own
// clients (intent-mapper's manager, CoreDNS) call the API server too.
func ofScenario(s *scenario.Scenario, items []discoveryv1alpha1.DiscoveredIntents) []discoveryv1alpha1.DiscoveredIntents {
	var out []discoveryv1alpha1.DiscoveredIntents
	for _, di := range items {
		for _, w := range s.Workloads {
			if w.Namespace == di.Namespace {
				out = append(out, di)
				break
			}
		}
	}
	return out
}

// kept fails when a call found before is gone or was recreated (a new firstSeen).
func (e *env) kept(before map[string]time.Time, what string) {
	e.t.Helper()
	after := calls(e.intents())
	for call, first := range before {
		got, ok := after[call]
		switch {
		case !ok:
			e.t.Errorf("%s lost %s", what, call)
		case !got.Equal(first):
			e.t.Errorf("%s rewrote %s: firstSeen %s, was %s", what, call, got, first)
		}
	}
}

func TestCluster(t *testing.T) {
	e := setup(t)
	s := loadScenario(t)
	bin := e.buildApp()
	t.Cleanup(e.guardIsZero)
	e.deploy(imageFirst)
	e.installed(imageFirst)
	stop := e.stage(s, bin)
	t.Cleanup(stop)
	e.mapped(s, 6*time.Minute)

	t.Run("deleting the manager pod loses nothing written", func(t *testing.T) {
		e := e.with(t)
		before := calls(e.intents())
		e.kubectl("-n", systemNS, "delete", "pod", "-l", managerSel, "--wait=true", "--timeout=90s")
		e.installed(imageFirst)
		e.mapped(s, 3*time.Minute)
		e.kept(before, "a new manager")
	})
	t.Run("a restarted agent resumes", func(t *testing.T) {
		e := e.with(t)
		e.kubectl("-n", systemNS, "delete", "pod", "-l", agentSel, "--wait=true", "--timeout=90s")
		restarted := time.Now()
		e.installed(imageFirst)
		e.waitFor("a call seen after the agent's restart", 4*time.Minute, func() (bool, string) {
			for _, di := range e.intents() {
				for _, c := range di.Status.Calls {
					if c.LastSeen != nil && c.LastSeen.After(restarted) {
						return true, ""
					}
				}
			}
			return false, "every lastSeen is older than the restart"
		})
	})
	t.Run("a rolling upgrade completes and loses nothing", func(t *testing.T) {
		e := e.with(t)
		before := calls(e.intents())
		e.deploy(imageNext)
		e.installed(imageNext)
		e.mapped(s, 3*time.Minute)
		e.kept(before, "the upgrade")
	})
	// After the last check of the whole map: the test's probe of a call the scenario never
	// makes is itself a call the agents map, which the reset below clears.
	t.Run("generated NetworkPolicies, enforced by kube-router, allow the observed calls and refuse another", func(t *testing.T) {
		e.with(t).enforced(s)
	})
	t.Run("deleting every DiscoveredIntents resets, new traffic brings them back", func(t *testing.T) {
		e := e.with(t)
		// A client that stops calling must not come back.
		gone := s.Workloads[0].Key()
		for _, w := range s.Workloads {
			if w.Kind == "Pod" {
				gone = w.Key()
				e.kubectl("-n", w.Namespace, "delete", "pod", w.Name, "--wait=true", "--timeout=60s")
			}
		}
		reset := time.Now().Truncate(time.Minute)
		e.kubectl("delete", "di", "--all", "--all-namespaces", "--wait=true", "--timeout=60s")
		if n := len(e.intents()); n != 0 {
			t.Errorf("%d DiscoveredIntents left after deleting all", n)
		}
		e.waitFor("the calls of running clients back", 4*time.Minute, func() (bool, string) {
			got := calls(ofScenario(s, e.intents()))
			want := 0
			for _, c := range s.Calls {
				if w := s.Workload(c.From); w.Key() != gone && w.Kind != "CronJob" && w.Kind != "Job" {
					want++
				}
			}
			return len(got) >= want, fmt.Sprintf("%d of %d calls back", len(got), want)
		})
		for call, first := range calls(ofScenario(s, e.intents())) {
			if strings.HasPrefix(call, gone+" ") {
				t.Errorf("%s came back without traffic", call)
			}
			if first.Before(reset) {
				t.Errorf("%s came back with firstSeen %s, before the reset at %s", call, first, reset)
			}
		}
	})
	t.Run("make undeploy leaves nothing behind", func(t *testing.T) {
		e := e.with(t)
		e.run("make", "undeploy")
		e.waitFor("nothing of intent-mapper left", 3*time.Minute, func() (bool, string) {
			var left []string
			for _, q := range [][]string{
				{"get", "namespace", systemNS, "--ignore-not-found", "-o", "name"},
				{"get", "crd", "-o", "name"},
				{"get", "clusterrole,clusterrolebinding", "-o", "name"},
				{"get", "pods,daemonsets,services,configmaps,secrets,serviceaccounts", "-A", "-l", "app.kubernetes.io/name=intent-mapper", "-o", "name"},
			} {
				out, err := e.try("kubectl", q...)
				if err != nil {
					return false, out
				}
				for _, line := range strings.Fields(out) {
					if strings.Contains(line, "intent-mapper") || strings.Contains(line, "intentmapper") {
						left = append(left, line)
					}
				}
			}
			return len(left) == 0, strings.Join(left, " ")
		})
	})
}

// TestDemo deploys intent-mapper and stages the scenario for a person to explore
// (make demo-cluster); it runs until interrupted.
func TestDemo(t *testing.T) {
	if os.Getenv("CLUSTER_DEMO") == "" {
		t.Skip("make demo-cluster runs this")
	}
	e := setup(t)
	s := loadScenario(t)
	bin := e.buildApp()
	e.deploy(imageFirst)
	e.installed(imageFirst)
	stop := e.stage(s, bin)
	defer stop()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	clusterBin := os.Getenv("CLUSTER_BIN")
	if clusterBin == "" {
		clusterBin = filepath.Join(e.root, "bin/cluster")
	}
	// The plugin lists the current namespace (default, empty here) unless told otherwise.
	fmt.Printf("\nscenario %s staged. Explore with:\n  export KUBECONFIG=%s PATH=%s:$PATH\n  kubectl get di -A\n  make plugin && bin/kubectl-intents list -A\nInterrupt (Ctrl-C) to remove the scenario; then make undeploy, and make cluster-down CLUSTER_BIN=%s to finish.\n\n",
		s.Name, os.Getenv("KUBECONFIG"), clusterBin, clusterBin)
	for {
		fmt.Printf("%s %s\n", time.Now().UTC().Format(time.TimeOnly), s.Compare(ofScenario(s, e.intents())))
		select {
		case <-ctx.Done():
			return
		case <-time.After(30 * time.Second):
		}
	}
}
