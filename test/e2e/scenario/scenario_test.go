package scenario

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func TestLoadAndExpect(t *testing.T) {
	s, err := Load("../../../hack/demo/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := s.Expect()
	if len(e) != 2 || e[0].Client != "default/client" || e[0].Paths["/client-path"][0] != "GET" || e[1].Paths["/client2-path"][0] != "POST" {
		t.Errorf("expectations %+v", e)
	}
	if !s.Unprivileged() || s.Workload("nginx").Port != 8080 || s.Calls[0].Port != 8080 {
		t.Errorf("without root, port 80 moves to 8080: %+v", s.Workloads)
	}
	if _, err := Load("scenario.go"); err == nil {
		t.Error("a file that is not a scenario loads")
	}
}

func TestScoreFailsOnNothing(t *testing.T) {
	s, err := Load("../../../hack/demo/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if score := s.Compare(nil); score.Perfect() || score.Recall() != 0 || score.Precision() != 0 {
		t.Errorf("nothing found must fail: %s", score)
	}
	found := []discoveryv1alpha1.DiscoveredIntents{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "client"},
		Status:     discoveryv1alpha1.DiscoveredIntentsStatus{Calls: []discoveryv1alpha1.Call{{Namespace: "default", Name: "nginx", Type: "tcp", Ports: []int32{80}}}},
	}}
	empty := &Scenario{Name: "empty"}
	if score := empty.Compare(found); score.Perfect() || score.Recall() != 0 {
		t.Errorf("nothing expected must fail: %s", score)
	}
	if score := empty.Compare(nil); score.Perfect() {
		t.Errorf("nothing expected and nothing found must fail: %s", score)
	}
}

func TestEveryKindLoads(t *testing.T) {
	s, err := Load("../../../hack/demo/kinds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, w := range s.Workloads {
		kinds[w.Kind] = true
	}
	if len(kinds) != 6 {
		t.Errorf("kinds staged: %v", kinds)
	}
}
