package resolve_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// owners is the ReplicaSet → Deployment data of the benchmark's cluster.
type owners struct{}

func (owners) ControllerOf(_ context.Context, kind, _, name string) (string, string, bool) {
	if kind == "ReplicaSet" {
		return "Deployment", name[:len(name)-len("-abc")], true
	}
	return "", "", false
}

const benchPods = 10_000

var benchNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func podIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256) }

// benchCluster is 10,000 pods of 5,000 Deployments in 100 namespaces, on one node.
func benchCluster() []*corev1.Pod {
	pods := make([]*corev1.Pod, 0, benchPods)
	for i := range benchPods {
		app := fmt.Sprintf("app-%d", i/2)
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-abc-%d", app, i), Namespace: fmt.Sprintf("ns-%d", i%100), UID: types.UID(fmt.Sprint(i)),
				Labels:            map[string]string{"app": app},
				CreationTimestamp: metav1.Time{Time: benchNow.Add(-time.Hour)},
				OwnerReferences:   []metav1.OwnerReference{{Kind: "ReplicaSet", Name: app + "-abc", Controller: ptr.To(true)}},
			},
			Spec:   corev1.PodSpec{NodeName: "node-a"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP(i)},
		})
	}
	return pods
}

// benchReport is 10,000 connections between the cluster's pods, as steady traffic.
func benchReport() *reportv1.Report {
	rep := &reportv1.Report{Version: reportv1.Version, Node: "node-a"}
	for i := range 10_000 {
		rep.Connections = append(rep.Connections, reportv1.Connection{
			Client: netip.MustParseAddr(podIP(i % benchPods)), Server: netip.MustParseAddr(podIP((i*7 + 1) % benchPods)),
			Port: 8080, Time: benchNow,
		})
	}
	return rep
}

func reportObservations(b *testing.B, rep *reportv1.Report) {
	b.ReportMetric(float64(b.N*len(rep.Connections))/b.Elapsed().Seconds(), "obs/s")
}

// BenchmarkResolveMerge: a report through the resolver into the pending store.
func BenchmarkResolveMerge(b *testing.B) {
	r := resolve.New(owners{}, resolve.DefaultOptions())
	for _, pod := range benchCluster() {
		r.PodChanged(context.Background(), pod, benchNow)
	}
	store := pending.NewStore(nil)
	rep := benchReport()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Resolve(rep, store.Add)
	}
	reportObservations(b, rep)
}

// BenchmarkResolveMergeBaseline: the same work finding each IP by scanning the pods,
// as code without an IP index does.
func BenchmarkResolveMergeBaseline(b *testing.B) {
	pods := benchCluster()
	store := pending.NewStore(nil)
	rep := benchReport()
	workloadOf := func(p *corev1.Pod) resolve.Workload {
		return resolve.Workload{Namespace: p.Namespace, Name: p.Labels["app"], Kind: discoveryv1alpha1.KindDeployment}
	}
	find := func(ip netip.Addr) *corev1.Pod {
		for _, p := range pods {
			if p.Status.PodIP == ip.String() {
				return p
			}
		}
		return nil
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range rep.Connections {
			client, server := find(c.Client), find(c.Server)
			if client == nil || server == nil {
				continue
			}
			store.Add(resolve.Call{Client: workloadOf(client), Server: workloadOf(server), Type: discoveryv1alpha1.CallTCP, Port: c.Port, Time: c.Time})
		}
	}
	reportObservations(b, rep)
}

// BenchmarkResolveMergeBaselineIndexer: what a controller-runtime user would write: an
// informer's indexer keyed by pod IP, and the owner walked on each lookup.
func BenchmarkResolveMergeBaselineIndexer(b *testing.B) {
	byIP := toolscache.Indexers{"ip": func(obj any) ([]string, error) {
		pod := obj.(*corev1.Pod)
		ips := make([]string, 0, 1+len(pod.Status.PodIPs))
		ips = append(ips, pod.Status.PodIP)
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		return ips, nil
	}}
	indexer := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, byIP)
	for _, pod := range benchCluster() {
		if err := indexer.Add(pod); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	workloadOf := func(ip netip.Addr) (resolve.Workload, bool) {
		objs, err := indexer.ByIndex("ip", ip.String())
		if err != nil || len(objs) == 0 {
			return resolve.Workload{}, false
		}
		pod := objs[0].(*corev1.Pod)
		ref := metav1.GetControllerOf(pod)
		kind, name, ok := owners{}.ControllerOf(ctx, ref.Kind, pod.Namespace, ref.Name)
		return resolve.Workload{Namespace: pod.Namespace, Name: name, Kind: discoveryv1alpha1.WorkloadKind(kind)}, ok
	}
	store := pending.NewStore(nil)
	rep := benchReport()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range rep.Connections {
			client, ok1 := workloadOf(c.Client)
			server, ok2 := workloadOf(c.Server)
			if !ok1 || !ok2 {
				b.Fatal("pod not found")
			}
			store.Add(resolve.Call{Client: client, Server: server, Type: discoveryv1alpha1.CallTCP, Port: c.Port, Time: c.Time})
		}
	}
	reportObservations(b, rep)
}
