package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// The enforcement walkthrough: NetworkPolicies generated from the observed map with the
// kubectl plugin, enforced by kube-router (hack/cluster/kube-router.sh; test use only, it
// has reported security flaws), must let every observed call through and refuse a call
// the map never saw.

// appBinary is where hack/cluster/image.sh puts the scenario app in its image.
const appBinary = "/scenario-app"

// enforced runs the walkthrough; it leaves no policy, process, chain or set behind.
func (e *env) enforced(s *scenario.Scenario) {
	e.t.Helper()
	e.mapped(s, 3*time.Minute) // the policies come from a complete map
	caller, server := unobserved(s)
	if caller == nil {
		e.t.Fatal("the scenario has no two workloads that never talk: nothing to refuse")
	}
	target := fmt.Sprintf("%s.%s.svc.cluster.local:%d", server.Name, server.Namespace, server.Port)
	dir := e.exportPolicies(s)

	e.t.Cleanup(e.stopEnforcing)
	e.run("hack/cluster/kube-router.sh", "start")
	// Without policies the enforcer allows all: the call is possible.
	if out, err := e.probe(caller, target); err != nil {
		e.t.Fatalf("%s -> %s failed before any policy: %v\n%s", caller.Name, target, err, out)
	}
	e.t.Logf("before the policies, %s -> %s (never observed) is answered", caller.Name, target)

	applied := time.Now()
	e.t.Cleanup(func() { _, _ = e.try("kubectl", "delete", "--ignore-not-found", "-f", dir) })
	e.t.Log(e.run("kubectl", "apply", "--validate=strict", "-f", dir))
	var refused time.Time
	e.waitFor("kube-router refusing "+caller.Name+" -> "+target, 2*time.Minute, func() (bool, string) {
		out, err := e.probe(caller, target)
		if err == nil {
			return false, "still answered"
		}
		// Only a refused connection proves the policy (kube-router rejects): a failed
		// DNS lookup would not.
		if !refusedDial.MatchString(out) {
			e.dumpLogs()
			e.t.Fatalf("%s -> %s failed, but not by the network policy: %s", caller.Name, target, out)
		}
		refused = time.Now()
		return true, ""
	})
	e.t.Logf("after the policies, %s -> %s is refused", caller.Name, target)
	e.observedSucceed(s, applied, refused)
	e.guardIsZero()

	e.run("kubectl", "delete", "-f", dir, "--wait=true", "--timeout=60s")
	e.stopEnforcing()
	if out, err := e.probe(caller, target); err != nil {
		e.t.Errorf("%s -> %s still fails after the policies and kube-router are gone: %v\n%s", caller.Name, target, err, out)
	}
}

// refusedDial is the app's error for a connection the network refused or dropped, to
// an address: after the name was resolved.
var refusedDial = regexp.MustCompile(`dial tcp [0-9.]+:\d+: (connect: connection refused|i/o timeout)`)

// unobserved finds a running client and a server of the scenario that never talk.
func unobserved(s *scenario.Scenario) (caller, server *scenario.Workload) {
	for i := range s.Workloads {
		for j := range s.Workloads {
			c, sv := &s.Workloads[i], &s.Workloads[j]
			if c == sv || sv.Port == 0 || !longRunning(c) || talks(s, c, sv) {
				continue
			}
			return c, sv
		}
	}
	return nil, nil
}

func longRunning(w *scenario.Workload) bool { return w.Kind != kindJob && w.Kind != "CronJob" }

func talks(s *scenario.Scenario, a, b *scenario.Workload) bool {
	for _, c := range s.Calls {
		from, to := s.Workload(c.From), s.Workload(c.To)
		if (from == a && to == b) || (from == b && to == a) {
			return true
		}
	}
	return false
}

