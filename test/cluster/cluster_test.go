package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// The tier runs only when asked (make test-cluster): it needs root and the cluster.
const enable = "INTENT_MAPPER_CLUSTER"

const (
	systemNS   = "intent-mapper-system"
	appImage   = "im-scenario:1"
	imageFirst = "intent-mapper:cluster-1"
	imageNext  = "intent-mapper:cluster-2"
)

// env is what the tier's tests share: the repository, a client, and the cluster's files.
type env struct {
	t    *testing.T
	root string
	c    client.Client
}

func setup(t *testing.T) *env {
	t.Helper()
	if os.Getenv(enable) == "" {
		t.Skipf("the cluster tier runs with %s=1 (make test-cluster; needs root)", enable)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatalf("KUBECONFIG: %v (make cluster prints it)", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scenario.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root, c: c}
	e.guardIsZero()
	// make deploy edits the image in config/manager: put the file back afterwards.
	kust := filepath.Join(root, "config/manager/kustomization.yaml")
	if saved, err := os.ReadFile(kust); err == nil {
		t.Cleanup(func() { _ = os.WriteFile(kust, saved, 0o644) })
	}
	return e
}

// run runs a command from the repository's root, failing the test with its output.
func (e *env) run(name string, args ...string) string {
	e.t.Helper()
	out, err := e.try(name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) try(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = e.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *env) kubectl(args ...string) {
	e.t.Helper()
	e.run("kubectl", args...)
}

// waitFor polls cond every two seconds up to limit; on timeout it fails with what and
// the log tails of every component.
func (e *env) waitFor(what string, limit time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < limit {
		ok, state := cond()
		if ok {
			e.t.Logf("%s after %s", what, time.Since(start).Round(time.Second))
			return
		}
		if state != last {
			e.t.Logf("waiting for %s: %s", what, state)
			last = state
		}
		time.Sleep(2 * time.Second)
	}
	e.dumpLogs()
	e.t.Fatalf("timed out after %s waiting for %s; last: %s", limit, what, last)
}

// dumpLogs prints each component's log tail: the cluster's and intent-mapper's.
func (e *env) dumpLogs() {
	out, _ := e.try("hack/cluster/logs.sh", "30")
	e.t.Log(out)
	for _, sel := range []string{"app.kubernetes.io/component=manager", "app.kubernetes.io/component=agent"} {
		out, _ := e.try("kubectl", "-n", systemNS, "logs", "-l", sel, "--tail=40", "--all-containers", "--prefix")
		e.t.Logf("=== %s\n%s", sel, out)
	}
}

// guardIsZero checks that the FORWARD and OUTPUT guards of hack/cluster never logged or
// dropped a packet: nothing tried to leave the machine.
func (e *env) guardIsZero() {
	e.t.Helper()
	for _, chain := range [][]string{{"-t", "mangle", "IM-GUARD"}, {"-t", "filter", "IM-GUARD-OUT"}} {
		out := e.run("iptables", chain[0], chain[1], "-L", chain[2], "-n", "-v", "-x")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || (f[2] != "LOG" && f[2] != "DROP") {
				continue
			}
			if n, err := strconv.Atoi(f[0]); err != nil || n != 0 {
				e.t.Errorf("guard %s counted packets leaving the machine: %s", chain[2], line)
			}
		}
	}
}

// intents lists every DiscoveredIntents.
func (e *env) intents() []discoveryv1alpha1.DiscoveredIntents {
	e.t.Helper()
	var list discoveryv1alpha1.DiscoveredIntentsList
	if err := e.c.List(context.Background(), &list); err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatalf("listing DiscoveredIntents: %v", err)
	}
	return list.Items
}

// calls are the (client, server) pairs found, with their first sighting.
func calls(items []discoveryv1alpha1.DiscoveredIntents) map[string]time.Time {
	out := map[string]time.Time{}
	for _, di := range items {
		for _, c := range di.Status.Calls {
			var first time.Time
			if c.FirstSeen != nil {
				first = c.FirstSeen.Time
			}
			out[fmt.Sprintf("%s/%s -> %s/%s", di.Namespace, di.Name, c.Namespace, c.Name)] = first
		}
	}
	return out
}

// deploy installs intent-mapper as a user does, with image img.
func (e *env) deploy(img string) {
	e.t.Helper()
	e.run("make", "cluster-image", "IMG="+img)
	e.run("make", "deploy", "IMG="+img)
}
