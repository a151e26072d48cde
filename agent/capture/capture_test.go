package capture

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// needRaw skips, saying why, where packet sockets cannot be opened.
func needRaw(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root (CAP_NET_RAW); CI runs as root")
	}
}

// serveDNS answers every query on addr with one A record, as a DNS server would.
func serveDNS(t *testing.T, addr string, answer net.IP) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := &layers.DNS{}
			if q.DecodeFromBytes(buf[:n], gopacket.NilDecodeFeedback) != nil || len(q.Questions) == 0 {
				continue
			}
			q.QR, q.RA = true, true
			q.Answers = []layers.DNSResourceRecord{{Name: q.Questions[0].Name, Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: answer}}
			out := gopacket.NewSerializeBuffer()
			if q.SerializeTo(out, gopacket.SerializeOptions{FixLengths: true}) == nil {
				_, _ = pc.WriteTo(out.Bytes(), from)
			}
		}
	}()
}

// collect runs a capture on lo and gathers what handle keeps until stop says so.
type collected struct {
	mu      sync.Mutex
	answers []packets.Answer
	opens   []packets.Open
}

func (c *collected) handle(data []byte, at time.Time, dec *packets.Decoder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch dec.Decode(data, at) {
	case packets.DNSAnswer:
		a := dec.Answer
		a.Name = append([]byte(nil), a.Name...)
		a.IPs = append([]netip.Addr(nil), a.IPs...)
		c.answers = append(c.answers, a)
	case packets.SYN:
		c.opens = append(c.opens, dec.Open)
	}
}

func startCapture(t *testing.T, filter Filter, snaplen int) *collected {
	t.Helper()
	c := openLoopback(t, filter, snaplen)
	got := &collected{}
	run(t, c, got)
	return got
}

func openLoopback(t *testing.T, filter Filter, snaplen int) *Capture {
	t.Helper()
	c, err := Open([]string{"lo"}, filter, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run reads c into got until the test ends.
func run(t *testing.T, c *Capture, got *collected) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, got.handle); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// send sends one DNS answer for each name from a server's address to a client's, as
// fast as the socket takes them; nothing needs to listen at the client.
func send(server, client string, names []string) error {
	pc, to, err := udpFrom(server, client)
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	for i, name := range names {
		a, err := answer(uint16(i), name)
		if err != nil {
			return err
		}
		if _, err := pc.WriteTo(a, to); err != nil {
			return err
		}
	}
	return nil
}

// udpFrom opens a UDP socket on the server's address and resolves the client's.
func udpFrom(server, client string) (net.PacketConn, net.Addr, error) {
	pc, err := net.ListenPacket("udp", server)
	if err != nil {
		return nil, nil, err
	}
	to, err := net.ResolveUDPAddr("udp", client)
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	return pc, to, nil
}

// answer is a DNS answer for name with one A record.
func answer(id uint16, name string) ([]byte, error) {
	a := &layers.DNS{ID: id, QR: true, RA: true,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	a.Answers = []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: net.IPv4(203, 0, 113, 90)}}
	out := gopacket.NewSerializeBuffer()
	if err := a.SerializeTo(out, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func burstNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d.burst.example", prefix, i)
	}
	return names
}

// countNamed counts the answers captured for names, once each name.
func (c *collected) countNamed(names []string) int {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.answers {
		if want[string(a.Name)] {
			delete(want, string(a.Name))
			n++
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 100 { // at most 5 s
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never saw %s", what)
}

func TestLiveDNSAnswerOnLoopback(t *testing.T) {
	needRaw(t)
	got := startCapture(t, packets.DNSFilter, SnaplenDNS)
	serveDNS(t, "127.42.0.53:53", net.IPv4(203, 0, 113, 80))

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 42, 0, 7)}}).DialContext(ctx, "udp", "127.42.0.53:53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := r.LookupIPAddr(ctx, "api.capture.example")
	if err != nil || len(ips) == 0 {
		t.Fatalf("lookup: %v %v", ips, err)
	}
	eventually(t, "the DNS answer", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, a := range got.answers {
			if string(a.Name) == "api.capture.example" && a.Client == netip.MustParseAddr("127.42.0.7") &&
				len(a.IPs) == 1 && a.IPs[0] == netip.MustParseAddr("203.0.113.80") {
				return true
			}
		}
		return false
	})
}

