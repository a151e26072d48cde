// Package controllers holds intent-mapper's reconcilers.
package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// DiscoveredIntentsReconciler keeps each DiscoveredIntents' status in shape: calls in
// canonical order, the summary behind the printer columns, Ready and observedGeneration.
type DiscoveredIntentsReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=discoveredintents,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=discoveredintents/status,verbs=get;update;patch

// Reconcile brings one DiscoveredIntents' status up to date and writes it at most once.
func (r *DiscoveredIntentsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	di := &discoveryv1alpha1.DiscoveredIntents{}
	if err := r.Get(ctx, req.NamespacedName, di); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !di.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	before := di.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, di); err != nil {
			reterr = kerrors.NewAggregate([]error{reterr, err})
		}
	}()

	reconcileOrder(di)
	reconcileSummary(di)
	reconcileReady(di)
	return ctrl.Result{}, nil
}

// reconcileOrder sorts calls so the object diffs only when something real changed.
func reconcileOrder(di *discoveryv1alpha1.DiscoveredIntents) {
	di.Status.Sort()
}

// reconcileSummary derives the printer-column fields from the calls.
func reconcileSummary(di *discoveryv1alpha1.DiscoveredIntents) {
	di.Status.Summarize()
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

// patchStatus writes status once, only when it changed, failing on a concurrent write
// so that nothing another writer recorded is overwritten.
func (r *DiscoveredIntentsReconciler) patchStatus(ctx context.Context, before, after *discoveryv1alpha1.DiscoveredIntents) error {
	if equality.Semantic.DeepEqual(before.Status, after.Status) {
		return nil
	}
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	return r.Status().Patch(ctx, after, patch)
}

// SetupWithManager registers the reconciler with the manager.
func (r *DiscoveredIntentsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&discoveryv1alpha1.DiscoveredIntents{}).
		Named("discoveredintents").
		Complete(r)
}
