package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is stderr shared by the agent's goroutines and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// silentAPIServer accepts connections and never answers, like an API server behind a
// broken network path.
func silentAPIServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// waitFor polls cond for at most a minute: a bound on a wait, not a timed assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting: %s", what)
}

func TestAnAgentWhoseMeshSourceHangsStillReportsAndPassesItsProbe(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, silentAPIServer(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	beat := filepath.Join(dir, "heartbeat")
	probe := func() (int, string) {
		var out bytes.Buffer
		code := Main([]string{"probe", "--heartbeat-file", beat, "--max-age", "30s"}, &out, &out)
		return code, out.String()
	}
	if code, out := probe(); code != 1 || !strings.Contains(out, "not started reporting") {
		t.Fatalf("before the agent runs, the probe must fail and say why: %d %q", code, out)
	}

	var o options
	stderr := &lockedBuffer{}
	if err := flags(&o, stderr).Parse([]string{
		"--node", "node-a", "--dns=false", "--connections=false", "--istio", "--kubeconfig", kubeconfig,
		"--mesh-sync-timeout", "500ms", "--report-interval", "100ms", "--metrics-bind-address", "0",
		"--manager-url", "https://127.0.0.1:1/v1/reports", "--heartbeat-file", beat,
	}); err != nil {
		t.Fatal(err)
	}
	o.report.Beat = beatTo(beat, stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, stderr) }()

	waitFor(t, "the probe to pass while the API server is silent", func() bool { code, _ := probe(); return code == 0 })
	if !strings.Contains(stderr.String(), "not listed within 500ms; reporting without the mesh source") {
		t.Errorf("the agent must say it goes on without the mesh source: %q", stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
