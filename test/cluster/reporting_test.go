package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// intentMapper reads IntentMapper cluster.
func (e *env) intentMapper() *discoveryv1alpha1.IntentMapper {
	e.t.Helper()
	im := &discoveryv1alpha1.IntentMapper{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Name: discoveryv1alpha1.SingletonName}, im); err != nil {
		e.t.Fatalf("reading IntentMapper %s: %v", discoveryv1alpha1.SingletonName, err)
	}
	return im
}

// conditionOf is "STATUS REASON: MESSAGE" of condition t, or "none".
func conditionOf(im *discoveryv1alpha1.IntentMapper, t string) (metav1.ConditionStatus, string) {
	c := meta.FindStatusCondition(im.Status.Conditions, t)
	if c == nil {
		return "", t + " none"
	}
	return c.Status, fmt.Sprintf("%s=%s %s: %s", t, c.Status, c.Reason, c.Message)
}

// agentsReport waits until IntentMapper says every node's agent reports: AgentsReporting
// True and status.reportingAgents equal to the number of nodes.
func (e *env) agentsReport(limit time.Duration) {
	e.t.Helper()
	var nodes corev1.NodeList
	if err := e.c.List(context.Background(), &nodes); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("AgentsReporting True for every node", limit, func() (bool, string) {
		im := e.intentMapper()
		status, text := conditionOf(im, "AgentsReporting")
		ok := status == metav1.ConditionTrue && int(im.Status.ReportingAgents) == len(nodes.Items)
		return ok, fmt.Sprintf("%s; reportingAgents %d of %d nodes", text, im.Status.ReportingAgents, len(nodes.Items))
	})
}

// agentPod is the one agent pod (the cluster has one node): its name, its container's
// ID in containerd, and the container's restart count.
func (e *env) agentPod() (name, containerID string, restarts int32) {
	e.t.Helper()
	var pods corev1.PodList
	if err := e.c.List(context.Background(), &pods, client.InNamespace(systemNS), client.MatchingLabels{"app.kubernetes.io/component": "agent"}); err != nil {
		e.t.Fatal(err)
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) != 1 {
		e.t.Fatalf("want one agent pod with one container, have %d pods", len(pods.Items))
	}
	p := pods.Items[0]
	st := p.Status.ContainerStatuses[0]
	return p.Name, strings.TrimPrefix(st.ContainerID, "containerd://"), st.RestartCount
}

// taskPID is the host PID of a container's main process, as containerd knows it.
func (e *env) taskPID(containerID string) int {
	e.t.Helper()
	out := e.run("bash", "-c", `source hack/cluster/env.sh && "${CTR[@]}" tasks ls`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == containerID {
			pid, err := strconv.Atoi(f[1])
			if err != nil || pid <= 1 {
				e.t.Fatalf("containerd's task %s has PID %q", containerID, f[1])
			}
			return pid
		}
	}
	e.t.Fatalf("containerd runs no task %s:\n%s", containerID, out)
	return 0
}

// processState is the state letter of /proc/PID/status ("S", "R", "T" stopped).
func processState(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "gone"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.Fields(v)[0]
		}
	}
	return "unknown"
}

// hungAgentIsTold stops the agent's process while its pod keeps running, and checks
// that IntentMapper tells a running agent from a reporting one: AgentsReporting turns
// False while the pod is still Ready (and Available still counts it); the heartbeat
// probe then takes the pod out of Ready and Available turns False; once the process
// continues, it reports again without a restart.
//
// Windows (reports every 10s): AgentsReporting counts reports within three intervals
// (30s) and is recomputed every 10s; the probe allows a heartbeat 2×10s+45s old, and
// readiness fails after 3 probes 10s apart, liveness after 6. So AgentsReporting goes
// False within about 40s, Ready about 95s after the stop, and the kubelet would restart
// the container about 125s after it: the process is continued before that.
func (e *env) hungAgentIsTold(t *testing.T) {
	e = e.with(t)
	e.agentsReport(2 * time.Minute)
	pod, id, restarts := e.agentPod()
	pid := e.taskPID(id)
	t.Logf("stopping agent pod %s's process %d (SIGSTOP): it hangs, its pod keeps running", pod, pid)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	resume := func() {
		if !continued {
			continued = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // a failed wait must not leave the agent stopped
	// The signal is delivered when the process next runs.
	e.waitFor(fmt.Sprintf("agent process %d stopped", pid), 20*time.Second, func() (bool, string) {
		st := processState(pid)
		return st == "T", "state " + st
	})
	stopped := time.Now()

	var silent *discoveryv1alpha1.IntentMapper
	e.waitFor("AgentsReporting False for the hung agent", 90*time.Second, func() (bool, string) {
		im := e.intentMapper()
		status, text := conditionOf(im, "AgentsReporting")
		if status == metav1.ConditionFalse {
			silent = im
		}
		return silent != nil, text
	})
	_, text := conditionOf(silent, "AgentsReporting")
	if c := meta.FindStatusCondition(silent.Status.Conditions, "AgentsReporting"); c.Reason != "AgentsSilent" || !strings.Contains(c.Message, "im-node") || silent.Status.ReportingAgents != 0 {
		t.Errorf("a hung agent: %s, reportingAgents %d; want reason AgentsSilent naming im-node, 0 reporting", text, silent.Status.ReportingAgents)
	}
	// The defect of issue 13: the pod still runs and is Ready, so Available alone counts it.
	avail, atext := conditionOf(silent, "Available")
	t.Logf("%s after %s; meanwhile %s (readyAgents %d)", text, time.Since(stopped).Round(time.Second), atext, silent.Status.ReadyAgents)
	if avail != metav1.ConditionTrue || silent.Status.ReadyAgents != 1 {
		t.Errorf("when AgentsReporting turned False the hung agent's pod should still be Ready and counted by Available: %s, readyAgents %d", atext, silent.Status.ReadyAgents)
	}

	// The heartbeat probe sees the report loop stuck: the pod leaves Ready.
	e.waitFor("Available False: the heartbeat probe took the hung agent out of Ready", 2*time.Minute, func() (bool, string) {
		status, text := conditionOf(e.intentMapper(), "Available")
		return status == metav1.ConditionFalse, text
	})
	if st := processState(pid); st != "T" {
		t.Fatalf("agent process %d in state %s before SIGCONT: restarted already?", pid, st)
	}
	t.Logf("continuing agent process %d (SIGCONT) %s after the stop", pid, time.Since(stopped).Round(time.Second))
	resume()
	e.agentsReport(90 * time.Second)
	e.waitFor("Available True again", time.Minute, func() (bool, string) {
		status, text := conditionOf(e.intentMapper(), "Available")
		return status == metav1.ConditionTrue, text
	})
	if _, id2, restarts2 := e.agentPod(); id2 != id || restarts2 != restarts {
		t.Errorf("the agent recovered by a restart (container %s, %d restarts; was %s, %d): SIGCONT should have been enough", id2, restarts2, id, restarts)
	} else {
		t.Logf("the same process %d reports again: recovered by SIGCONT, no restart (%d restarts)", pid, restarts)
	}
}
