// Package controllers holds intent-mapper's reconcilers.
package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/budget"
	"github.com/intent-mapper/intent-mapper/controllers/enqueue"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
	"github.com/intent-mapper/intent-mapper/controllers/written"
	"github.com/intent-mapper/intent-mapper/declared"
)

var (
	writesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_status_writes_total",
		Help: "DiscoveredIntents status writes.",
	})
	createsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_objects_created_total",
		Help: "DiscoveredIntents created for newly seen clients.",
	})
	conflictsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_status_write_conflicts_total",
		Help: "DiscoveredIntents status writes refused for a conflict; their calls are kept and retried.",
	})
	refusedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_status_writes_refused_total",
		Help: "DiscoveredIntents status writes the API server refused as invalid or too large; their observations are dropped, not retried.",
	})
	trimmedPaths = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_paths_trimmed_total",
		Help: "HTTP paths dropped, least recently seen first, to keep objects under the size budget.",
	})
	trimmedCalls = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_calls_trimmed_total",
		Help: "Calls dropped, least recently seen first, to keep objects under the size budget.",
	})
	writeDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "intentmapper_observation_write_delay_seconds",
		Help:    "Time from the oldest observation in a write to the write.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 12),
	})
)

func init() {
	metrics.Registry.MustRegister(writesTotal, createsTotal, conflictsTotal, refusedTotal, trimmedPaths, trimmedCalls, writeDelay)
}

// DiscoveredIntentsReconciler materialises each client's DiscoveredIntents: it creates
// the object when a client is first seen, merges pending calls into status at most
// once per flush interval, and keeps the summary, Ready and observedGeneration.
type DiscoveredIntentsReconciler struct {
	client.Client
	Pending *pending.Store
	// Queue carries the clients that have new pending calls, or new declarations.
	Queue    *enqueue.Queue
	Settings *Settings
	Declared *DeclaredWatch
	Now      func() time.Time
	// SizeBudget bounds one stored object, in bytes (budget.Default when zero).
	SizeBudget int
	// Workers is how many objects are written at once.
	Workers int
	// Written holds each object as last written or read; APIReader reads the API
	// server itself, to load it and read again what someone else changed.
	Written   *written.Store
	APIReader client.Reader
}

// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=discoveredintents,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=discoveredintents/status,verbs=get;update

// Reconcile brings one DiscoveredIntents up to date and writes its status at most once.
func (r *DiscoveredIntentsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.reconcile(ctx, req, r.Client, false)
}

// reconcile reads the object's metadata through reader; draining, it writes at
// once, whatever the flush interval says.
func (r *DiscoveredIntentsReconciler) reconcile(ctx context.Context, req ctrl.Request, reader client.Reader, draining bool) (_ ctrl.Result, reterr error) {
	key := pending.Key{Namespace: req.Namespace, Name: req.Name}
	now := r.Now()
	if err := r.Written.Load(ctx, r.APIReader); err != nil {
		return ctrl.Result{}, err
	}
	di, err := r.current(ctx, req.NamespacedName, reader)
	if err != nil {
		return ctrl.Result{}, err
	}
	if di == nil {
		r.Written.Forget(req.NamespacedName)
		if r.Pending.Gone(key, now) {
			return ctrl.Result{}, nil // deleted: a reset, pending calls dropped
		}
		if di, err = r.create(ctx, key); di == nil || err != nil {
			return ctrl.Result{}, err
		}
	}
	if !di.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	r.Pending.Seen(key)
	if di.Spec.Workload.Name == di.Name {
		r.Pending.Claim(key, di.Spec.Workload.Kind)
	}

	merge, flush := r.Settings.Get()
	if draining {
		flush = 0
	}
	result, batch := r.takePending(key, now, merge.Retention, flush)
	before := di.DeepCopy()
	defer func() {
		err := r.writeStatus(ctx, before, di, batch, now)
		switch {
		case refused(err):
			r.refusedWrite(ctx, before, err) // dropped, not retried: it would be refused again
		case err != nil:
			r.Pending.Restore(key, batch)
			reterr = kerrors.NewAggregate([]error{reterr, err})
		}
	}()

	reconcileCalls(di, batch, merge, now)
	reconcileSize(di, r.sizeBudget())
	reconcileDeclared(di, r.Declared)
	reconcileSummary(di)
	reconcileHTTPPaths(di)
	reconcileReady(di)
	return result, nil
}