// Loopback carries each packet leaving and arriving; the capture keeps one copy. The
// answers arrive in order, so once the second is seen, a copy of the first would have been.
func TestLoopbackAnswerCapturedOnce(t *testing.T) {
	needRaw(t)
	got := startCapture(t, packets.DNSFilter, SnaplenDNS)
	serveDNS(t, "127.42.0.54:53", net.IPv4(203, 0, 113, 81))
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 42, 0, 8)}}).DialContext(ctx, "udp", "127.42.0.54:53")
	}}
	count := func(name string) int {
		got.mu.Lock()
		defer got.mu.Unlock()
		n := 0
		for _, a := range got.answers {
			if string(a.Name) == name {
				n++
			}
		}
		return n
	}
	for _, name := range []string{"first.once.example", "second.once.example"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := r.LookupIPAddr(ctx, name)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the answer for "+name, func() bool { return count(name) > 0 })
	}
	// The Go resolver asks for A and AAAA: the server answers each with one A record.
	if n := count("first.once.example"); n != 2 {
		t.Errorf("%d answers captured for two queries: each must be captured once", n)
	}
}

func TestLiveSYNOfAShortConnection(t *testing.T) {
	needRaw(t)
	got := startCapture(t, packets.SYNFilter, SnaplenSYN)
	ln, err := net.Listen("tcp", "127.42.0.80:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 42, 0, 9)}}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close() // opened and closed long before any /proc scan
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	eventually(t, "the SYN", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, o := range got.opens {
			if o.Client == netip.MustParseAddr("127.42.0.9") && o.Server == netip.MustParseAddr("127.42.0.80") && o.Port == port {
				return true
			}
		}
		return false
	})
}

func TestKernelVersions(t *testing.T) {
	for release, want := range map[string]bool{"6.18.44-fc-v857": true, "6.15.0": true, "6.14.11-300.fc42.x86_64": false,
		"5.15.0-91-generic": false, "7.0": true, "6.15rc1": true, "": false, "junk": false} {
		if got := versionAtLeast(release, 6, 15); got != want {
			t.Errorf("versionAtLeast(%q, 6, 15) = %v, want %v", release, got, want)
		}
	}
}

func TestOpenFailsClearlyOnAMissingInterface(t *testing.T) {
	needRaw(t)
	if _, err := Open([]string{"no-such-if0"}, packets.DNSFilter, SnaplenDNS); err == nil {
		t.Fatal("opened a capture on an interface that does not exist")
	}
}

// bothWays runs a test of every interface once for each way of reading them: rings
// (Linux 6.15 and later) and queues (before), in a network namespace of its own.
func bothWays(t *testing.T, test func(t *testing.T, ns string, c *Capture)) {
	needRaw(t)
	for _, rings := range []bool{true, false} {
		t.Run(map[bool]string{true: "rings", false: "queues"}[rings], func(t *testing.T) {
			was := unboundStaysInNamespace
			unboundStaysInNamespace = rings
			t.Cleanup(func() { unboundStaysInNamespace = was })
			ns := newNetns(t, "x")
			var c *Capture
			inNetns(t, ns, func() (err error) {
				c, err = Open(nil, packets.DNSFilter, SnaplenDNS)
				return err
			})
			if q, ok := c.r.(*queues); ok {
				q.rescan = 50 * time.Millisecond
			}
			test(t, ns, c)
		})
	}
}

// Packets wait while the reader sleeps: a burst that arrives before any read is all
// captured, each with the time the kernel received it, not the read's.
func TestBurstQueuedBeforeReadingIsCapturedWithItsReceiveTime(t *testing.T) {
	bothWays(t, func(t *testing.T, ns string, c *Capture) {
		if q, ok := c.r.(*queues); ok {
			waitForReceiveTimes(t, ns, q)
		}
		names := burstNames("queued", 300)
		inNetns(t, ns, func() error { return send("127.42.0.55:53", "127.42.0.10:40000", names) })
		sent := time.Now()
		got := &collected{}
		runIn(t, ns, c, got)
		eventually(t, "all 300 answers", func() bool { return got.countNamed(names) == len(names) })
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, a := range got.answers {
			if strings.HasSuffix(string(a.Name), ".burst.example") && !a.Time.Before(sent) {
				t.Fatalf("answer for %s stamped %v, after it was sent (%v): the read's time, not the kernel's", a.Name, a.Time, sent)
			}
		}
		if d := c.Stats().Dropped; d != 0 {
			t.Errorf("%d packets dropped from a burst of 300", d)
		}
	})
}

// waitForReceiveTimes waits until the kernel stamps packets as they arrive. It turns
// receive times on for the first socket that asks a moment later, from a work queue;
// until then, a packet is stamped when it is read. Rings are always stamped.
func waitForReceiveTimes(t *testing.T, ns string, q *queues) {
	t.Helper()
	var lo *queue
	for _, s := range q.socks {
		if s.name == "lo" {
			lo = s
		}
	}
	for i := range 100 {
		name := fmt.Sprintf("probe-%d.stamp.example", i)
		inNetns(t, ns, func() error { return send("127.42.0.57:53", "127.42.0.12:40000", []string{name}) })
		sent := time.Now()
		time.Sleep(10 * time.Millisecond)
		early := false
		if _, err := lo.drain(func(_ []byte, at time.Time) { early = early || at.Before(sent) }); err != nil {
			t.Fatal(err)
		}
		if early {
			return
		}
	}
	t.Fatal("the kernel never stamped a packet before it was read")
}

