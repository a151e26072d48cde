package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// A capture's cost is CPU, not time: a reader waits for packets either way. Both
// benchmarks report as ns/op this process's CPU time (user and system) per DNS answer
// read. Another process sends the answers, one every benchGap, as a node's many
// clients get theirs: each packet then finds the reader asleep, as in an agent.
const (
	benchGap    = time.Millisecond
	benchName   = "bench.capture.example"
	benchServer = "127.42.1.53:53"
	benchClient = "127.42.1.10:40000"
	senderEnv   = "CAPTURE_BENCH_SEND"
)

// TestMain runs the benchmarks' sender when this binary is started as one.
func TestMain(m *testing.M) {
	if n := os.Getenv(senderEnv); n != "" {
		count, err := strconv.Atoi(n)
		if err == nil {
			err = sendSpread(count)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkCapture reads with the capture's ring, woken once a block.
func BenchmarkCapture(b *testing.B) {
	benchCapture(b, func(count func([]byte, time.Time, *packets.Decoder)) func() {
		c, err := Open([]string{"lo"}, packets.DNSFilter, SnaplenDNS)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx, count); close(done) }()
		return func() { cancel(); <-done }
	})
}

// BenchmarkCaptureBaseline reads the same answers with gopacket's pure-Go AF_PACKET
// handle (what the agent used before) and the same filter: a wake-up and a read for
// each packet.
func BenchmarkCaptureBaseline(b *testing.B) {
	benchCapture(b, func(count func([]byte, time.Time, *packets.Decoder)) func() {
		h, err := pcapgo.NewEthernetHandle("lo")
		if err != nil {
			b.Fatal(err)
		}
		prog, err := packets.DNSFilter(packets.LinkEthernet)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.SetCaptureLength(SnaplenDNS); err != nil {
			b.Fatal(err)
		}
		lo, err := loopbackIndex()
		if err != nil {
			b.Fatal(err)
		}
		if err := h.SetBPF(loopbackOnce(lo, prog)); err != nil {
			b.Fatal(err)
		}
		dec := packets.NewDecoder(layers.LayerTypeEthernet)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				data, ci, err := h.ZeroCopyReadPacketData()
				if err != nil {
					return // closed
				}
				count(data, ci.Timestamp, dec)
			}
		}()
		return func() { _ = h.Close(); <-done }
	})
}

func benchCapture(b *testing.B, start func(count func([]byte, time.Time, *packets.Decoder)) (stop func())) {
	if testing.Short() {
		b.Skip("spreads packets over time")
	}
	needRaw(b)
	var read atomic.Int64
	stop := start(func(data []byte, at time.Time, dec *packets.Decoder) {
		if dec.Decode(data, at) == packets.DNSAnswer && string(dec.Answer.Name) == benchName {
			read.Add(1)
		}
	})
	defer stop()
	sender := exec.Command(os.Args[0], "-test.run=^$")
	sender.Env = append(os.Environ(), fmt.Sprintf("%s=%d", senderEnv, b.N))
	sender.Stderr = os.Stderr
	b.ResetTimer()
	used := cpuTime(b)
	if err := sender.Run(); err != nil {
		b.Fatalf("the sender: %v", err)
	}
	for i := 0; i < 500 && read.Load() < int64(b.N); i++ { // at most 5 s
		time.Sleep(10 * time.Millisecond)
	}
	used = cpuTime(b) - used
	b.StopTimer()
	if n := read.Load(); n < int64(b.N) {
		b.Fatalf("read %d of %d answers", n, b.N)
	}
	b.ReportMetric(float64(used)/float64(b.N), "ns/op")
}

// sendSpread sends n DNS answers on loopback, one every benchGap.
func sendSpread(n int) error {
	pc, to, err := udpFrom(benchServer, benchClient)
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	a, err := answer(0, benchName)
	if err != nil {
		return err
	}
	tick := time.NewTicker(benchGap)
	defer tick.Stop()
	for range n {
		<-tick.C
		if _, err := pc.WriteTo(a, to); err != nil {
			return err
		}
	}
	return nil
}

// cpuTime is this process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