// current returns the client's object as the API server holds it, or nil if there is
// none. Its metadata comes through reader (the metadata cache); the rest from what
// the manager last wrote or read, read again only when someone else changed it.
func (r *DiscoveredIntentsReconciler) current(ctx context.Context, name types.NamespacedName, reader client.Reader) (*discoveryv1alpha1.DiscoveredIntents, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(discoveryv1alpha1.GroupVersion.WithKind("DiscoveredIntents"))
	err := reader.Get(ctx, name, m)
	if apierrors.IsNotFound(err) && r.Written.Has(name) && reader != r.APIReader {
		err = r.APIReader.Get(ctx, name, m) // the cache may not hold an object created a moment ago
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	di, ok, err := r.Written.Get(name, m.ResourceVersion, m.Generation)
	if err != nil || !ok {
		di = &discoveryv1alpha1.DiscoveredIntents{}
		if err := r.APIReader.Get(ctx, name, di); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		if err := r.Written.Read(di); err != nil {
			return nil, err
		}
	}
	di.DeletionTimestamp = m.DeletionTimestamp
	return di, nil
}

// takePending takes the client's pending calls, unless the client was written less
// than a flush interval ago: then it asks to come back when the interval is over.
func (r *DiscoveredIntentsReconciler) takePending(key pending.Key, now time.Time, retention, flush time.Duration) (ctrl.Result, *pending.Batch) {
	var result ctrl.Result
	if retention > 0 {
		result.RequeueAfter = max(min(retention/4, time.Hour), flush)
	}
	if wait := r.Pending.Wait(key, now, flush); wait > 0 && r.Pending.Pending(key) {
		result.RequeueAfter = wait
		return result, nil
	}
	return result, r.Pending.Take(key, now)
}

// create makes the object of a client seen for the first time (or again after a
// reset), and returns it for its status to be written at once: the API server ignores
// status on create, so a new client costs two requests.
func (r *DiscoveredIntentsReconciler) create(ctx context.Context, key pending.Key) (*discoveryv1alpha1.DiscoveredIntents, error) {
	name, kind, ok := r.Pending.Workload(key)
	if !ok {
		return nil, nil
	}
	di := &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: name, Kind: kind}},
	}
	err := r.Create(ctx, di)
	switch {
	case apierrors.IsAlreadyExists(err):
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(di), di); err != nil {
			return nil, err
		}
		return di, r.Written.Read(di)
	case err != nil:
		return nil, fmt.Errorf("creating DiscoveredIntents %s/%s: %w", key.Namespace, key.Name, err)
	}
	createsTotal.Inc()
	return di, r.Written.Wrote(di)
}

// reconcileCalls merges pending calls into status, applies retention, and sorts.
func reconcileCalls(di *discoveryv1alpha1.DiscoveredIntents, batch *pending.Batch, opts pending.MergeOptions, now time.Time) {
	batch.MergeInto(&di.Status, opts, now)
	di.Status.Sort()
}

func (r *DiscoveredIntentsReconciler) sizeBudget() int {
	if r.SizeBudget > 0 {
		return r.SizeBudget
	}
	return budget.Default
}

// reconcileSize keeps the object under its size budget, dropping the least recently
// seen paths, then calls, and says so in the Truncated condition.
func reconcileSize(di *discoveryv1alpha1.DiscoveredIntents, limit int) {
	d := budget.Trim(&di.Status, limit)
	if d.Paths == 0 && d.Calls == 0 {
		return
	}
	trimmedPaths.Add(float64(d.Paths))
	trimmedCalls.Add(float64(d.Calls))
	meta.SetStatusCondition(&di.Status.Conditions, metav1.Condition{
		Type: discoveryv1alpha1.ConditionTruncated, Status: metav1.ConditionTrue, Reason: discoveryv1alpha1.ReasonSizeBudget,
		ObservedGeneration: di.Generation,
		Message: fmt.Sprintf("%d paths and %d calls, the least recently seen, dropped to stay under %d bytes",
			d.Paths, d.Calls, limit),
	})
}

// refused tells a write the API server will refuse whatever the retries: invalid, or
// too large for it or for etcd.
func refused(err error) bool {
	return err != nil && (apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		strings.Contains(err.Error(), "request is too large"))
}

// refusedWrite counts a refused write and, if the API server takes that, says so on
// the object as it now is.
func (r *DiscoveredIntentsReconciler) refusedWrite(ctx context.Context, before *discoveryv1alpha1.DiscoveredIntents, err error) {
	refusedTotal.Inc()
	logf.FromContext(ctx).Error(err, "status write refused: its observations are dropped")
	cond := metav1.Condition{
		Type: discoveryv1alpha1.ConditionWritten, Status: metav1.ConditionFalse, Reason: discoveryv1alpha1.ReasonRefused,
		ObservedGeneration: before.Generation, Message: truncate(err.Error(), 1024),
	}
	key := client.ObjectKeyFromObject(before)
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current := &discoveryv1alpha1.DiscoveredIntents{}
		if err := r.APIReader.Get(ctx, key, current); err != nil {
			return err
		}
		meta.SetStatusCondition(&current.Status.Conditions, cond)
		return r.Status().Update(ctx, current)
	})
	r.Written.Forget(key) // read again before the next write
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// reconcileDeclared marks each call declared or not, and sets the Declared condition,
// once ClientIntents can be read; until then neither is set.
func reconcileDeclared(di *discoveryv1alpha1.DiscoveredIntents, w *DeclaredWatch) {
	decl, known := w.Declarations()
	if !known {
		for i := range di.Status.Calls {
			di.Status.Calls[i].Declared = nil
		}
		meta.RemoveStatusCondition(&di.Status.Conditions, discoveryv1alpha1.ConditionDeclared)
		return
	}
	clientKey := di.Namespace + "/" + di.Spec.Workload.Name
	undeclared := 0
	for i := range di.Status.Calls {
		ok := true
		for _, item := range declared.CallItems(clientKey, di.Status.Calls[i]) {
			ok = ok && decl[item]
		}
		di.Status.Calls[i].Declared = ptr.To(ok)
		if !ok {
			undeclared++
		}
	}
	cond := metav1.Condition{Type: discoveryv1alpha1.ConditionDeclared, ObservedGeneration: di.Generation,
		Status: metav1.ConditionTrue, Reason: "AllDeclared", Message: fmt.Sprintf("all %d calls are declared", len(di.Status.Calls))}
	if undeclared > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, "UndeclaredCalls"
		cond.Message = fmt.Sprintf("%d of %d calls not declared", undeclared, len(di.Status.Calls))
	}
	meta.SetStatusCondition(&di.Status.Conditions, cond)
}

