package report

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// BenchmarkAgentMemory reports the heap the reporter holds with a full 50,000
// observation buffer and a batch of 10,000 connections on top: the agent's worst case.
func BenchmarkAgentMemory(b *testing.B) {
	var mib float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := New(Options{Node: "node-a", BufferSize: 50_000, MaxPerReport: 20_000})
		now := time.Now()
		for round := range 6 { // fills the buffer past its bound: the oldest are dropped
			for i := range 10_000 {
				r.AddConnection(reportv1.Connection{
					Client: netip.AddrFrom4([4]byte{10, byte(round), byte(i / 256), byte(i)}), Server: netip.MustParseAddr("10.96.0.20"), Port: 443, Time: now,
				})
			}
			r.closeBatch()
		}
		for i := range 10_000 {
			r.AddConnection(reportv1.Connection{Client: netip.AddrFrom4([4]byte{10, 9, byte(i / 256), byte(i)}), Server: netip.MustParseAddr("10.96.0.20"), Port: 443, Time: now})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if r.Buffered() != 60_000 {
			b.Fatalf("buffered %d", r.Buffered())
		}
		mib = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		runtime.KeepAlive(r)
	}
	b.ReportMetric(mib, "MiB")
}
