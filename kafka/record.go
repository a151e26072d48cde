package kafka

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/resolved"
)

var linesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "intentmapper_kafka_log_lines_total",
	Help: "Broker log lines read, by outcome: recorded, denied (not an intent), trace (a filtering check, not an access), not-authorizer, not-topic, malformed, unknown-client.",
}, []string{"outcome"})

var followErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "intentmapper_kafka_log_follow_errors_total",
	Help: "Failed attempts to read a broker's log, by reason: container (none could be chosen), open (the API server refused or failed).",
}, []string{"reason"})

func init() { metrics.Registry.MustRegister(linesTotal, followErrors) }

// Resolver is what the recorder needs of the manager's resolver.
type Resolver interface {
	WorkloadAt(ip netip.Addr, t time.Time) (resolved.Workload, bool)
}

// Recorder turns a broker's access lines into calls from client workloads to it.
type Recorder struct {
	Resolver Resolver
	Add      func(resolved.Call)
}

// Line records one line of a broker's log, written at `at` by the kubelet's clock: the
// broker's own timestamp has no zone, so a broker not on UTC would shift attribution
// by hours. Denied accesses are not intents: they are counted, not recorded.
func (r *Recorder) Line(broker resolved.Workload, at time.Time, line []byte) {
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
	r.Add(resolved.Call{Client: caller, Server: broker, Type: discoveryv1alpha1.CallKafka, Topic: a.Topic, Operation: a.Operation, Time: at})
}

// Watcher follows the logs of the brokers IntentMapper names, starting a follower for
// each broker pod and stopping it when the pod goes.
type Watcher struct {
	// Client lists broker pods (the manager's cache, which keeps pods without their
	// containers); Pods reads a broker's whole pod, for its containers (Client when nil).
	Client   client.Reader
	Pods     client.Reader
	Source   LogSource
	Recorder *Recorder
	// Servers returns the brokers to follow, as IntentMapper's spec lists them.
	Servers func() []discoveryv1alpha1.KafkaServer
	Every   time.Duration

	following map[string]context.CancelFunc // by pod UID; only Start's goroutine uses it

	mu       sync.Mutex
	problems map[string]string // by pod UID: why its log cannot be read
}

// Problems says, for each broker whose log cannot be read, why; sorted.
func (w *Watcher) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.problems))
	for _, p := range w.problems {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// report records whether a pod's log can be read, logging and counting what cannot.
func (w *Watcher) report(ctx context.Context, pod *corev1.Pod, reason string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	uid := string(pod.UID)
	if err == nil {
		delete(w.problems, uid)
		return
	}
	followErrors.WithLabelValues(reason).Inc()
	msg := pod.Namespace + "/" + pod.Name + ": " + err.Error()
	if w.problems[uid] != msg { // once per change, not every retry
		logf.FromContext(ctx).Error(err, "cannot read a Kafka broker's log", "pod", pod.Namespace+"/"+pod.Name)
	}
	if w.problems == nil {
		w.problems = map[string]string{}
	}
	w.problems[uid] = msg
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
			container, err := w.container(ctx, &pod, server.Container)
			if err != nil {
				w.report(ctx, &pod, "container", err)
				continue
			}
			broker, ok := w.Recorder.Resolver.WorkloadAt(netip.MustParseAddr(pod.Status.PodIP), time.Now())
			if !ok {
				continue
			}
			podCtx, cancel := context.WithCancel(ctx)
			w.following[uid] = cancel
			f := &Follower{Source: w.Source, Namespace: pod.Namespace, Pod: pod.Name, Container: container, From: time.Now(), Retry: 5 * time.Second,
				Opened: func(err error) { w.report(podCtx, &pod, "open", err) }}
			go f.Run(podCtx, func(at time.Time, line []byte) { w.Recorder.Line(broker, at, line) })
		}
	}
	for uid, cancel := range w.following {
		if !want[uid] {
			cancel()
			delete(w.following, uid)
		}
	}
	w.mu.Lock()
	for uid := range w.problems {
		if !want[uid] {
			delete(w.problems, uid)
		}
	}
	w.mu.Unlock()
}

// container picks a broker pod's log container, from the pod as the API server has it.
func (w *Watcher) container(ctx context.Context, pod *corev1.Pod, named string) (string, error) {
	reader := w.Pods
	if reader == nil {
		reader = w.Client
	}
	full := &corev1.Pod{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(pod), full); err != nil {
		return "", fmt.Errorf("reading the pod for its containers: %w", err)
	}
	return brokerContainer(full, named)
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
