package controllers

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/enqueue"
	"github.com/intent-mapper/intent-mapper/declared"
)

// +kubebuilder:rbac:groups=k8s.otterize.com,resources=clientintents,verbs=get;list;watch

// DeclaredWatch keeps what ClientIntents declare, once the ClientIntents API exists:
// the manager starts and works without it, and picks it up when it is installed.
type DeclaredWatch struct {
	mgr       ctrl.Manager
	discovery discovery.DiscoveryInterface
	queue     *enqueue.Queue
	poll      time.Duration
	// changed is signalled, without waiting, by ClientIntents events: a burst of
	// them makes one refresh, not one each.
	changed chan struct{}

	mu       sync.RWMutex
	watching bool
	decl     declared.Set
}

// NewDeclaredWatch looks for the ClientIntents API every poll and enqueues every
// DiscoveredIntents when declarations change.
func NewDeclaredWatch(mgr ctrl.Manager, queue *enqueue.Queue, poll time.Duration) (*DeclaredWatch, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	return &DeclaredWatch{mgr: mgr, discovery: dc, queue: queue, poll: poll, changed: make(chan struct{}, 1)}, nil
}

// NeedLeaderElection: only the leader reconciles, so only it needs declarations.
func (w *DeclaredWatch) NeedLeaderElection() bool { return true }

// Declarations returns what is declared, and whether declarations are known at all.
func (w *DeclaredWatch) Declarations() (declared.Set, bool) {
	if w == nil {
		return nil, false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.decl, w.watching
}

func clientIntentsObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(declared.V1alpha3)
	u.SetKind(declared.Kind)
	return u
}

// Start follows the ClientIntents API's presence until ctx ends.
func (w *DeclaredWatch) Start(ctx context.Context) error {
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	for {
		present := w.apiPresent()
		w.mu.RLock()
		watching := w.watching
		w.mu.RUnlock()
		switch {
		case present && !watching:
			w.startWatching(ctx)
		case !present && watching:
			_ = w.mgr.GetCache().RemoveInformer(ctx, clientIntentsObject())
			w.set(nil, false)
		}
		if !w.wait(ctx, tick.C) {
			return nil
		}
	}
}

// wait returns at the next poll, after refreshing for every burst of ClientIntents
// events in between, or false when ctx ends.
func (w *DeclaredWatch) wait(ctx context.Context, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case <-w.changed:
			w.refresh(ctx)
		}
	}
}

// signal asks for a refresh; signals that arrive while one is pending are merged.
func (w *DeclaredWatch) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *DeclaredWatch) apiPresent() bool {
	list, err := w.discovery.ServerResourcesForGroupVersion(declared.V1alpha3)
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Kind == declared.Kind {
			return true
		}
	}
	return false
}

func (w *DeclaredWatch) startWatching(ctx context.Context) {
	log := logf.FromContext(ctx)
	informer, err := w.mgr.GetCache().GetInformer(ctx, clientIntentsObject())
	if err != nil {
		log.Error(err, "watching ClientIntents")
		return
	}
	changed := func(any) { w.signal() }
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed,
	}); err != nil {
		log.Error(err, "watching ClientIntents")
		return
	}
	log.Info("the ClientIntents API is installed: comparing observed calls with declared ones")
	w.refresh(ctx)
}

// refresh recomputes the declarations from the cache and has every object looked at again.
func (w *DeclaredWatch) refresh(ctx context.Context) {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(declared.V1alpha3)
	list.SetKind(declared.Kind + "List")
	if err := w.mgr.GetCache().List(ctx, list); err != nil {
		return
	}
	objs := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	decl, err := declared.Declarations(objs)
	if err != nil {
		logf.FromContext(ctx).Error(err, "reading ClientIntents")
		return
	}
	w.set(decl, true)
}

func (w *DeclaredWatch) set(decl declared.Set, watching bool) {
	w.mu.Lock()
	w.decl, w.watching = decl, watching
	w.mu.Unlock()
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(discoveryv1alpha1.GroupVersion.WithKind("DiscoveredIntentsList"))
	if err := w.mgr.GetCache().List(context.Background(), list); err != nil {
		return
	}
	for i := range list.Items {
		w.queue.Add(list.Items[i].Namespace, list.Items[i].Name)
	}
}
