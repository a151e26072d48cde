package scenario

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func TestClusterScenarioExpectations(t *testing.T) {
	s, err := Load("../../cluster/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Expected{}
	for _, e := range s.Expect() {
		want[e.Client+" "+e.Server] = e
	}
	if e, ok := want["shop/billing-api /payments.partner.example"]; !ok || e.Type != "internet" || e.Ports[0] != 8443 {
		t.Errorf("the labelled workload's outside call: %+v (all: %v)", e, want)
	}
	if e, ok := want["shop/web shop/billing-api"]; !ok || e.Service != "billing" {
		t.Errorf("a server named by its label, reached through its Service: %+v", e)
	}
	if e := want["shop/toolbox shop/web"]; e.Type != "http" || e.Paths["/healthz"][0] != "GET" {
		t.Errorf("the bare pod's HTTP call: %+v", e)
	}
	if _, err := s.StartTraffic(TrafficOptions{}); err == nil {
		t.Error("the loopback harness accepted a scenario with outside servers")
	}
}

func TestScoreFailsOnNothing(t *testing.T) {
	s, err := Load("../../../hack/demo/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if score := s.Compare(nil); score.Recall() != 0 || score.Precision() != 0 {
		t.Errorf("nothing found scores %s", score)
	}
	empty := &Scenario{}
	found := []discoveryv1alpha1.DiscoveredIntents{{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default"},
		Status: discoveryv1alpha1.DiscoveredIntentsStatus{Calls: []discoveryv1alpha1.Call{
			{Name: "nginx", Namespace: "default", Type: discoveryv1alpha1.CallTCP, Ports: []int32{80}},
		}},
	}}
	if score := empty.Compare(found); score.Recall() != 0 || score.Precision() != 0 {
		t.Errorf("a scenario expecting nothing scores %s", score)
	}
	if score := empty.Compare(nil); score.Recall() == 1 || score.Precision() == 1 {
		t.Errorf("nothing expected and nothing found scores %s", score)
	}
}