// reconcileSummary derives the printer-column fields from the calls.
func reconcileSummary(di *discoveryv1alpha1.DiscoveredIntents) {
	di.Status.Summarize()
}

// reconcileHTTPPaths says whether HTTP calls come with their paths. A proxy reports
// calls without request_path until the mesh's Telemetry adds it: say so, rather than
// show HTTP calls with no paths as if there were none.
func reconcileHTTPPaths(di *discoveryv1alpha1.DiscoveredIntents) {
	var httpCalls, pathless []string
	for _, c := range di.Status.Calls {
		if c.Type != discoveryv1alpha1.CallHTTP {
			continue
		}
		httpCalls = append(httpCalls, c.Name)
		if len(c.HTTP) == 0 && !c.Truncated { // a truncated call had paths, dropped for size
			pathless = append(pathless, c.Namespace+"/"+c.Name)
		}
	}
	cond := metav1.Condition{Type: discoveryv1alpha1.ConditionHTTPPaths, ObservedGeneration: di.Generation}
	switch {
	case len(httpCalls) == 0:
		meta.RemoveStatusCondition(&di.Status.Conditions, discoveryv1alpha1.ConditionHTTPPaths)
		return
	case len(pathless) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, discoveryv1alpha1.ReasonNoPathLabels
		cond.Message = fmt.Sprintf("mesh proxies report HTTP calls to %s without request_path: apply config/samples/istio/telemetry.yaml", firstFew(pathless))
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, discoveryv1alpha1.ReasonPathsSeen
		cond.Message = "HTTP calls carry their paths"
	}
	meta.SetStatusCondition(&di.Status.Conditions, cond)
}

// firstFew lists a few names and counts the rest, so that a condition's message stays
// far under the API server's 32 KiB limit.
func firstFew(names []string) string {
	const few = 5
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:few], ", "), len(names)-few)
}

// reconcileReady records that status now reflects this generation.
func reconcileReady(di *discoveryv1alpha1.DiscoveredIntents) {
	di.Status.ObservedGeneration = di.Generation
	meta.SetStatusCondition(&di.Status.Conditions, metav1.Condition{
		Type:               discoveryv1alpha1.ConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             discoveryv1alpha1.ReasonReconciled,
		Message:            fmt.Sprintf("%d calls observed", len(di.Status.Calls)),
		ObservedGeneration: di.Generation,
	})
}

// writeStatus writes status once, only when it changed, failing on a concurrent write
// so that nothing another writer recorded is overwritten. It is a PUT of the status
// subresource: the API server keeps everything but status from the stored object, and
// unlike a patch it has no patch to apply (a fifth of its CPU per write at a cold start).
func (r *DiscoveredIntentsReconciler) writeStatus(ctx context.Context, before, after *discoveryv1alpha1.DiscoveredIntents, batch *pending.Batch, now time.Time) error {
	if equality.Semantic.DeepEqual(before.Status, after.Status) {
		return nil
	}
	// The resourceVersion is the one last written or read: a write by someone else
	// since fails, and the object is read again before the next attempt.
	if err := r.Status().Update(ctx, after); err != nil {
		if apierrors.IsConflict(err) {
			conflictsTotal.Inc()
		}
		r.Written.Forget(client.ObjectKeyFromObject(after))
		return err
	}
	writesTotal.Inc()
	if err := r.Written.Wrote(after); err != nil {
		return err
	}
	r.Pending.Written(pending.Key{Namespace: after.Namespace, Name: after.Name}, now)
	if batch != nil {
		writeDelay.Observe(r.Now().Sub(batch.Oldest()).Seconds())
	}
	return nil
}

// SetupWithManager registers the reconciler with the manager.
func (r *DiscoveredIntentsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		// Metadata only: creates, deletes (a reset) and others' writes are seen, while
		// status is kept compact in Written rather than in full in an informer.
		For(&discoveryv1alpha1.DiscoveredIntents{}, builder.OnlyMetadata).
		WatchesRawSource(r.Queue.Source()).
		Named("discoveredintents").
		// Objects are independent; one worker writing thousands in turn is the delay.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		Complete(r)
}