// exportPolicies writes, as a user does, the ingress and egress NetworkPolicies of each
// scenario namespace into a directory, and checks that the plugin's preview says they
// deny no observed call.
func (e *env) exportPolicies(s *scenario.Scenario) string {
	e.t.Helper()
	plugins := e.t.TempDir()
	e.run("go", "build", "-o", filepath.Join(plugins, "kubectl-intents"), "./cmd/kubectl-intents")
	// Not t.TempDir: kubectl -f splits its name at the commas of the subtest's name.
	dir, err := os.MkdirTemp("", "intent-mapper-policies-")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, ns := range namespaces(s) {
		out, errOut, err := e.plugin(plugins, "export", "-n", ns, "--format", "networkpolicy", "--egress")
		if err != nil || errOut != "" {
			e.t.Fatalf("kubectl intents export -n %s: %v\n%s", ns, err, errOut)
		}
		if err := os.WriteFile(filepath.Join(dir, ns+".yaml"), []byte(out), 0o644); err != nil {
			e.t.Fatal(err)
		}
		e.t.Logf("kubectl intents export -n %s --format networkpolicy --egress:\n%s", ns, out)
		out, errOut, err = e.plugin(plugins, "preview", "-n", ns, "-f", dir)
		if err != nil {
			e.t.Fatalf("kubectl intents preview -n %s says the policies deny observed calls: %v\n%s%s", ns, err, out, errOut)
		}
		e.t.Logf("kubectl intents preview -n %s: %s", ns, strings.TrimSpace(out))
	}
	return dir
}

func namespaces(s *scenario.Scenario) []string {
	var out []string
	for _, w := range s.Workloads {
		if !slices.Contains(out, w.Namespace) {
			out = append(out, w.Namespace)
		}
	}
	return out
}

// plugin runs kubectl intents with the plugin found on PATH in dir, as kubectl finds it.
func (e *env) plugin(dir string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command("kubectl", append([]string{"intents"}, args...)...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// probe makes one TCP call from w's running pod to target with the scenario app.
func (e *env) probe(w *scenario.Workload, target string) (string, error) {
	pods := e.pods(w, time.Time{})
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return e.try("kubectl", "-n", w.Namespace, "exec", p.Name, "-c", "app", "--", appBinary, "probe", target)
		}
	}
	return "", fmt.Errorf("no running pod of %s among %d", w.Key(), len(pods))
}

