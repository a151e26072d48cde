package scenario

import "testing"

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
