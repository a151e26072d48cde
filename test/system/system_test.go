// Package system runs intent-mapper at scale against a real API server and the
// manager binary, and measures it: `make bench-system`. Sizes come from the
// environment (SYSTEM_CLIENTS, SYSTEM_CALLS, SYSTEM_AGENTS); results go to bench/system.json.
package system

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

func size(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

const (
	namespaces = 100
	step       = 20 * time.Second
	// maxAge is how old an observation the manager takes (its default tombstone TTL).
	maxAge = 10 * time.Minute
)

type run struct {
	sys        *scenario.System
	at         time.Time // when the load's calls were seen
	last       time.Time // the step last written for every client
	clients    int
	calls      int
	agents     int
	metrics    string
	httpClient *http.Client
	tokens     map[string]string // by node: each agent's token is bound to its pod there
	results    map[string]any
	retried    atomic.Int64 // reports the manager told to come back later
	pprof      string       // the manager's profiles, when asked for
}

func podIP(kind, i int) string { return fmt.Sprintf("10.%d.%d.%d", kind, i/250, i%250+1) }

func clientName(i int) (ns, name string) {
	return fmt.Sprintf("ns-%d", i%namespaces), fmt.Sprintf("cli-%d", i)
}

func serverName(ns string, j int) string { return fmt.Sprintf("srv-%s-%d", ns, j) }

// profileHeap saves the manager's heap profile in bench/, when profiles were asked for.
func (r *run) profileHeap(t *testing.T, name string) {
	if r.pprof == "" {
		return
	}
	if err := fetchTo("http://"+r.pprof+"/debug/pprof/heap", "../../bench/manager-heap-"+name+".pprof"); err != nil {
		t.Log(err)
	}
}

func TestSystem(t *testing.T) {
	if os.Getenv("INTENT_MAPPER_SYSTEM") == "" {
		t.Skip("system runs take minutes and run with make bench-system")
	}
	r := start(t)
	t.Run("ingest load", r.ingestLoad)
	t.Run("scale: writes only for real changes", r.scale)
	t.Run("restart: the map is read back, nothing rewritten", r.restart)
	t.Run("churn: reused IPs are never misattributed", r.churn)
	saveResults(t, r.results)
}

func start(t *testing.T) *run {
	ctx := context.Background()
	bin := buildBinary(t)
	metricsAddr := freeAddr(t)
	r := &run{clients: size("SYSTEM_CLIENTS", 10_000), calls: size("SYSTEM_CALLS", 50), agents: size("SYSTEM_AGENTS", 200),
		metrics: "http://" + metricsAddr + "/metrics", results: map[string]any{}}
	args := []string{"--last-seen-step", step.String(), "--flush-interval", "2s"}
	if os.Getenv("SYSTEM_MANAGER_PROFILE") != "" { // heap profiles in bench/ after the cold start and the restart
		r.pprof = freeAddr(t)
		args = append(args, "--pprof-bind-address", r.pprof)
	}
	sys, err := scenario.StartSystem(ctx, scenario.SystemOptions{
		Binary: bin, Assets: assets(), CRDs: crdDir(), Dir: t.TempDir(), MetricsAddr: metricsAddr, ManagerArgs: args,
	})
	if sys != nil {
		t.Cleanup(sys.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.sys = sys
	r.results["sizes"] = map[string]int{"clients": r.clients, "callsPerClient": r.calls, "agents": r.agents, "namespaces": namespaces}
	r.tokens = map[string]string{}
	for a := range r.agents {
		node := fmt.Sprintf("node-%d", a)
		if r.tokens[node], err = sys.AgentTokenOn(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{}
	if err := sys.Client.Get(ctx, client.ObjectKey{Namespace: scenario.Namespace, Name: "intent-mapper-ca"}, cm); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cm.Data["ca.crt"]))
	r.httpClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: scenario.IngestHost, MinVersion: tls.VersionTLS12}}}
	began := time.Now()
	r.stage(t)
	r.results["stagingSeconds"] = time.Since(began).Seconds()
	podBytes := r.podBytes(t)
	r.results["podBytes"] = podBytes
	t.Logf("staged %d pods of %d bytes each as JSON in %.0f s", r.clients+r.calls*namespaces, podBytes, time.Since(began).Seconds())
	if podBytes < 7_000 || podBytes > 10_000 {
		t.Fatalf("a staged pod is %d bytes as JSON; realistic pods are about 8 KB", podBytes)
	}
	return r
}

