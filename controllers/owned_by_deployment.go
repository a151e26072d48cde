package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LeaderElectionID names the manager's leader-election Lease.
const LeaderElectionID = "intent-mapper.intentmapper.io"

// ownedByDeployment makes the manager's Deployment an owner of the objects the manager
// creates in its namespace outside IntentMapper (its certificate Secret, the CA
// ConfigMap, its Lease), so that whatever removes the Deployment removes them too:
// helm uninstall keeps the release's namespace, and they would stay in it.
type ownedByDeployment struct {
	Reader         client.Reader
	Client         client.Client
	Namespace, Pod string
	// Objects are the kind and name of each object to own.
	Objects []client.Object
	Every   time.Duration
	Log     logr.Logger
}

// NeedLeaderElection: the leader writes the objects; it alone marks them.
func (o *ownedByDeployment) NeedLeaderElection() bool { return true }

// Start marks the objects now and again every o.Every: they may be made after the
// manager starts (the certificate) or made anew.
func (o *ownedByDeployment) Start(ctx context.Context) error {
	if o.Pod == "" {
		return nil // outside a cluster: no Deployment
	}
	owner, err := managerDeployment(ctx, o.Reader, o.Namespace, o.Pod)
	if err != nil {
		o.Log.Error(err, "finding the manager's Deployment: its Secret, ConfigMap and Lease stay when it goes")
		return nil
	}
	if owner == nil {
		o.Log.Info("no Deployment runs this pod: its Secret, ConfigMap and Lease stay when it goes")
		return nil
	}
	for {
		for _, obj := range o.Objects {
			if err := o.own(ctx, obj.DeepCopyObject().(client.Object), *owner); err != nil {
				o.Log.V(1).Info("marking an object as the Deployment's", "name", obj.GetName(), "reason", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Every):
		}
	}
}

// own adds owner to obj's owner references unless it is there or obj does not exist.
func (o *ownedByDeployment) own(ctx context.Context, obj client.Object, owner metav1.OwnerReference) error {
	if err := o.Reader.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: obj.GetName()}, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == owner.UID {
			return nil
		}
	}
	obj.SetOwnerReferences(append(obj.GetOwnerReferences(), owner))
	if err := o.Client.Update(ctx, obj); err != nil && !apierrors.IsConflict(err) {
		return err
	}
	return nil // a conflict: the next round tries again
}

// managerDeployment is a reference to the Deployment that runs pod (through its
// ReplicaSet), or nil when no Deployment does.
func managerDeployment(ctx context.Context, reader client.Reader, namespace, pod string) (*metav1.OwnerReference, error) {
	p := &corev1.Pod{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: pod}, p); err != nil {
		return nil, err
	}
	rsRef := metav1.GetControllerOf(p)
	if rsRef == nil || rsRef.Kind != "ReplicaSet" {
		return nil, nil
	}
	rs := &appsv1.ReplicaSet{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: rsRef.Name}, rs); err != nil {
		return nil, err
	}
	d := metav1.GetControllerOf(rs)
	if d == nil || d.Kind != "Deployment" {
		return nil, nil
	}
	return &metav1.OwnerReference{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment", Name: d.Name, UID: d.UID}, nil
}

// managerObjects are the objects the manager creates in its namespace for itself.
func managerObjects(o DataPathOptions) []client.Object {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
	return []client.Object{
		&corev1.Secret{ObjectMeta: meta(o.CertSecret)},
		&corev1.ConfigMap{ObjectMeta: meta(o.CAConfigMap)},
		&coordinationv1.Lease{ObjectMeta: meta(LeaderElectionID)},
	}
}
