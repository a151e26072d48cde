package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// IntentMapper condition types and reasons.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionKafkaLogs: every broker spec.kafka lists has a log the manager reads.
	ConditionKafkaLogs = "KafkaLogs"
)

// kafkaRecheck is how often IntentMapper's KafkaLogs condition is brought up to date
// while it lists brokers: their logs fail and recover on their own.
const kafkaRecheck = 30 * time.Second

// IntentMapperReconciler deploys and keeps in shape what IntentMapper describes: the
// agent's ServiceAccount and DaemonSet, the ingest Service and the RoleBindings that
// let the manager read broker logs, all owned by it, and hands its settings to the
// manager.
type IntentMapperReconciler struct {
	client.Client
	Agent      AgentOptions
	BrokerLogs BrokerLogsAccess
	Settings   *Settings
	// Reports tells which agents report; without it, AgentsReporting is not set.
	Reports ReportSource
	Now     func() time.Time
	// KafkaProblems says which brokers' logs cannot be read, and why.
	KafkaProblems func() []string
}

// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=intentmappers,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.intentmapper.io,resources=intentmappers/status,verbs=get;patch
// +kubebuilder:rbac:groups=apps,namespace=system,resources=daemonsets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",namespace=system,resources=serviceaccounts;services,verbs=get;list;watch;create;update;patch

// Reconcile brings the deployed objects in line with IntentMapper and reports on them.
func (r *IntentMapperReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	im := &discoveryv1alpha1.IntentMapper{}
	if err := r.Get(ctx, req.NamespacedName, im); err != nil {
		if client.IgnoreNotFound(err) == nil && req.Name == discoveryv1alpha1.SingletonName {
			r.Settings.Apply(nil) // gone: the flags rule again; owned objects go with it
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !im.DeletionTimestamp.IsZero() || im.Name != discoveryv1alpha1.SingletonName {
		return ctrl.Result{}, nil
	}
	r.Settings.Apply(&im.Spec)

	before := im.DeepCopy()
	ds := &appsv1.DaemonSet{}
	var errs []error
	var reports *agentReports
	defer func() {
		reconcileIntentMapperStatus(im, ds, kerrors.NewAggregate(errs))
		if reports != nil {
			setReportingStatus(im, *reports)
		}
		reconcileKafkaCondition(im, r.KafkaProblems)
		if !equality.Semantic.DeepEqual(before.Status, im.Status) {
			if err := r.Status().Patch(ctx, im, client.MergeFrom(before)); err != nil {
				reterr = kerrors.NewAggregate([]error{reterr, err})
			}
		}
	}()

	for _, phase := range []func(context.Context, *discoveryv1alpha1.IntentMapper) error{
		r.reconcileServiceAccount,
		r.reconcileIngestService,
		r.reconcileBrokerLogs,
	} {
		if err := phase(ctx, im); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.reconcileDaemonSet(ctx, im, ds); err != nil {
		errs = append(errs, err)
	}
	var result ctrl.Result
	if len(im.Spec.Kafka) > 0 {
		result.RequeueAfter = kafkaRecheck
	}
	if r.Reports == nil {
		return result, kerrors.NewAggregate(errs)
	}
	rep, err := r.agentReports(ctx, im)
	if err != nil {
		errs = append(errs, err)
	} else {
		reports = &rep
	}
	// Reports arrive without events: look again within the window.
	if again := rep.window / 3; result.RequeueAfter == 0 || (again > 0 && again < result.RequeueAfter) {
		result.RequeueAfter = again
	}
	return result, kerrors.NewAggregate(errs)
}

// reconcileKafkaCondition reports whether the brokers' logs are read; without brokers
// listed, there is no such condition.
func reconcileKafkaCondition(im *discoveryv1alpha1.IntentMapper, problems func() []string) {
	if len(im.Spec.Kafka) == 0 || problems == nil {
		meta.RemoveStatusCondition(&im.Status.Conditions, ConditionKafkaLogs)
		return
	}
	c := metav1.Condition{Type: ConditionKafkaLogs, Status: metav1.ConditionTrue, Reason: "Following",
		Message: "every broker's log is read", ObservedGeneration: im.Generation}
	if p := problems(); len(p) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Unreadable", strings.Join(p, "; ")
	}
	meta.SetStatusCondition(&im.Status.Conditions, c)
}

func (r *IntentMapperReconciler) reconcileServiceAccount(ctx context.Context, im *discoveryv1alpha1.IntentMapper) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: r.Agent.ServiceAccount, Namespace: r.Agent.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, sa, func() error {
		sa.Labels = withLabels(sa.Labels, agentLabels())
		return r.adopt(im, sa)
	})
	return wrap("agent ServiceAccount", err)
}

