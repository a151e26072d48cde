package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/intent-mapper/intent-mapper/controllers/ingest"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
)

// drainPasses bounds the attempts per client: a new client takes two (create, then
// merge), a conflict with a last reconcile one more.
const drainPasses = 4

var drainLeft = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "intentmapper_shutdown_unwritten_clients",
	Help: "Clients whose accepted observations were still not written when the last shutdown's budget ran out.",
})

func init() { metrics.Registry.MustRegister(drainLeft) }

// drainer writes every accepted observation when the manager stops gracefully: once
// ingest has answered its last report, and before the leader lease is released (the
// manager releases it only after its leader runnables have returned).
type drainer struct {
	ingest     *ingest.Server
	reconciler *DiscoveredIntentsReconciler
	// reader reads the API server itself: the cache may not hold an object created
	// a moment ago, and a missing object would be taken for a deleted one.
	reader client.Reader
	budget time.Duration
}

// NeedLeaderElection: only the leader holds pending calls.
func (d *drainer) NeedLeaderElection() bool { return true }

// Start waits for the manager to stop, then drains within the budget.
func (d *drainer) Start(ctx context.Context) error {
	<-ctx.Done()
	drainCtx, cancel := context.WithTimeout(context.Background(), d.budget)
	defer cancel()
	log := logf.FromContext(ctx).WithName("drain")
	select {
	case <-d.ingest.Stopped():
	case <-drainCtx.Done():
	}
	left := d.drain(drainCtx)
	drainLeft.Set(float64(left))
	if left > 0 {
		log.Info("shutdown budget spent: accepted observations not written", "clients", left, "budget", d.budget)
	} else {
		log.Info("every accepted observation is written")
	}
	return nil
}

// drain writes pending calls until none is left, the passes are spent or ctx ends,
// and returns the number of clients left unwritten.
func (d *drainer) drain(ctx context.Context) int {
	store := d.reconciler.Pending
	for range drainPasses {
		keys := store.Keys()
		if len(keys) == 0 || ctx.Err() != nil {
			return len(keys)
		}
		for _, k := range keys {
			if ctx.Err() != nil {
				break
			}
			_, _ = d.reconciler.reconcile(ctx, requestFor(k), d.reader, true)
		}
	}
	return len(store.Keys())
}

func requestFor(k pending.Key) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKey{Namespace: k.Namespace, Name: k.Name}}
}