// A burst larger than what a socket holds loses packets, and every one lost is counted.
func TestBurstBeyondTheQueueIsCountedAsDropped(t *testing.T) {
	bothWays(t, func(t *testing.T, ns string, c *Capture) {
		// A queue holds 2 × net.core.rmem_max, about 830 bytes a packet (2,500 here, 500 on
		// a default kernel); the DNS ring about 2,000 such answers.
		names := burstNames("flood", 20_000)
		inNetns(t, ns, func() error { return send("127.42.0.56:53", "127.42.0.11:40000", names) })
		got := &collected{}
		runIn(t, ns, c, got)
		var captured int
		var dropped uint64
		eventually(t, "every answer captured or counted as dropped", func() bool {
			captured, dropped = got.countNamed(names), c.Stats().Dropped
			return captured+int(dropped) >= len(names)
		})
		t.Logf("captured %d of %d, %d counted dropped", captured, len(names), dropped)
		if dropped == 0 || captured == len(names) {
			t.Fatalf("captured %d of %d, %d dropped: the burst should not have fit", captured, len(names), dropped)
		}
	})
}

// A capture of every interface takes in new ones as they come up (a new pod's veth),
// and keeps what the host sends on them, unlike on loopback. A veth pair made after
// the capture opened joins its namespace to another and carries answers both ways.
func TestEveryInterfaceNewOnesIncludedBothWays(t *testing.T) {
	bothWays(t, func(t *testing.T, a string, c *Capture) {
		b := newNetns(t, "y")
		got := &collected{}
		runIn(t, a, c, got)
		for _, args := range [][]string{
			{"link", "add", "veth-a", "netns", a, "type", "veth", "peer", "name", "veth-b", "netns", b},
			{"-n", a, "addr", "add", "192.0.2.1/24", "dev", "veth-a"},
			{"-n", b, "addr", "add", "192.0.2.2/24", "dev", "veth-b"},
			{"-n", a, "link", "set", "veth-a", "up"},
			{"-n", b, "link", "set", "veth-b", "up"},
		} {
			ip(t, args...)
		}
		if q, ok := c.r.(*queues); ok {
			eventually(t, "a socket on the new veth", func() bool {
				q.mu.Lock()
				defer q.mu.Unlock()
				return q.names["veth-a"]
			})
		}
		in, out := burstNames("in", 20), burstNames("out", 20)
		inNetns(t, b, func() error { return send("192.0.2.2:53", "192.0.2.1:40000", in) })
		inNetns(t, a, func() error { return send("192.0.2.1:53", "192.0.2.2:40000", out) })
		eventually(t, "the answers received on the new veth", func() bool { return got.countNamed(in) == len(in) })
		eventually(t, "the answers sent on the new veth", func() bool { return got.countNamed(out) == len(out) })
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, ans := range got.answers {
			name := string(ans.Name)
			want := map[bool]string{true: "192.0.2.1", false: "192.0.2.2"}[strings.HasPrefix(name, "in-")]
			if strings.HasSuffix(name, ".burst.example") && ans.Client != netip.MustParseAddr(want) {
				t.Errorf("answer for %s decoded for client %v, want %s", name, ans.Client, want)
			}
		}
	})
}

// runIn reads c into got until the test ends, from a thread in the named network
// namespace, where the capture looks for new interfaces.
func runIn(t *testing.T, name string, c *Capture, got *collected) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := enter(name); err != nil {
			t.Error(err)
			c.Close()
			return
		}
		c.Run(ctx, got.handle)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

var netnsSeq atomic.Int64

// newNetns makes a network namespace that the test removes when it ends.
func newNetns(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("imcap-%d-%s-%d", os.Getpid(), suffix, netnsSeq.Add(1))
	ip(t, "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	ip(t, "-n", name, "link", "set", "lo", "up")
	return name
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on a thread that entered the named network namespace: sockets fn
// opens stay in it. The thread is never given back; it ends with its goroutine.
func inNetns(t *testing.T, name string, fn func() error) {
	t.Helper()
	errs := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enter(name); err != nil {
			errs <- err
			return
		}
		errs <- fn()
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// enter moves the calling thread into the named network namespace.
func enter(name string) error {
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering %s: %w", name, err)
	}
	return nil
}
