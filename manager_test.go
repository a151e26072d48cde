package main

import "testing"

// TestManagerWriteBudgetFlags: the API client's rate and the writers are the user's to
// set, under kube-controller-manager's flag names, with defaults a cold start can use.
func TestManagerWriteBudgetFlags(t *testing.T) {
	o, err := parseManagerFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS < 100 || o.kubeAPIBurst < int(o.kubeAPIQPS) || o.dataPath.Workers < 8 {
		t.Errorf("defaults too low for a cold start: qps %v burst %d workers %d", o.kubeAPIQPS, o.kubeAPIBurst, o.dataPath.Workers)
	}
	o, err = parseManagerFlags([]string{"--kube-api-qps=35.5", "--kube-api-burst=70", "--workers=3"})
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS != 35.5 || o.kubeAPIBurst != 70 || o.dataPath.Workers != 3 {
		t.Errorf("flags not taken: qps %v burst %d workers %d", o.kubeAPIQPS, o.kubeAPIBurst, o.dataPath.Workers)
	}
}
