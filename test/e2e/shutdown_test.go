package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

// reporter posts reports to the running manager as the agent would: its token, the
// CA the manager published, the ingest Service's name.
type reporter struct {
	sys    *scenario.System
	token  string
	client *http.Client
}

func newReporter(t *testing.T, sys *scenario.System) *reporter {
	t.Helper()
	ctx := context.Background()
	token, err := sys.AgentToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := sys.Client.Get(ctx, client.ObjectKey{Namespace: scenario.Namespace, Name: "intent-mapper-ca"}, cm); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cm.Data["ca.crt"])) {
		t.Fatal("no CA in the manager's ConfigMap")
	}
	return &reporter{sys: sys, token: token, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: scenario.IngestHost, MinVersion: tls.VersionTLS12},
	}}}
}

// connection reports one connection and returns the manager's answer.
func (r *reporter) connection(t *testing.T, from, to string, port uint16) int {
	t.Helper()
	rep := &reportv1.Report{Version: reportv1.Version, Node: scenario.Node, AgentTime: time.Now(), Connections: []reportv1.Connection{{
		Client: netip.MustParseAddr(from), Server: netip.MustParseAddr(to), Port: port, Time: time.Now(),
	}}}
	body, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+r.sys.IngestAddr()+"/v1/reports", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// A report answered 2xx is written even when the manager is stopped (SIGTERM) inside
// the flush interval, before it would have written it.
func TestAcceptedIsWrittenOnGracefulStop(t *testing.T) {
	ctx := context.Background()
	sc, err := scenario.Load(filepath.Join("..", "..", "hack", "demo", "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs("../../bin/k8s")
	}
	crds, _ := filepath.Abs("../../config/crd/bases")
	dir := t.TempDir()
	// A minute between two writes of one object: the second report can only reach
	// the API server through the drain on stop.
	sys, err := scenario.StartSystem(ctx, scenario.SystemOptions{
		Binary: binary, Assets: assets, CRDs: crds, Dir: dir, ManagerArgs: []string{"--flush-interval", "1m"},
	})
	if sys != nil {
		t.Cleanup(sys.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(dir, "manager.log"))
			t.Logf("manager.log (last 4 KiB):\n%s", raw[max(0, len(raw)-4096):])
		}
	})
	if err := sc.Stage(ctx, sys.Client, scenario.Node); err != nil {
		t.Fatal(err)
	}
	clientIP, nginxIP := sc.Workload("client").IP, sc.Workload("nginx").IP
	rep := newReporter(t, sys)
	ports := func() []int32 {
		di := &discoveryv1alpha1.DiscoveredIntents{}
		if err := sys.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "client"}, di); err != nil {
			return nil
		}
		if c := di.Status.Find("default", "nginx"); c != nil {
			return c.Ports
		}
		return nil
	}

	// Sent again until written: the manager's caches may not hold the pods yet.
	waitFor(t, "the first report written", func() (bool, string) {
		if p := ports(); slices.Contains(p, 80) {
			return true, ""
		}
		code := rep.connection(t, clientIP, nginxIP, 80)
		return false, fmt.Sprintf("answered %d, ports %v", code, ports())
	})
	if code := rep.connection(t, clientIP, nginxIP, 8443); code != http.StatusAccepted {
		t.Fatalf("second report answered %d", code)
	}
	if p := ports(); slices.Contains(p, 8443) {
		t.Fatalf("port 8443 written before the stop (%v): the test would prove nothing", p)
	}
	if err := sys.TerminateManager(30 * time.Second); err != nil {
		t.Fatalf("manager on SIGTERM: %v", err)
	}
	if p := ports(); !slices.Contains(p, 8443) {
		t.Fatalf("after SIGTERM the accepted port 8443 is not in the API server: ports %v", p)
	}
	if err := sys.StartManager(ctx); err != nil {
		t.Fatal(err)
	}
	if p := ports(); !slices.Contains(p, 80) || !slices.Contains(p, 8443) {
		t.Fatalf("after the restart: ports %v, want 80 and 8443", p)
	}
}
