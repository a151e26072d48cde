// Package e2e runs the whole system on this machine — a real control plane, the
// manager and agent binaries, real traffic on loopback — and checks what it discovers.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// binary is intent-mapper; agentBinary is intent-mapper-agent, as the DaemonSet runs it.
var binary, agentBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intent-mapper-e2e-bin")
	if err != nil {
		panic(err)
	}
	binary, agentBinary = filepath.Join(dir, "intent-mapper"), filepath.Join(dir, "intent-mapper-agent")
	for out, pkg := range map[string]string{binary: "../..", agentBinary: "../../cmd/intent-mapper-agent"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			panic(fmt.Sprintf("building %s: %v", out, err))
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// running is a staged scenario with the system and traffic up.
type running struct {
	sys     *scenario.System
	sc      *scenario.Scenario
	traffic *scenario.Traffic
}

func start(t *testing.T, file string) *running {
	t.Helper()
	ctx := context.Background()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs("../../bin/k8s")
	}
	sc, err := scenario.Load(filepath.Join("..", "..", "hack", "demo", file))
	if err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	dnsAddr := "127.0.53.53:53"
	if !root {
		t.Log("not root: no packet capture; /proc and sidecar metrics only")
		dnsAddr = "127.0.53.53:5353"
	}
	crds, _ := filepath.Abs("../../config/crd/bases")
	dir := t.TempDir()
	t.Cleanup(func() { // the processes' own words, when something went wrong
		if t.Failed() {
			for _, name := range []string{"manager.log", "agent.log"} {
				if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					t.Logf("%s (last 4 KiB):\n%s", name, raw[max(0, len(raw)-4096):])
				}
			}
		}
	})
	sys, err := scenario.StartSystem(ctx, scenario.SystemOptions{
		Binary: binary, AgentBinary: agentBinary, Assets: assets, CRDs: crds, Dir: dir, Capture: root, ScrapePort: 15020,
	})
	if sys != nil {
		t.Cleanup(sys.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Stage(ctx, sys.Client, scenario.Node); err != nil {
		t.Fatal(err)
	}
	traffic, err := sc.StartTraffic(scenario.TrafficOptions{DNSAddr: dnsAddr, ScrapePort: 15020, Every: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(traffic.Stop)
	if err := sys.StartAgent(ctx); err != nil {
		t.Fatal(err)
	}
	return &running{sys: sys, sc: sc, traffic: traffic}
}

func (r *running) list(t *testing.T) []discoveryv1alpha1.DiscoveredIntents {
	t.Helper()
	l := &discoveryv1alpha1.DiscoveredIntentsList{}
	if err := r.sys.Client.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// waitFor checks cond every half second, for at most two minutes.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var detail string
	for range 240 {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("never: %s (%s)", what, detail)
}

// waitDiscovered waits until everything the scenario does is discovered, and no more.
func (r *running) waitDiscovered(t *testing.T) scenario.Score {
	t.Helper()
	var score scenario.Score
	waitFor(t, "every call discovered, fresh, and nothing else", func() (bool, string) {
		items := r.list(t)
		score = r.sc.Compare(items)
		return score.Perfect() && scenario.Fresh(items),
			fmt.Sprintf("%s; missing %v; unexpected %v; traffic errors %v", score, score.Missing, score.Unexpected, r.traffic.Errors())
	})
	return score
}

func get(t *testing.T, r *running, name string) *discoveryv1alpha1.DiscoveredIntents {
	t.Helper()
	di := &discoveryv1alpha1.DiscoveredIntents{}
	if err := r.sys.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, di); err != nil {
		t.Fatal(err)
	}
	return di
}

// tutorialCall checks one of the tutorial's objects exactly: one call, to nginx, over
// HTTP, on one path with one method.
func tutorialCall(t *testing.T, di *discoveryv1alpha1.DiscoveredIntents, method, path string) {
	t.Helper()
	if di.Spec.Workload != (discoveryv1alpha1.WorkloadRef{Name: di.Name, Kind: discoveryv1alpha1.KindDeployment}) {
		t.Errorf("%s: workload %+v", di.Name, di.Spec.Workload)
	}
	if len(di.Status.Calls) != 1 {
		t.Fatalf("%s: calls %+v", di.Name, di.Status.Calls)
	}
	c := di.Status.Calls[0]
	if c.Name != "nginx" || c.Namespace != "default" || c.Kind != discoveryv1alpha1.KindDeployment || c.Type != discoveryv1alpha1.CallHTTP ||
		fmt.Sprint(c.Ports) != "[80]" || fmt.Sprint(c.Services) != "[nginx]" || len(c.HTTP) != 1 ||
		c.HTTP[0].Path != path || fmt.Sprint(c.HTTP[0].Methods) != "["+method+"]" || c.LastSeen == nil || c.HTTP[0].LastSeen == nil {
		t.Errorf("%s: call %+v", di.Name, c)
	}
	if di.Status.CallCount != 1 {
		t.Errorf("%s: callCount %d", di.Name, di.Status.CallCount)
	}
}

func TestIstioTutorial(t *testing.T) {
	r := start(t, "scenario.yaml")
	r.waitDiscovered(t)
	if items := r.list(t); len(items) != 2 {
		t.Fatalf("want the objects of client and client2 only, got %d", len(items))
	}
	tutorialCall(t, get(t, r, "client"), "GET", "/client-path")
	tutorialCall(t, get(t, r, "client2"), "POST", "/client2-path")

	t.Run("reset by deletion, then observed again", func(t *testing.T) {
		old := get(t, r, "client")
		deleted := time.Now()
		if err := r.sys.Client.Delete(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "client observed again after the reset", func() (bool, string) {
			di := &discoveryv1alpha1.DiscoveredIntents{}
			err := r.sys.Client.Get(context.Background(), client.ObjectKeyFromObject(old), di)
			if apierrors.IsNotFound(err) || di.UID == old.UID {
				return false, "not yet recreated"
			}
			if len(di.Status.Calls) != 1 || di.Status.Calls[0].FirstSeen == nil || di.Status.Calls[0].HTTP == nil || di.Status.Calls[0].HTTP[0].LastSeen == nil {
				return false, fmt.Sprintf("%+v", di.Status.Calls)
			}
			if first := di.Status.Calls[0].FirstSeen.Time; first.Before(deleted.Truncate(time.Minute)) {
				t.Fatalf("firstSeen %v is from before the reset at %v: old data came back", first, deleted)
			}
			return true, ""
		})
		tutorialCall(t, get(t, r, "client"), "GET", "/client-path")
	})

	t.Run("the manager killed in the middle of traffic loses nothing written", func(t *testing.T) {
		before := map[string]*discoveryv1alpha1.DiscoveredIntents{"client": get(t, r, "client"), "client2": get(t, r, "client2")}
		r.sys.KillManager()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r.traffic.StartCall(ctx, scenario.Call{From: "client", To: "nginx", Port: 80, DNS: "nginx.default.svc.cluster.local",
			HTTP: []scenario.Request{{Method: "GET", Path: "/after-restart"}}})
		time.Sleep(2 * time.Second) // traffic while no manager runs
		if err := r.sys.StartManager(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the new path merged after the restart", func() (bool, string) {
			c := get(t, r, "client").Status.Find("default", "nginx")
			return c != nil && len(c.HTTP) == 2, fmt.Sprintf("%+v", c)
		})
		for name, old := range before {
			now := get(t, r, name)
			if now.UID != old.UID {
				t.Errorf("%s was recreated", name)
			}
			for _, oc := range old.Status.Calls {
				nc := now.Status.Find(oc.Namespace, oc.Name)
				if nc == nil || nc.FirstSeen == nil || !nc.FirstSeen.Equal(oc.FirstSeen) {
					t.Errorf("%s: call to %s lost or rewritten: %+v", name, oc.Name, nc)
					continue
				}
				for _, p := range oc.HTTP {
					found := false
					for _, q := range nc.HTTP {
						found = found || q.Path == p.Path
					}
					if !found {
						t.Errorf("%s: path %s lost", name, p.Path)
					}
				}
			}
		}
	})
}

func TestEcommerce(t *testing.T) {
	r := start(t, "ecommerce.yaml")
	score := r.waitDiscovered(t)
	t.Logf("e-commerce: %s", score)
	if score.Recall() < 1 || score.Precision() < 1 {
		t.Fatalf("%s; missing %v; unexpected %v", score, score.Missing, score.Unexpected)
	}
}

// TestEveryKind: bare pods with sidecars (named by their own names, as Istio names
// them) send and receive HTTP detail, and every call goes through a ClusterIP.
func TestEveryKind(t *testing.T) {
	r := start(t, "kinds.yaml")
	score := r.waitDiscovered(t)
	t.Logf("every kind: %s", score)
	shell := &discoveryv1alpha1.DiscoveredIntents{}
	if err := r.sys.Client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "debug-shell"}, shell); err != nil {
		t.Fatal(err)
	}
	if shell.Spec.Workload != (discoveryv1alpha1.WorkloadRef{Name: "debug-shell", Kind: discoveryv1alpha1.KindPod}) {
		t.Errorf("the bare pod's object names %+v", shell.Spec.Workload)
	}
	api := shell.Status.Find("shop", "api")
	if api == nil || api.Kind != discoveryv1alpha1.KindPod || api.Type != discoveryv1alpha1.CallHTTP || fmt.Sprint(api.Services) != "[api]" ||
		len(api.HTTP) != 1 || api.HTTP[0].Path != "/v1/items" || fmt.Sprint(api.HTTP[0].Methods) != "[POST]" {
		t.Errorf("bare pod to bare pod, through the Service: %+v", api)
	}
}