// stage registers the clients (spread over the agents' nodes) and their servers as
// running pods, with 16 writers at a time.
func (r *run) stage(t *testing.T) {
	ctx := context.Background()
	for n := range namespaces {
		if err := r.sys.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", n)}}); err != nil {
			t.Fatal(err)
		}
	}
	type podSpec struct{ ns, name, ip, node string }
	pods := make([]podSpec, 0, r.clients+r.calls*namespaces)
	for i := range r.clients {
		ns, name := clientName(i)
		pods = append(pods, podSpec{ns, name, podIP(1, i), fmt.Sprintf("node-%d", i%r.agents)})
	}
	for n := range namespaces {
		for j := range r.calls {
			ns := fmt.Sprintf("ns-%d", n)
			pods = append(pods, podSpec{ns, serverName(ns, j), podIP(2, n*r.calls+j), "node-servers"})
		}
	}
	work := make(chan podSpec)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := createPod(ctx, r.sys.Client, p.ns, p.name, p.ip, p.node); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatal(err)
	}
	r.waitSeen(t)
}

// waitSeen waits until the manager has seen every staged pod. A sentinel client and
// server are created after all of them; watch events come in order, so once a call
// between the two is recorded, the manager knows every earlier pod too.
func (r *run) waitSeen(t *testing.T) {
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(createPod(ctx, r.sys.Client, "ns-0", "sentinel-server", podIP(5, 1), "node-servers"))
	must(createPod(ctx, r.sys.Client, "ns-0", "sentinel", podIP(5, 2), "node-0"))
	for range 600 {
		must(r.post(&reportv1.Report{Version: reportv1.Version, Node: "node-0", AgentTime: time.Now(), Connections: []reportv1.Connection{{
			Client: netip.MustParseAddr(podIP(5, 2)), Server: netip.MustParseAddr(podIP(5, 1)), Port: 80, Time: time.Now(),
		}}}))
		if r.sys.Client.Get(ctx, client.ObjectKey{Namespace: "ns-0", Name: "sentinel"}, &discoveryv1alpha1.DiscoveredIntents{}) == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal("the manager never saw the staged pods")
}

// createPod stages a running pod as a Deployment and the kubelet would write it.
func createPod(ctx context.Context, c client.Client, ns, name, ip, node string) error {
	pod := realisticPod(ns, name, node)
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = runningStatus(pod, ip)
	return c.Status().Update(ctx, pod)
}

// podBytes is the size of one staged pod as JSON, as the API server stores it (less
// managedFields, which the manager's cache drops first).
func (r *run) podBytes(t *testing.T) int {
	pod := &corev1.Pod{}
	ns, name := clientName(0)
	if err := r.sys.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	pod.ManagedFields = nil
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return len(raw)
}

// round has every agent report every one of its clients' calls, seen at `at`.
func (r *run) round(t *testing.T, at time.Time) (observations int, elapsed time.Duration) {
	var wg sync.WaitGroup
	var total atomic.Int64
	began := time.Now()
	for a := range r.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep := &reportv1.Report{Version: reportv1.Version, Node: fmt.Sprintf("node-%d", a), AgentTime: time.Now()}
			for i := a; i < r.clients; i += r.agents {
				ns, _ := clientName(i)
				n := i % namespaces
				for j := range r.calls {
					rep.Connections = append(rep.Connections, reportv1.Connection{
						Client: netip.MustParseAddr(podIP(1, i)), Server: netip.MustParseAddr(podIP(2, n*r.calls+j)), Port: 8080, Time: at,
					})
				}
				_ = ns
			}
			if err := r.post(rep); err != nil {
				t.Error(err)
				return
			}
			total.Add(int64(len(rep.Connections)))
		}()
	}
	wg.Wait()
	return int(total.Load()), time.Since(began)
}

