package kafka

import (
	"context"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

var linesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "intentmapper_kafka_log_lines_total",
	Help: "Broker log lines read, by outcome: recorded, denied (not an intent), trace (a filtering check, not an access), not-authorizer, not-topic, malformed, unknown-client.",
}, []string{"outcome"})

func init() { metrics.Registry.MustRegister(linesTotal) }

// Resolver is what the recorder needs of the manager's resolver.
type Resolver interface {
	WorkloadAt(ip netip.Addr, t time.Time) (resolve.Workload, bool)
}

// Recorder turns a broker's access lines into calls from client workloads to it.
type Recorder struct {
	Resolver Resolver
	Add      func(resolve.Call)
}

// Line records one line of a broker's log, written at `at` by the kubelet's clock: the
// broker's own timestamp has no zone, so a broker not on UTC would shift attribution
// by hours. Denied accesses are not intents: they are counted, not recorded.
func (r *Recorder) Line(broker resolve.Workload, at time.Time, line []byte) {
	a, err := Parse(line)
	switch err {
	case nil:
	case ErrNotAuthorizer:
		linesTotal.WithLabelValues("not-authorizer").Inc()
		return
	case ErrNotTopic:
		linesTotal.WithLabelValues("not-topic").Inc()
		return
	case ErrTrace:
		linesTotal.WithLabelValues("trace").Inc()
		return
	default:
		linesTotal.WithLabelValues("malformed").Inc()
		return
	}
	if !a.Allowed {
		linesTotal.WithLabelValues("denied").Inc()
		return
	}
	if at.IsZero() {
		at = a.Time
	}
	caller, ok := r.Resolver.WorkloadAt(a.Host, at)
	if !ok {
		linesTotal.WithLabelValues("unknown-client").Inc()
		return
	}
	linesTotal.WithLabelValues("recorded").Inc()
	r.Add(resolve.Call{Client: caller, Server: broker, Type: discoveryv1alpha1.CallKafka, Topic: a.Topic, Operation: a.Operation, Time: at})
}

// Watcher follows the logs of the brokers IntentMapper names, starting a follower for
// each broker pod and stopping it when the pod goes.
type Watcher struct {
	Client   client.Reader
	Source   LogSource
	Recorder *Recorder
	// Servers returns the brokers to follow, as IntentMapper's spec lists them.
	Servers func() []discoveryv1alpha1.KafkaServer
	Every   time.Duration

	following map[string]context.CancelFunc // by pod UID; only Start's goroutine uses it
}

// NeedLeaderElection: only the leader records.
func (w *Watcher) NeedLeaderElection() bool { return true }

// Start looks for broker pods every interval until ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	w.following = map[string]context.CancelFunc{}
	tick := time.NewTicker(w.Every)
	defer tick.Stop()
	for {
		w.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (w *Watcher) sync(ctx context.Context) {
	want := map[string]bool{}
	for _, server := range w.Servers() {
		pods, err := w.brokers(ctx, server)
		if err != nil {
			logf.FromContext(ctx).Error(err, "listing Kafka brokers", "namespace", server.Namespace)
			continue
		}
		for _, pod := range pods {
			uid := string(pod.UID)
			want[uid] = true
			if _, ok := w.following[uid]; ok {
				continue
			}
			broker, ok := w.Recorder.Resolver.WorkloadAt(netip.MustParseAddr(pod.Status.PodIP), time.Now())
			if !ok {
				continue
			}
			podCtx, cancel := context.WithCancel(ctx)
			w.following[uid] = cancel
			f := &Follower{Source: w.Source, Namespace: pod.Namespace, Pod: pod.Name, From: time.Now(), Retry: 5 * time.Second}
			go f.Run(podCtx, func(at time.Time, line []byte) { w.Recorder.Line(broker, at, line) })
		}
	}
	for uid, cancel := range w.following {
		if !want[uid] {
			cancel()
			delete(w.following, uid)
		}
	}
}

// brokers lists the running pods of a Kafka server: by selector, or by workload name.
func (w *Watcher) brokers(ctx context.Context, server discoveryv1alpha1.KafkaServer) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	opts := []client.ListOption{client.InNamespace(server.Namespace)}
	if server.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(server.Selector)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	} else {
		opts = append(opts, client.MatchingLabelsSelector{Selector: labels.Everything()})
	}
	if err := w.Client.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, pod := range list.Items {
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		if server.Selector == nil {
			if wl, ok := w.Recorder.Resolver.WorkloadAt(ip, time.Now()); !ok || wl.Name != server.Name {
				continue
			}
		}
		out = append(out, pod)
	}
	return out, nil
}