// ingestSelector selects the leading manager pod.
func ingestSelector() map[string]string {
	return map[string]string{labelName: projectName, labelComponent: "manager", LabelIngestLeader: "true"}
}

// reconcileIngestService routes agents' reports to the leading manager, whose pod
// alone carries the leader label.
func (r *IntentMapperReconciler) reconcileIngestService(ctx context.Context, im *discoveryv1alpha1.IntentMapper) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: r.Agent.IngestService, Namespace: r.Agent.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		svc.Labels = withLabels(svc.Labels, map[string]string{labelName: projectName, labelComponent: "ingest"})
		svc.Spec.Selector = ingestSelector()
		svc.Spec.Ports = []corev1.ServicePort{{Name: "ingest", Port: 9443, TargetPort: intstr.FromString("ingest"), Protocol: corev1.ProtocolTCP}}
		return r.adopt(im, svc)
	})
	return wrap("ingest Service", err)
}

func (r *IntentMapperReconciler) reconcileDaemonSet(ctx context.Context, im *discoveryv1alpha1.IntentMapper, ds *appsv1.DaemonSet) error {
	ds.Name, ds.Namespace = r.Agent.ServiceAccount, r.Agent.Namespace
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, ds, func() error {
		desiredDaemonSet(ds, &im.Spec, r.Agent)
		return r.adopt(im, ds)
	})
	return wrap("agent DaemonSet", err)
}

// adopt makes im the controller of obj, taking over from an IntentMapper deleted
// before the garbage collector got to its objects.
func (r *IntentMapperReconciler) adopt(im *discoveryv1alpha1.IntentMapper, obj client.Object) error {
	refs := obj.GetOwnerReferences()
	kept := refs[:0]
	for _, ref := range refs {
		if ref.Kind != "IntentMapper" || ref.UID == im.UID {
			kept = append(kept, ref)
		}
	}
	obj.SetOwnerReferences(kept)
	return controllerutil.SetControllerReference(im, obj, r.Scheme())
}

// withLabels sets ours on labels and keeps the others: an installer's own (Helm's
// app.kubernetes.io/managed-by) say whose the object is.
func withLabels(labels, ours map[string]string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, ours)
	return labels
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// reconcileIntentMapperStatus reports the agents as the DaemonSet counts them.
func reconcileIntentMapperStatus(im *discoveryv1alpha1.IntentMapper, ds *appsv1.DaemonSet, failure error) {
	st := &im.Status
	st.ObservedGeneration = im.Generation
	st.DesiredAgents, st.ReadyAgents = ds.Status.DesiredNumberScheduled, ds.Status.NumberReady
	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: im.Generation})
	}
	counts := fmt.Sprintf("%d of %d agents ready", st.ReadyAgents, st.DesiredAgents)
	if failure != nil {
		set(ConditionDegraded, true, "ReconcileFailed", failure.Error())
	} else {
		set(ConditionDegraded, false, "Reconciled", "every object is as IntentMapper describes")
	}
	rolling := ds.Generation == 0 || ds.Status.ObservedGeneration < ds.Generation || ds.Status.UpdatedNumberScheduled < ds.Status.DesiredNumberScheduled
	if rolling {
		set(ConditionProgressing, true, "RollingOut", fmt.Sprintf("%d of %d agents updated", ds.Status.UpdatedNumberScheduled, st.DesiredAgents))
	} else {
		set(ConditionProgressing, false, "RolledOut", "every agent runs the current spec")
	}
	ready := st.DesiredAgents > 0 && st.ReadyAgents == st.DesiredAgents
	reason := "AgentsReady"
	if !ready {
		reason = "AgentsNotReady"
	}
	set(ConditionAvailable, ready, reason, counts)
}

// SetupWithManager watches IntentMapper and the objects it owns, so a hand edit is put back.
func (r *IntentMapperReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&discoveryv1alpha1.IntentMapper{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.Service{}).
		Owns(&rbacv1.RoleBinding{}).
		Named("intentmapper").
		Complete(r)
}