// post sends a report as an agent does: told to retry (429 while the manager's
// backlog is full, 503), it waits as long as the manager says and sends it again; a
// connection that fails (a restarted manager) is retried after a second.
func (r *run) post(rep *reportv1.Report) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_ = json.NewEncoder(zw).Encode(rep)
	_ = zw.Close()
	body := buf.Bytes()
	for range 360 { // an hour at the manager's 10 s
		wait, err := r.postOnce(rep.Node, body)
		if err != nil || wait == 0 {
			return err
		}
		r.retried.Add(1)
		time.Sleep(wait)
	}
	return fmt.Errorf("report from %s never accepted", rep.Node)
}

// postOnce sends a report once; a wait above zero says when to send it again.
func (r *run) postOnce(node string, body []byte) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, "https://"+r.sys.IngestAddr()+"/v1/reports", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.tokens[node])
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := r.httpClient.Do(req)
	if err != nil {
		return time.Second, nil
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusAccepted:
		return 0, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		seconds, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || seconds < 1 {
			return 0, fmt.Errorf("report refused with %d and no Retry-After: %s", resp.StatusCode, msg)
		}
		return time.Duration(seconds) * time.Second, nil
	}
	return 0, fmt.Errorf("report refused: %d %s", resp.StatusCode, msg)
}

// metric reads the manager's metrics page.
func (r *run) metric(t *testing.T) map[string]*dto.MetricFamily { return readMetrics(t, r.metrics) }

func counter(fams map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range fams[name].GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

// writeDelay estimates a quantile of the observation-to-write delay from its buckets.
func writeDelay(fams map[string]*dto.MetricFamily, q float64) float64 {
	ms := fams["intentmapper_observation_write_delay_seconds"].GetMetric()
	if len(ms) == 0 {
		return 0
	}
	h := ms[0].GetHistogram()
	target := q * float64(h.GetSampleCount())
	prevCount, prevBound := 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= target {
			if c == prevCount {
				return b.GetUpperBound()
			}
			return prevBound + (b.GetUpperBound()-prevBound)*(target-prevCount)/(c-prevCount)
		}
		prevCount, prevBound = c, b.GetUpperBound()
	}
	return prevBound
}

// process reads the manager's peak resident memory (MiB) and CPU seconds from /proc.
func (r *run) process() (peakMiB, cpuSeconds float64) {
	u := readProcess(r.sys.ManagerPID())
	return u.peakMiB, u.cpuSeconds
}

// waitWritten waits until every client's object lists all its calls and nothing is
// pending. It polls the manager's metrics, then checks the objects once: listing
// 10,000 objects every few seconds would load the API server it measures.
func (r *run) waitWritten(t *testing.T, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		fams := r.metric(t)
		if counter(fams, "intentmapper_status_writes_total") >= float64(r.clients) && counter(fams, "intentmapper_pending_clients") == 0 {
			complete := r.complete(t)
			if complete == r.clients {
				return
			}
			t.Logf("%d of %d objects complete", complete, r.clients)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d objects complete", limit, r.complete(t), r.clients)
		}
		time.Sleep(2 * time.Second)
	}
}

// firstWrites is, for every client's object, how long after its calls were seen its
// status was first written: the time the API server recorded for the status
// subresource's managed fields, which the first write set (one second's precision).
func (r *run) firstWrites(t *testing.T) []float64 {
	var out []float64
	r.eachObject(t, func(di *discoveryv1alpha1.DiscoveredIntents) {
		if !strings.HasPrefix(di.Name, "cli-") {
			return
		}
		for _, m := range di.ManagedFields {
			if m.Subresource == "status" && m.Time != nil {
				out = append(out, m.Time.Sub(r.at.Truncate(time.Second)).Seconds())
			}
		}
	})
	if len(out) != r.clients {
		t.Errorf("%d of %d objects tell when their status was written", len(out), r.clients)
	}
	sort.Float64s(out)
	return out
}

// quantile of sorted values (q=1: the largest).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// complete counts the clients' objects that list all their calls.
func (r *run) complete(t *testing.T) int {
	complete := 0
	r.eachObject(t, func(di *discoveryv1alpha1.DiscoveredIntents) {
		if strings.HasPrefix(di.Name, "cli-") && len(di.Status.Calls) == r.calls {
			complete++
		}
	})
	return complete
}

