package enqueue

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A burst far larger than any channel buffer, with nobody reading, returns at once and
// leaves one request per object: the sender never waits on the controller.
func TestBurstIsCoalescedWithoutAReader(t *testing.T) {
	q := &Queue{}
	for i := range 100_000 {
		q.Add("shop", fmt.Sprintf("client-%d", i%50))
	}
	if got := q.Held(); got != 50 {
		t.Fatalf("held %d requests before the controller started, want 50", got)
	}
	wq := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer wq.ShutDown()
	if err := q.Source().Start(context.Background(), wq); err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		q.Add("shop", fmt.Sprintf("client-%d", i%50))
	}
	if q.Held() != 0 || wq.Len() != 50 {
		t.Fatalf("after start: held %d, queued %d; want 0 and 50", q.Held(), wq.Len())
	}
	req, _ := wq.Get()
	if req.Namespace != "shop" || req.Name == "" {
		t.Fatalf("queued %+v", req)
	}
	wq.Done(req)
}

func TestRequestNamesTheObject(t *testing.T) {
	q := &Queue{}
	wq := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer wq.ShutDown()
	if err := q.Source().Start(context.Background(), wq); err != nil {
		t.Fatal(err)
	}
	q.Add("shop", "client")
	req, _ := wq.Get()
	if want := (types.NamespacedName{Namespace: "shop", Name: "client"}); req.NamespacedName != want {
		t.Fatalf("got %v, want %v", req.NamespacedName, want)
	}
}

// BenchmarkEnqueueBaseline is what the ingest handlers did before: a send on a
// buffered channel that a reader drains.
func BenchmarkEnqueueBaseline(b *testing.B) {
	ch := make(chan reconcile.Request, 1024)
	go func() {
		for range ch {
		}
	}()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "client"}}
	for b.Loop() {
		ch <- req
	}
	close(ch)
}

func BenchmarkEnqueue(b *testing.B) {
	q := &Queue{}
	wq := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer wq.ShutDown()
	_ = q.Source().Start(context.Background(), wq)
	for b.Loop() {
		q.Add("shop", "client")
	}
}
