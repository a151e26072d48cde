package scenario

import "testing"

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
