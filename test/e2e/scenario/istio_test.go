package scenario

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIstioNamesWorkloadsAsItsInjectorDoes(t *testing.T) {
	owned := func(name, generate, kind, owner string, labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, GenerateName: generate, Labels: labels}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, Controller: ptr.To(true)}}
		}
		return p
	}
	for _, tc := range []struct {
		pod             *corev1.Pod
		workload, canon string
	}{
		{owned("web-6d4cf56db6-x4m2q", "web-6d4cf56db6-", "ReplicaSet", "web-6d4cf56db6", map[string]string{"pod-template-hash": "6d4cf56db6", "app": "shop"}), "web", "shop"},
		{owned("db-0", "db-", "StatefulSet", "db", nil), "db", "db"},
		{owned("logs-k8d2f", "logs-", "DaemonSet", "logs", nil), "logs", "logs"},
		{owned("report-29390400-r7n4c", "report-29390400-", "Job", "report-29390400", nil), "report", "report"},
		{owned("migrate-r7n4c", "migrate-", "Job", "migrate", nil), "migrate", "migrate"},
		{owned("debug", "", "", "", map[string]string{"app": "toolbox"}), "debug", "toolbox"},
		{owned("debug-0", "", "", "", nil), "debug-0", "debug-0"},
		{owned("orphan-x", "orphan-", "", "", nil), "orphan-x", "orphan-x"},
	} {
		if got := istioWorkload(tc.pod); got != tc.workload {
			t.Errorf("%s: workload %q, want %q", tc.pod.Name, got, tc.workload)
		}
		if got := istioCanonicalService(tc.pod); got != tc.canon {
			t.Errorf("%s: canonical service %q, want %q", tc.pod.Name, got, tc.canon)
		}
	}
}
