// Package enqueue hands reconcile requests to a controller without ever making the
// sender wait: requests go straight into the controller's work queue, which holds each
// object once however often it is asked for, and those made before the controller
// starts are held (once each) until it does.
package enqueue

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Queue is safe for concurrent use. Its zero value is ready.
type Queue struct {
	mu    sync.Mutex
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
	held  map[reconcile.Request]struct{}
}

// Add asks for the object namespace/name to be reconciled. It never blocks on the
// controller: at most it takes the queue's lock.
func (q *Queue) Add(namespace, name string) {
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}}
	q.mu.Lock()
	queue := q.queue
	if queue == nil {
		if q.held == nil {
			q.held = map[reconcile.Request]struct{}{}
		}
		q.held[req] = struct{}{}
	}
	q.mu.Unlock()
	if queue != nil {
		queue.Add(req)
	}
}

// Held is the number of distinct requests waiting for the controller to start.
func (q *Queue) Held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.held)
}

// Source is the controller's end: when the controller starts, it receives the held
// requests and every later one.
func (q *Queue) Source() source.Source {
	return source.Func(func(_ context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.queue = queue
		for req := range q.held {
			queue.Add(req)
		}
		q.held = nil
		return nil
	})
}
