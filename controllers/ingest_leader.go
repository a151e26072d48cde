package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/intent-mapper/intent-mapper/controllers/ingest"
)

// LabelIngestLeader marks the manager pod that holds the lease; the ingest Service
// selects it, so reports reach the leader while readiness ignores leadership.
const LabelIngestLeader = "intentmapper.io/ingest-leader"

// +kubebuilder:rbac:groups="",namespace=system,resources=pods,verbs=get;list;patch

// ingestLeader waits for the lease, then lets the ingest server accept reports and
// moves the leader label to this replica's pod.
type ingestLeader struct {
	Client client.Client
	Reader client.Reader // the API server itself: the label must be read as it is now
	Server *ingest.Server
	// Elected closes when this replica leads.
	Elected <-chan struct{}
	// Namespace and Pod name this replica; with no Pod (a manager run outside the
	// cluster) there is nothing to label.
	Namespace, Pod string
	// Retry is how long to wait before labelling again after a failure.
	Retry time.Duration
}

// NeedLeaderElection: it runs before the lease is won, to drop a stale label.
func (l *ingestLeader) NeedLeaderElection() bool { return false }

// Start runs until ctx ends.
func (l *ingestLeader) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("ingest-leader")
	if l.Pod != "" {
		if err := l.setLabel(ctx, l.Pod, false); err != nil {
			log.Error(err, "removing a stale leader label from this pod")
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case <-l.Elected:
	}
	l.Server.SetLeading(true)
	log.Info("leading: accepting reports")
	if l.Pod != "" {
		l.labelUntilDone(ctx, log)
	}
	<-ctx.Done()
	l.Server.SetLeading(false)
	if l.Pod != "" {
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.setLabel(stop, l.Pod, false); err != nil {
			log.Error(err, "removing the leader label on the way out")
		}
	}
	return nil
}

// labelUntilDone labels this pod and unlabels every other manager pod, retrying
// until it has or ctx ends: without the label, agents' reports cannot arrive.
func (l *ingestLeader) labelUntilDone(ctx context.Context, log logr.Logger) {
	for {
		err := l.takeLabel(ctx)
		if err == nil {
			return
		}
		log.Error(err, "moving the ingest leader label to this pod; retrying", "pod", l.Pod)
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.Retry):
		}
	}
}

func (l *ingestLeader) takeLabel(ctx context.Context) error {
	if err := l.setLabel(ctx, l.Pod, true); err != nil {
		return err
	}
	pods := &corev1.PodList{}
	if err := l.Reader.List(ctx, pods, client.InNamespace(l.Namespace), client.HasLabels{LabelIngestLeader}); err != nil {
		return fmt.Errorf("listing labelled pods: %w", err)
	}
	for i := range pods.Items {
		if name := pods.Items[i].Name; name != l.Pod {
			if err := l.setLabel(ctx, name, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// setLabel puts the leader label on a pod or takes it off, writing only a change.
func (l *ingestLeader) setLabel(ctx context.Context, name string, on bool) error {
	pod := &corev1.Pod{}
	if err := l.Reader.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: name}, pod); err != nil {
		return client.IgnoreNotFound(err)
	}
	_, has := pod.Labels[LabelIngestLeader]
	if has == on {
		return nil
	}
	before := pod.DeepCopy()
	if on {
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[LabelIngestLeader] = "true"
	} else {
		delete(pod.Labels, LabelIngestLeader)
	}
	if err := l.Client.Patch(ctx, pod, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("labelling pod %s: %w", name, err)
	}
	return nil
}