// eachObject calls fn on every DiscoveredIntents, listed a page at a time: one list of
// 10,000 objects of 18 KB is more than the API server answers in time.
func (r *run) eachObject(t *testing.T, fn func(*discoveryv1alpha1.DiscoveredIntents)) {
	opts := []client.ListOption{client.Limit(500)}
	for {
		list := &discoveryv1alpha1.DiscoveredIntentsList{}
		if err := r.sys.Client.List(context.Background(), list, opts...); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			fn(&list.Items[i])
		}
		if list.Continue == "" {
			return
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
}

func (r *run) ingestLoad(t *testing.T) {
	r.at = time.Now() // after every pod exists: calls are never blamed on a pod from before it was
	unresolved := counter(r.metric(t), "intentmapper_unresolved_total")
	_, cpuBefore := r.process()
	apiBefore, etcdBefore := controlPlaneCPU()
	retriedBefore := r.retried.Load()
	began := time.Now()
	obs, elapsed := r.round(t, r.at)
	r.waitWritten(t, 30*time.Minute) // a loaded API server takes 10,000 clients at 15 writes/s
	coldStart := time.Since(began)
	r.profileHeap(t, "cold-start")
	firstWrites := r.firstWrites(t)
	fams := r.metric(t)
	unresolved = counter(fams, "intentmapper_unresolved_total") - unresolved
	peak, cpu := r.process()
	apiServer, etcd := controlPlaneCPU()
	writes := counter(fams, "intentmapper_status_writes_total")
	cold := map[string]any{
		"seconds": coldStart.Seconds(), "writesPerSecond": writes / coldStart.Seconds(),
		"requests":               "create + status update per new client (status is ignored on create with the status subresource)",
		"writeDelayP50Seconds":   writeDelay(fams, 0.5),
		"writeDelayP99Seconds":   writeDelay(fams, 0.99),
		"firstWriteP50Seconds":   quantile(firstWrites, 0.5),
		"firstWriteP99Seconds":   quantile(firstWrites, 0.99),
		"firstWriteMaxSeconds":   quantile(firstWrites, 1),
		"managerCPUSeconds":      cpu - cpuBefore,
		"apiServerCPUSeconds":    apiServer - apiBefore,
		"etcdCPUSeconds":         etcd - etcdBefore,
		"loadAverageAfter":       loadAverage(),
		"managerPeakMiB":         peak,
		"managerMiBPer1kClients": peak / float64(r.clients) * 1000,
		"reportsToldToRetry":     r.retried.Load() - retriedBefore,
		"secondsToAcceptAll":     elapsed.Seconds(),
	}
	r.results["coldStart"] = cold
	t.Logf("cold start of %d clients (%d observations): %.0f s, %.0f writes/s, first write p50 %.0f s p99 %.0f s max %.0f s (the manager's histogram: p50 %.0f s p99 %.0f s); all accepted after %.0f s, %d reports told to retry; CPU s: manager %.1f, kube-apiserver %.1f, etcd %.1f; manager peak %.0f MiB (%.1f MiB per 1,000 clients); load average %s",
		r.clients, obs, coldStart.Seconds(), cold["writesPerSecond"], cold["firstWriteP50Seconds"], cold["firstWriteP99Seconds"], cold["firstWriteMaxSeconds"],
		cold["writeDelayP50Seconds"], cold["writeDelayP99Seconds"],
		elapsed.Seconds(), cold["reportsToldToRetry"],
		cold["managerCPUSeconds"], cold["apiServerCPUSeconds"], cold["etcdCPUSeconds"], peak, cold["managerMiBPer1kClients"], cold["loadAverageAfter"])
	cold["objectsCreated"] = counter(fams, "intentmapper_objects_created_total")
	cold["unresolvedObservations"] = unresolved
	if unresolved != 0 {
		t.Errorf("%v observations unresolved", unresolved)
	}
}

func (r *run) scale(t *testing.T) {
	at := r.at
	refreshed := false
	if time.Since(at) > maxAge/2 { // a slow cold start: reports at the first time would soon be refused as too old
		at, refreshed = time.Now(), true
		r.round(t, at) // a new step: written once, not counted
		r.settle(t)
	}
	before := counter(r.metric(t), "intentmapper_status_writes_total")
	retriedBefore := r.retried.Load()
	obs, elapsed := r.round(t, at) // the same calls, within the step already written
	accepted := time.Now()
	r.settle(t)
	same := counter(r.metric(t), "intentmapper_status_writes_total") - before
	r.results["ingest"] = map[string]any{
		"agents": r.agents, "observations": obs, "seconds": elapsed.Seconds(),
		"acceptedPerSecond":  float64(obs) / elapsed.Seconds(),
		"reportsToldToRetry": r.retried.Load() - retriedBefore,
		// settle waits 6 s once nothing is pending: the rest is the manager's merging.
		"secondsToMergeAfterAccepting": time.Since(accepted).Seconds() - 6,
	}
	t.Logf("ingest of %d observations of known calls from %d agents: %.0f observations/s, %d reports told to retry, merged %.0f s after the last was accepted",
		obs, r.agents, float64(obs)/elapsed.Seconds(), r.retried.Load()-retriedBefore, time.Since(accepted).Seconds()-6)

	next := at.Add(step)
	if now := time.Now(); now.After(next) { // a later step still, and fresh for the restart
		next = now
	}
	before = counter(r.metric(t), "intentmapper_status_writes_total")
	r.round(t, next) // the same calls, one step later
	r.settle(t)
	stepped := counter(r.metric(t), "intentmapper_status_writes_total") - before
	r.last = next

	var sizes []int
	r.eachObject(t, func(di *discoveryv1alpha1.DiscoveredIntents) {
		if strings.HasPrefix(di.Name, "cli-") {
			raw, _ := json.Marshal(di)
			sizes = append(sizes, len(raw))
		}
	})
	if len(sizes) == 0 {
		t.Fatal("no client's object listed")
	}
	sort.Ints(sizes)
	peak, _ := r.process()
	r.results["scale"] = map[string]any{
		"writesForTrafficWithinAStep": same, "writesForTrafficOneStepLater": stepped, "clients": r.clients,
		"objectBytesMedian": sizes[len(sizes)/2], "objectBytesMax": sizes[len(sizes)-1],
		"managerPeakMiB": peak, "managerMiBPer1kClients": peak / float64(r.clients) * 1000,
		"refreshedAfterASlowColdStart": refreshed,
	}
	t.Logf("steady state: %v writes within a step, %v one step later; object %d bytes (median); manager peak %.0f MiB (%.1f MiB per 1,000 clients); load average %s",
		same, stepped, sizes[len(sizes)/2], peak, peak/float64(r.clients)*1000, loadAverage())
	r.results["scale"].(map[string]any)["loadAverage"] = loadAverage()
	if same != 0 {
		t.Errorf("%v writes for traffic that changed nothing within a step", same)
	}
	if stepped > float64(r.clients) {
		t.Errorf("%v writes for one step of %d clients: more than one each", stepped, r.clients)
	}
}

// restart stops the manager as a rollout does and starts a new one over the
// 10,000 objects and 15,000 pods: it must read the map back (pods through the
// informer, objects a page at a time) and write nothing for calls it already holds.
func (r *run) restart(t *testing.T) {
	ctx := context.Background()
	at := r.last
	if at.IsZero() || time.Since(at) > maxAge-3*time.Minute { // reports at that time would soon be refused as too old
		at = time.Now()
		r.round(t, at) // a new step: written once, not counted
		r.settle(t)
	}
	if err := r.sys.TerminateManager(time.Minute); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := r.sys.StartManager(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitIngest(t)
	ready := time.Since(began)
	obs, _ := r.round(t, at) // the same calls, within the step written before the restart
	r.settle(t)
	r.profileHeap(t, "restart")
	fams := r.metric(t)
	writes, unresolved := counter(fams, "intentmapper_status_writes_total"), counter(fams, "intentmapper_unresolved_total")
	peak, cpu := r.process()
	r.results["restart"] = map[string]any{
		"secondsUntilReportsAccepted": ready.Seconds(), "observations": obs, "writes": writes, "unresolvedObservations": unresolved,
		"managerPeakMiB": peak, "managerMiBPer1kClients": peak / float64(r.clients) * 1000, "managerCPUSeconds": cpu, "loadAverage": loadAverage(),
	}
	t.Logf("restart over %d objects: reports accepted after %.0f s; %d observations of known calls: %v writes, %v unresolved; manager peak %.0f MiB, CPU %.1f s; load average %s",
		r.clients, ready.Seconds(), obs, writes, unresolved, peak, cpu, loadAverage())
	if writes != 0 {
		t.Errorf("%v writes after a restart for calls already written", writes)
	}
	if unresolved != 0 {
		t.Errorf("%v observations unresolved after a restart", unresolved)
	}
}

// waitIngest waits until the manager takes reports: an empty one, sent as agents
// send, retried while the manager starts.
func (r *run) waitIngest(t *testing.T) {
	if err := r.post(&reportv1.Report{Version: reportv1.Version, Node: "node-0", AgentTime: time.Now()}); err != nil {
		t.Fatalf("the restarted manager never took a report: %v", err)
	}
}

// settle waits until nothing is pending and a few flush intervals have passed.
func (r *run) settle(t *testing.T) {
	for range 1800 { // a loaded API server writes 10,000 objects in minutes
		if counter(r.metric(t), "intentmapper_pending_clients") == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(6 * time.Second)
}

// churn creates and deletes pods that reuse IPs while their traffic is reported late,
// and checks that every call lands on the pod that had the IP at its time.
func (r *run) churn(t *testing.T) {
	ctx := context.Background()
	const ips, rounds = 50, 4
	ns := "ns-0"
	for k := range ips * rounds {
		if err := createPod(ctx, r.sys.Client, ns, fmt.Sprintf("churn-srv-%d", k), podIP(3, k), "node-servers"); err != nil {
			t.Fatal(err)
		}
	}
	misattributed := 0
	var previous []reportv1.Connection
	for round := range rounds {
		current := make([]reportv1.Connection, 0, ips)
		for i := range ips { // this round's pods take the reused IPs
			k := round*ips + i
			if err := createPod(ctx, r.sys.Client, ns, fmt.Sprintf("churn-%d", k), podIP(4, i), "node-0"); err != nil {
				t.Fatal(err)
			}
			current = append(current, reportv1.Connection{Client: netip.MustParseAddr(podIP(4, i)), Server: netip.MustParseAddr(podIP(3, k)), Port: 80, Time: time.Now()})
		}
		time.Sleep(time.Second) // the resolver sees them
		if previous != nil {    // the last round's traffic, reported late: its pods are gone, these hold the IPs
			if err := r.post(&reportv1.Report{Version: reportv1.Version, Node: "node-0", AgentTime: time.Now(), Connections: previous}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range ips {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("churn-%d", round*ips+i)}}
			_ = r.sys.Client.Delete(ctx, pod, client.GracePeriodSeconds(0))
		}
		time.Sleep(time.Second) // the IPs are free for the next round
		previous = current
	}
	if err := r.post(&reportv1.Report{Version: reportv1.Version, Node: "node-0", AgentTime: time.Now(), Connections: previous}); err != nil {
		t.Fatal(err)
	}
	r.settle(t)
	list := &discoveryv1alpha1.DiscoveredIntentsList{}
	_ = r.sys.Client.List(ctx, list, client.InNamespace(ns))
	seen := 0
	for _, di := range list.Items {
		k, ok := strings.CutPrefix(di.Name, "churn-")
		if !ok || strings.HasPrefix(k, "srv") {
			continue
		}
		seen++
		for _, c := range di.Status.Calls {
			if c.Name != "churn-srv-"+k {
				misattributed++
				t.Errorf("%s calls %s: another pod's call", di.Name, c.Name)
			}
		}
	}
	r.results["churn"] = map[string]any{"pods": ips * rounds, "reusedIPs": ips, "clientsSeen": seen, "misattributed": misattributed}
	if seen != ips*rounds {
		t.Errorf("%d of %d churned clients have their call", seen, ips*rounds)
	}
}
