package resolve

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// +kubebuilder:rbac:groups="",resources=pods;services,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch

var ownerKinds = map[string]schema.GroupVersionKind{
	kindReplicaSet: {Group: "apps", Version: "v1", Kind: kindReplicaSet},
	kindJob:        {Group: "batch", Version: "v1", Kind: kindJob},
}

// metadataOwners reads owner references from metadata-only caches: the owner walk
// needs nothing else of a ReplicaSet or a Job.
type metadataOwners struct{ reader client.Reader }

func (o metadataOwners) ControllerOf(ctx context.Context, kind, namespace, name string) (string, string, bool) {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(ownerKinds[kind])
	if err := o.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		return "", "", false
	}
	ref := metav1.GetControllerOf(obj)
	if ref == nil {
		return "", "", true
	}
	return ref.Kind, ref.Name, true
}

// NewForManager returns a Resolver fed by the manager's caches.
func NewForManager(ctx context.Context, mgr ctrl.Manager, opts Options) (*Resolver, error) {
	for _, gvk := range ownerKinds {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, err
		}
	}
	r := New(metadataOwners{reader: mgr.GetCache()}, opts)
	pods, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	if _, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.onPod(ctx, obj) },
		UpdateFunc: func(_, obj any) { r.onPod(ctx, obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := unwrap(obj).(*corev1.Pod); ok {
				r.PodDeleted(pod, time.Now())
			}
		},
	}); err != nil {
		return nil, err
	}
	services, err := mgr.GetCache().GetInformer(ctx, &corev1.Service{})
	if err != nil {
		return nil, err
	}
	if _, err := services.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    r.onService,
		UpdateFunc: func(_, obj any) { r.onService(obj) },
		DeleteFunc: func(obj any) {
			if svc, ok := unwrap(obj).(*corev1.Service); ok {
				r.ServiceDeleted(svc.Namespace, svc.Name)
			}
		},
	}); err != nil {
		return nil, err
	}
	return r, mgr.Add(manager.RunnableFunc(r.pruneEvery(time.Minute)))
}

func (r *Resolver) onPod(ctx context.Context, obj any) {
	if pod, ok := obj.(*corev1.Pod); ok {
		r.PodChanged(ctx, pod, time.Now())
	}
}

func (r *Resolver) onService(obj any) {
	if svc, ok := obj.(*corev1.Service); ok {
		r.ServiceChanged(svc)
	}
}

func (r *Resolver) pruneEvery(interval time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-tick.C:
				r.Prune(now)
			}
		}
	}
}

func unwrap(obj any) any {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return tomb.Obj
	}
	return obj
}
