package kafka

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// leases says which workload held an IP over which time, as the resolver's pod
// history does: an IP a pod gave up goes to another.
type leases []struct {
	ip       netip.Addr
	from, to time.Time
	wl       resolve.Workload
}

func (l leases) WorkloadAt(ip netip.Addr, t time.Time) (resolve.Workload, bool) {
	for _, x := range l {
		if x.ip == ip && !t.Before(x.from) && t.Before(x.to) {
			return x.wl, true
		}
	}
	return resolve.Workload{}, false
}

// A broker on UTC+2 prints its local time without a zone; the kubelet's timestamp is
// the one that says who held the client's IP.
func TestRecorderAttributesByTheKubeletsTime(t *testing.T) {
	at := time.Date(2025, 3, 1, 8, 0, 1, 0, time.UTC)
	client := netip.MustParseAddr("10.244.1.9")
	early := resolve.Workload{Namespace: "shop", Name: "orders"}
	late := resolve.Workload{Namespace: "shop", Name: "reports"} // got the IP two hours on
	r := &Recorder{Resolver: leases{
		{client, at.Add(-time.Hour), at.Add(time.Hour), early},
		{client, at.Add(time.Hour), at.Add(3 * time.Hour), late},
	}}
	var calls []resolve.Call
	r.Add = func(c resolve.Call) { calls = append(calls, c) }
	broker := resolve.Workload{Namespace: "kafka", Name: "broker"}
	local := "[2025-03-01 10:00:01,000] DEBUG Principal = User:orders is Allowed Operation = Write from host = 10.244.1.9 on resource = Topic:LITERAL:orders for request = Produce with resourceRefCount = 1 (kafka.authorizer.logger)"
	r.Line(broker, at, []byte(local))
	r.Line(broker, at, []byte(strings.Replace(local, "] DEBUG", "] TRACE", 1)))
	if len(calls) != 1 {
		t.Fatalf("recorded %d calls, want the DEBUG line's only: %+v", len(calls), calls)
	}
	if c := calls[0]; c.Client != early || c.Server != broker || !c.Time.Equal(at) || c.Topic != "orders" || c.Operation != "write" {
		t.Errorf("recorded %+v; want orders → broker at %v, topic orders, write", c, at)
	}
}
