package report

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
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

// fullReport is a report at MaxPerReport's default: a busy node's DNS answers,
// connections and sidecar calls.
func fullReport() *reportv1.Report {
	now := time.Now()
	rep := &reportv1.Report{Version: reportv1.Version, Node: "node-a", AgentTime: now}
	for i := range 5_000 {
		client := netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i)})
		rep.DNS = append(rep.DNS, reportv1.DNSAnswer{Client: client, Name: fmt.Sprintf("svc-%d.shop.svc.cluster.local", i%300),
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i % 300 / 256), byte(i % 300)})}, TTL: 30, Time: now})
	}
	for i := range 10_000 {
		rep.Connections = append(rep.Connections, reportv1.Connection{Client: netip.AddrFrom4([4]byte{10, 2, byte(i / 256), byte(i)}),
			Server: netip.AddrFrom4([4]byte{10, 3, 0, byte(i % 10)}), Port: 8080, Time: now})
	}
	for i := range 5_000 {
		rep.HTTP = append(rep.HTTP, reportv1.HTTPCall{Reporter: reportv1.ReporterSource, Proxy: netip.AddrFrom4([4]byte{10, 4, 0, byte(i % 100)}),
			Source:      reportv1.Workload{Namespace: "shop", Name: fmt.Sprintf("frontend-%d", i%100)},
			Destination: reportv1.Workload{Namespace: "shop", Name: "cart"}, DestinationService: "cart.shop.svc.cluster.local",
			Method: "GET", Path: fmt.Sprintf("/api/v1/items/%d", i%50), Port: 8080, Count: 3, Time: now})
	}
	return rep
}

// BenchmarkEncode is a full report as the agent sends it, against the common way:
// the whole report marshalled, then gzipped at the default level.
func BenchmarkEncode(b *testing.B) {
	rep := fullReport()
	var size int
	for b.Loop() {
		out, err := encode(rep)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "B/report")
}

func BenchmarkEncodeBaseline(b *testing.B) {
	rep := fullReport()
	var size int
	for b.Loop() {
		raw, err := json.Marshal(rep)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(raw)
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "B/report")
}