// pods lists w's pods created after since.
func (e *env) pods(w *scenario.Workload, since time.Time) []corev1.Pod {
	var list corev1.PodList
	if err := e.c.List(context.Background(), &list, client.InNamespace(w.Namespace), client.MatchingLabels{appLabel: w.Name}); err != nil {
		e.t.Fatalf("listing the pods of %s: %v", w.Key(), err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.CreationTimestamp.After(since) {
			out = append(out, p)
		}
	}
	return out
}

// observedSucceed proves from the scenario app's own log that every observed call went
// through under the policies: since they were applied, no call of any client failed,
// and after the enforcer was seen refusing, a whole tally window of each client's pods
// counts every one of its calls answered. The CronJob's proof is a run started after
// the refusal; a Job that finished before the policies cannot prove anything now.
func (e *env) observedSucceed(s *scenario.Scenario, applied, refused time.Time) {
	e.t.Helper()
	for i := range s.Workloads {
		w := &s.Workloads[i]
		want := callsOf(s, w)
		switch {
		case len(want) == 0:
			continue
		case w.Kind == kindJob:
			e.t.Logf("%s: a Job that ran before the policies; its calls are not made again", w.Key())
			continue
		}
		since := time.Time{}
		if !longRunning(w) {
			since = refused // a run of the CronJob that starts under the policies
		}
		excused := map[string]bool{} // the excused failures already logged
		e.waitFor(w.Key()+"'s calls answered under the policies", 3*time.Minute, func() (bool, string) {
			pods := e.pods(w, since)
			if len(pods) == 0 {
				return false, "no pod yet"
			}
			for _, p := range pods {
				ok, state := e.tallied(&p, want, applied, refused, excused)
				if !ok {
					return false, p.Name + ": " + state
				}
			}
			return true, ""
		})
	}
}

// callsOf lists w's calls as the app names them: HOST:PORT.
func callsOf(s *scenario.Scenario, w *scenario.Workload) []string {
	var out []string
	for _, c := range s.Calls {
		if s.Workload(c.From) == w {
			out = append(out, fmt.Sprintf("%s:%d", c.DNS, c.Port))
		}
	}
	return out
}

// The app's log lines: one call's counts in a tally, a failed call, a first answer.
var (
	tallyEntry  = regexp.MustCompile(`([^ ,]+:\d+) ok=(\d+) failed=(\d+)`)
	failedCall  = regexp.MustCompile(` call ([^ ]+:\d+): `)
	firstAnswer = regexp.MustCompile(` first answer from ([^ ]+:\d+)$`)
)

// tallied reads p's app log since applied and is true once two tallies were logged after
// refused (the second counts only calls made after it) and those count every call in
// want answered. It fails the test on a failed call, with one exception the Kubernetes
// documentation makes (NetworkPolicy, "Pod lifecycle"): a pod started under the policies
// may be isolated before the enforcer allows its calls, so its calls to a server may fail
// until the first one answers.
func (e *env) tallied(p *corev1.Pod, want []string, applied, refused time.Time, excused map[string]bool) (bool, string) {
	out, err := e.try("kubectl", "-n", p.Namespace, "logs", p.Name, "-c", "app", "--timestamps",
		"--since-time", applied.UTC().Truncate(time.Second).Format(time.RFC3339))
	if err != nil {
		return false, strings.TrimSpace(out)
	}
	startedUnder := p.CreationTimestamp.After(applied)
	answered := map[string]bool{}
	after := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		stamp, line, _ := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		if m := firstAnswer.FindStringSubmatch(line); m != nil {
			answered[m[1]] = true
		}
		if m := failedCall.FindStringSubmatch(line); m != nil {
			if startedUnder && !answered[m[1]] {
				if !excused[p.Name+line] {
					excused[p.Name+line] = true
					e.t.Logf("%s, started under the policies, before its first answer from %s: %s", p.Name, m[1], line)
				}
				continue
			}
			e.dumpLogs()
			e.t.Fatalf("%s: an observed call failed under the policies: %s", p.Name, line)
		}
		_, counts, ok := strings.Cut(line, " tally ")
		if !ok {
			continue
		}
		got := map[string]bool{}
		for _, m := range tallyEntry.FindAllStringSubmatch(counts, -1) {
			got[m[1]] = m[2] != "0"
		}
		if !at.After(refused) {
			continue
		}
		after++
		if after < 2 {
			continue
		}
		for _, c := range want {
			if !got[c] {
				return false, "no answered call to " + c + " in " + strings.TrimSpace(line)
			}
		}
		return true, ""
	}
	return false, fmt.Sprintf("%d tallies since the refusal, want 2", after)
}

// stopEnforcing stops kube-router (after the policies are deleted) and fails when one
// of its iptables chains or ipsets is left.
func (e *env) stopEnforcing() {
	e.t.Helper()
	out, err := e.try("hack/cluster/kube-router.sh", "stop")
	if err != nil {
		e.t.Errorf("stopping kube-router: %v\n%s", err, out)
		return
	}
	e.t.Log(strings.TrimSpace(out))
	saved, err := e.try("iptables-save")
	if err != nil {
		e.t.Errorf("iptables-save: %v\n%s", err, saved)
	}
	if n := strings.Count(saved, "KUBE-ROUTER"); n != 0 {
		e.t.Errorf("iptables-save names KUBE-ROUTER %d times after kube-router stopped", n)
	}
	sets, err := e.try("ipset", "list", "-n")
	if err != nil {
		e.t.Errorf("ipset list: %v\n%s", err, sets)
	}
	for _, set := range strings.Fields(sets) {
		if strings.HasPrefix(set, "KUBE-SRC-") || strings.HasPrefix(set, "KUBE-DST-") {
			e.t.Errorf("kube-router's ipset %s is left", set)
		}
	}
}
