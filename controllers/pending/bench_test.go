package pending

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/intent-mapper/intent-mapper/controllers/resolve"
)

// BenchmarkMemoryPerCall reports the heap one pending call (a client, a server, a
// port) takes while it waits to be written.
func BenchmarkMemoryPerCall(b *testing.B) {
	const calls = 100_000
	b.ReportAllocs()
	var perCall float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := NewStore(nil)
		for i := range calls {
			c := resolve.Workload{Namespace: fmt.Sprintf("ns-%d", i%100), Name: fmt.Sprintf("client-%d", i%10_000), Kind: client.Kind}
			srv := resolve.Workload{Namespace: c.Namespace, Name: fmt.Sprintf("server-%d", i)}
			s.Add(resolve.Call{Client: c, Server: srv, Type: "tcp", Port: 8080, Time: t0})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perCall = float64(after.HeapAlloc-before.HeapAlloc) / calls
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perCall, "B/call")
}
