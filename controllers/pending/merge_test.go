package pending

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

var (
	t0     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	client = resolve.Workload{Namespace: "shop", Name: "client", Kind: discoveryv1alpha1.KindDeployment}
	nginx  = resolve.Workload{Namespace: "shop", Name: "nginx", Kind: discoveryv1alpha1.KindDeployment}
	opts   = MergeOptions{Step: time.Minute, MaxPaths: 100}
)

func httpCall(path, method string, at time.Time) resolve.Call {
	return resolve.Call{Client: client, Server: nginx, Type: discoveryv1alpha1.CallHTTP, Port: 80, Path: path, Method: method, Time: at}
}

func merged(t *testing.T, calls ...resolve.Call) *discoveryv1alpha1.DiscoveredIntentsStatus {
	t.Helper()
	b := newBatch(client.Name, client.Kind)
	for _, c := range calls {
		b.add(c)
	}
	status := &discoveryv1alpha1.DiscoveredIntentsStatus{}
	b.MergeInto(status, opts, t0)
	status.Sort()
	return status
}

func TestMergeStepsLastSeenAndKeepsFirstSeen(t *testing.T) {
	status := merged(t, httpCall("/a", "get", t0.Add(10*time.Second)), httpCall("/a", "POST", t0.Add(50*time.Second)))
	c := status.Calls[0]
	if got := c.FirstSeen.Time; !got.Equal(t0) {
		t.Errorf("firstSeen = %v, want the step %v", got, t0)
	}
	if got := c.LastSeen.Time; !got.Equal(t0) {
		t.Errorf("lastSeen = %v, want the step %v", got, t0)
	}
	if got := c.HTTP[0].Methods; fmt.Sprint(got) != "[GET POST]" {
		t.Errorf("methods = %v", got)
	}

	b := newBatch(client.Name, client.Kind)
	b.add(httpCall("/a", "GET", t0.Add(90*time.Second)))
	b.add(httpCall("/a", "GET", t0.Add(-time.Hour)))
	b.MergeInto(status, opts, t0)
	c = status.Calls[0]
	if got := c.LastSeen.Time; !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("lastSeen = %v, want the next step", got)
	}
	if got := c.FirstSeen.Time; !got.Equal(t0.Add(-time.Hour)) { // on a step already
		t.Errorf("firstSeen = %v, want the earlier observation", got)
	}
}

func TestMergeOfHistoryLeavesTimesUnset(t *testing.T) {
	h := httpCall("/old", "GET", t0)
	h.History = true
	status := merged(t, h)
	c := status.Calls[0]
	if c.LastSeen != nil || c.FirstSeen != nil || c.HTTP[0].LastSeen != nil {
		t.Errorf("history must not look fresh: %+v", c)
	}
	if c.HTTP[0].Path != "/old" || c.SeenBefore == nil || !c.SeenBefore.Time.Equal(t0) || c.HTTP[0].SeenBefore == nil {
		t.Errorf("history must say it happened before %v: %+v", t0, c)
	}

	b := newBatch(client.Name, client.Kind)
	b.add(httpCall("/old", "GET", t0.Add(time.Minute)))
	b.MergeInto(status, opts, t0)
	if c := status.Calls[0]; c.SeenBefore != nil || c.HTTP[0].SeenBefore != nil || c.LastSeen == nil {
		t.Errorf("a fresh observation replaces history: %+v", c)
	}
}

func TestMergeCapsPathsAndMarksTruncated(t *testing.T) {
	calls := make([]resolve.Call, 0, 150)
	for i := range 150 {
		calls = append(calls, httpCall(fmt.Sprintf("/route-%c%c", 'a'+i/26, 'a'+i%26), "GET", t0))
	}
	c := merged(t, calls...).Calls[0]
	if len(c.HTTP) != opts.MaxPaths || !c.Truncated {
		t.Errorf("%d paths, truncated %v; want %d and true", len(c.HTTP), c.Truncated, opts.MaxPaths)
	}
}

func TestDistinctIDsCollapseAndKeepObjectsSmall(t *testing.T) {
	b := newBatch(client.Name, client.Kind)
	for i := range 100_000 {
		b.add(httpCall(fmt.Sprintf("/users/%d/orders?page=%d", i, i), "GET", t0))
		b.add(httpCall(fmt.Sprintf("/route%d/x", i), "GET", t0))
	}
	status := &discoveryv1alpha1.DiscoveredIntentsStatus{}
	b.MergeInto(status, opts, t0)
	status.Sort()
	raw, err := yaml.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 1<<20 {
		t.Errorf("status is %d bytes, more than 1 MiB", len(raw))
	}
	c := status.Calls[0]
	if !c.Truncated || c.HTTP[0].Path == "" {
		t.Errorf("want a truncated call, got %d paths", len(c.HTTP))
	}
	if findPath(&c, "/users/*") == nil {
		t.Error("100,000 user ids must collapse into /users/*")
	}
}

