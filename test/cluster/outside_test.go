package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// outsideHost is the i-th outside server's address: a /30 per server inside the range
// hack/cluster keeps on the machine (10.203.0.0/24), host side first.
func outsideHost(i int) (host, server string) {
	return fmt.Sprintf("10.203.0.%d", 4*i+1), fmt.Sprintf("10.203.0.%d", 4*i+2)
}

// stage starts the outside servers, names them in CoreDNS, and applies the scenario's
// workloads. The function it returns removes them all.
func (e *env) stage(s *scenario.Scenario, app string) (stop func()) {
	e.t.Helper()
	undo := make([]func(), 0, len(s.Outside)+1)
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	var hosts strings.Builder
	for i, o := range s.Outside {
		undo = append(undo, e.startOutside(i, o, app))
		_, server := outsideHost(i)
		fmt.Fprintf(&hosts, "%s %s\n", server, o.Name)
	}
	e.nameOutside(hosts.String())
	ctx := context.Background()
	for _, obj := range manifests(s, stageOptions{Image: appImage, Every: "2s"}) {
		if err := e.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			stop()
			e.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	undo = append(undo, func() {
		for _, obj := range manifests(s, stageOptions{}) {
			if obj.GetNamespace() == "" { // the scenario's namespaces, with all they hold
				_ = e.c.Delete(ctx, obj, client.PropagationPolicy("Background"))
			}
		}
	})
	return stop
}

// startOutside makes network namespace im-outside-I with a veth to the host and runs the
// scenario app in it as server o.
func (e *env) startOutside(i int, o scenario.Outside, app string) (undo func()) {
	e.t.Helper()
	ns, veth := fmt.Sprintf("im-outside-%d", i), fmt.Sprintf("imout%d", i)
	host, server := outsideHost(i)
	_, _ = e.try("ip", "netns", "del", ns) // a leftover of an interrupted run
	_, _ = e.try("ip", "link", "del", veth)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"addr", "add", host + "/30", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", ns, "addr", "add", server + "/30", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "add", "10.201.0.0/16", "via", host},
	} {
		e.run("ip", args...)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, app, "run")
	cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN=%s:%d", server, o.Port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting outside server %s: %v", o.Name, err)
	}
	e.t.Logf("outside server %s at %s:%d in network namespace %s (pid %d)", o.Name, server, o.Port, ns, cmd.Process.Pid)
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_, _ = e.try("ip", "link", "del", veth)
		_, _ = e.try("ip", "netns", "del", ns)
	}
}

// nameOutside gives the outside servers their names in CoreDNS and restarts it, so the
// names resolve now rather than after the kubelet's next ConfigMap sync.
func (e *env) nameOutside(hosts string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"data":{"outside.hosts":%q}}`, hosts)
	e.kubectl("-n", "kube-system", "patch", "configmap", "coredns", "--type", "merge", "-p", patch)
	e.kubectl("-n", "kube-system", "rollout", "restart", "deployment/coredns")
	e.waitFor("CoreDNS with the outside names", 2*time.Minute, func() (bool, string) {
		out, err := e.try("kubectl", "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=1s")
		return err == nil, strings.TrimSpace(out)
	})
}
