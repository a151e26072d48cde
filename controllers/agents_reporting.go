package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// ConditionAgentsReporting says whether every scheduled agent's reports arrive:
// an agent can be Ready and still send nothing.
const ConditionAgentsReporting = "AgentsReporting"

// ReportSource is what ingest knows: when each node's agent last reported, and since
// when this replica accepts reports at all.
type ReportSource interface {
	LastReport(node string) (time.Time, bool)
	LeadingSince() time.Time
}

// agentReports is who of the scheduled agents reported within the window.
type agentReports struct {
	nodes, reporting int32
	silent           []string
	window           time.Duration
	// starting: reports have been accepted here for less than a window.
	starting bool
}

// reportWindow is three report intervals: one late report does not make an agent silent.
func reportWindow(spec *discoveryv1alpha1.IntentMapperSpec) time.Duration {
	d, _ := time.ParseDuration(duration(spec.Intervals.Report, 10*time.Second))
	return 3 * d
}

// agentReports compares the nodes agent pods are scheduled on with the nodes whose
// reports arrived lately.
func (r *IntentMapperReconciler) agentReports(ctx context.Context, im *discoveryv1alpha1.IntentMapper) (agentReports, error) {
	out := agentReports{window: reportWindow(&im.Spec)}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(r.Agent.Namespace), client.MatchingLabels(agentLabels())); err != nil {
		return out, fmt.Errorf("listing agent pods: %w", err)
	}
	now := r.now()
	out.starting = now.Sub(r.Reports.LeadingSince()) < out.window
	var nodes []string
	for i := range pods.Items {
		if n := pods.Items[i].Spec.NodeName; n != "" && pods.Items[i].DeletionTimestamp.IsZero() {
			nodes = append(nodes, n)
		}
	}
	slices.Sort(nodes)
	for _, node := range slices.Compact(nodes) {
		out.nodes++
		if at, ok := r.Reports.LastReport(node); ok && now.Sub(at) <= out.window {
			out.reporting++
		} else {
			out.silent = append(out.silent, node)
		}
	}
	return out, nil
}

func (r *IntentMapperReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// setReportingStatus writes the count and the AgentsReporting condition.
func setReportingStatus(im *discoveryv1alpha1.IntentMapper, rep agentReports) {
	im.Status.ReportingAgents = rep.reporting
	c := metav1.Condition{Type: ConditionAgentsReporting, ObservedGeneration: im.Generation}
	counts := fmt.Sprintf("%d of %d agents reported in the last %s", rep.reporting, rep.nodes, rep.window)
	switch {
	case rep.nodes == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "NoAgents", "no agent pod is scheduled on any node"
	case len(rep.silent) == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "AgentsReporting", counts
	case rep.starting:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, "Waiting", counts+"; this manager has only just started to accept reports"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "AgentsSilent", counts+"; silent: "+nodeList(rep.silent)+
			" (see the agents' logs and intentmapper_agent_reports_total)"
	}
	meta.SetStatusCondition(&im.Status.Conditions, c)
}

// nodeList names up to five nodes, and counts the rest.
func nodeList(nodes []string) string {
	const shown = 5
	if len(nodes) <= shown {
		return strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(nodes[:shown], ", "), len(nodes)-shown)
}