func TestRetentionDropsWhatWasNotSeen(t *testing.T) {
	status := merged(t, httpCall("/a", "GET", t0.Add(-48*time.Hour)))
	var nothing *Batch
	nothing.MergeInto(status, MergeOptions{Step: time.Minute, MaxPaths: 100, Retention: 24 * time.Hour}, t0)
	if len(status.Calls) != 0 {
		t.Errorf("a call last seen two days ago survived a one-day retention: %+v", status.Calls)
	}
}

func TestTCPThenHTTPIsOneHTTPCall(t *testing.T) {
	tcp := resolve.Call{Client: client, Server: nginx, Type: discoveryv1alpha1.CallTCP, Port: 80, Service: "nginx", Time: t0}
	status := merged(t, tcp, httpCall("/a", "GET", t0))
	if len(status.Calls) != 1 || status.Calls[0].Type != discoveryv1alpha1.CallHTTP {
		t.Fatalf("want one http call, got %+v", status.Calls)
	}
	if fmt.Sprint(status.Calls[0].Services) != "[nginx]" || fmt.Sprint(status.Calls[0].Ports) != "[80]" {
		t.Errorf("services %v ports %v", status.Calls[0].Services, status.Calls[0].Ports)
	}
}

func TestStoreDropsObservationsOlderThanAReset(t *testing.T) {
	var notified []Key
	s := NewStore(func(k Key) { notified = append(notified, k) })
	key := Key{Namespace: "shop", Name: "client"}
	s.Add(httpCall("/a", "GET", t0))
	s.Seen(key)
	if !s.Gone(key, t0.Add(time.Minute)) {
		t.Fatal("a seen object that is gone is a reset")
	}
	s.Add(httpCall("/a", "GET", t0.Add(30*time.Second)))
	if s.Pending(key) {
		t.Error("an observation from before the reset was kept")
	}
	s.Add(httpCall("/a", "GET", t0.Add(2*time.Minute)))
	if !s.Pending(key) || len(notified) != 2 {
		t.Errorf("a newer observation must be kept and notified (notified %d)", len(notified))
	}
	b := s.Take(key, t0.Add(2*time.Minute))
	s.Restore(key, b)
	if !s.Pending(key) {
		t.Error("a failed write must give the calls back")
	}
}

func TestKafkaTopicsAndOperations(t *testing.T) {
	broker := resolve.Workload{Namespace: "kafka", Name: "broker", Kind: discoveryv1alpha1.KindStatefulSet}
	access := func(topic, op string) resolve.Call {
		return resolve.Call{Client: client, Server: broker, Type: discoveryv1alpha1.CallKafka, Topic: topic, Operation: op, Time: t0}
	}
	c := merged(t, access("orders", "write"), access("orders", "describe"), access("audit-*", "read"), access("orders", "write")).Calls[0]
	if c.Type != discoveryv1alpha1.CallKafka || fmt.Sprint(c.Kafka) != "[{audit-* [read]} {orders [describe write]}]" {
		t.Errorf("kafka call %+v", c)
	}
}

func TestMergeRecordsTheClientsServiceAccounts(t *testing.T) {
	a, b := httpCall("/a", "GET", t0), httpCall("/b", "GET", t0)
	a.ClientAccount, b.ClientAccount = "web", "api"
	status := merged(t, a, b, httpCall("/c", "GET", t0))
	if fmt.Sprint(status.ServiceAccounts) != "[api web]" {
		t.Errorf("serviceAccounts = %v, want [api web]", status.ServiceAccounts)
	}
}

func TestMergeKeepsTheAddressesNamesResolvedTo(t *testing.T) {
	stripe := func(ip string) resolve.Call {
		return resolve.Call{Client: client, Server: resolve.Workload{Name: "api.stripe.com"}, Type: discoveryv1alpha1.CallInternet,
			Port: 443, Domain: "api.stripe.com", ResolvedIP: ip, Time: t0}
	}
	status := merged(t, stripe("198.51.100.20"), stripe("198.51.100.21"), stripe("198.51.100.20"))
	in := status.Calls[0].Internet
	if fmt.Sprint(in.ResolvedIPs) != "[198.51.100.20 198.51.100.21]" || len(in.IPs) != 0 {
		t.Errorf("internet %+v", in)
	}
}
