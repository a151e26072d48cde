package controllers

import (
	"context"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// The manager reads broker logs only in the namespaces spec.kafka names: there it binds
// one ClusterRole (get pods/log), which it may bind but does not hold.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=intent-mapper-broker-logs
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;list;watch;create;update;patch;delete

// DefaultBrokerLogsRole is the ClusterRole config/rbac installs for reading broker logs.
const DefaultBrokerLogsRole = "intent-mapper-broker-logs"

// brokerLogsComponent labels the RoleBindings the manager makes, to find them again.
const brokerLogsComponent = "broker-logs"

// BrokerLogsAccess names what a broker-logs RoleBinding binds: the ClusterRole, to the
// manager's own ServiceAccount.
type BrokerLogsAccess struct {
	ClusterRole    string
	Namespace      string
	ServiceAccount string
}

func brokerLogsLabels() map[string]string {
	return map[string]string{labelName: projectName, labelComponent: brokerLogsComponent}
}

// reconcileBrokerLogs binds the broker-logs ClusterRole in every namespace spec.kafka
// names and removes the bindings of namespaces it no longer names.
func (r *IntentMapperReconciler) reconcileBrokerLogs(ctx context.Context, im *discoveryv1alpha1.IntentMapper) error {
	var want []string
	for _, k := range im.Spec.Kafka {
		if !slices.Contains(want, k.Namespace) {
			want = append(want, k.Namespace)
		}
	}
	var errs []error
	for _, ns := range want {
		errs = append(errs, r.bindBrokerLogs(ctx, im, ns))
	}
	have := &rbacv1.RoleBindingList{}
	if err := r.List(ctx, have, client.MatchingLabels(brokerLogsLabels())); err != nil {
		return wrap("broker-logs RoleBindings", err)
	}
	for i := range have.Items {
		rb := &have.Items[i]
		if rb.Name == r.brokerLogsBindingName() && !slices.Contains(want, rb.Namespace) {
			errs = append(errs, client.IgnoreNotFound(r.Delete(ctx, rb)))
		}
	}
	return wrap("broker-logs RoleBindings", kerrors.NewAggregate(errs))
}

func (r *IntentMapperReconciler) brokerLogsBindingName() string { return r.BrokerLogs.ClusterRole }

func (r *IntentMapperReconciler) bindBrokerLogs(ctx context.Context, im *discoveryv1alpha1.IntentMapper, namespace string) error {
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.brokerLogsBindingName(), Namespace: namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, rb, func() error {
		rb.Labels = brokerLogsLabels()
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.BrokerLogs.ClusterRole}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: r.BrokerLogs.ServiceAccount, Namespace: r.BrokerLogs.Namespace}}
		return r.adopt(im, rb)
	})
	return err
}
