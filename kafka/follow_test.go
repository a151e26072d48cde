package kafka

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubelet serves a pod's log as the kubelet does through the API server: timestamped
// lines from sinceTime (whole seconds), following. The log grows by perConn lines
// between connections, and each connection drops after what is there.
type kubelet struct {
	mu      sync.Mutex
	lines   []string // "TIMESTAMP text"
	opened  int
	perConn int
}

func (k *kubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/namespaces/kafka/pods/broker-0/log" || r.URL.Query().Get("follow") != "true" || r.URL.Query().Get("timestamps") != "true" {
		http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	var since time.Time
	if s := r.URL.Query().Get("sinceTime"); s != "" {
		since, _ = time.Parse(time.RFC3339, s)
	}
	k.mu.Lock()
	k.opened++
	written := min(len(k.lines), k.opened*k.perConn)
	var send []string
	for _, l := range k.lines[:written] {
		at, _ := time.Parse(time.RFC3339Nano, l[:strings.IndexByte(l, ' ')])
		if !at.Before(since) {
			send = append(send, l)
		}
	}
	k.mu.Unlock()
	for _, l := range send {
		_, _ = fmt.Fprintln(w, l)
	}
	// the connection ends here: the follower must reconnect for the rest
}

func TestFollowerResumesWithoutCountingTwice(t *testing.T) {
	base := time.Date(2024, 6, 1, 8, 0, 0, 0, time.UTC)
	k := &kubelet{perConn: 3}
	for i := range 8 { // several lines share a second, so sinceTime brings some back
		at := base.Add(time.Duration(i) * 400 * time.Millisecond)
		k.lines = append(k.lines, fmt.Sprintf("%s line-%d", at.Format(time.RFC3339Nano), i))
	}
	k.lines = append(k.lines, base.Add(5*time.Second).Format(time.RFC3339Nano)+" "+strings.Repeat("x", maxLogLine+10))
	srv := httptest.NewServer(k)
	defer srv.Close()

	cs := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	f := &Follower{Source: KubeLogs{Client: cs}, Namespace: "kafka", Pod: "broker-0", Retry: 10 * time.Millisecond, From: base.Add(-time.Second)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	go f.Run(ctx, func(_ time.Time, line []byte) {
		mu.Lock()
		got = append(got, string(line))
		mu.Unlock()
	})
	for ctx.Err() == nil {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 8 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few more reconnects, which must add nothing
	cancel()
	mu.Lock()
	defer mu.Unlock()
	want := []string{"line-0", "line-1", "line-2", "line-3", "line-4", "line-5", "line-6", "line-7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want each line once, in order: %v", got, want)
	}
	if k.opened < 3 {
		t.Errorf("the stream was opened %d times; the test needs reconnects", k.opened)
	}
}
