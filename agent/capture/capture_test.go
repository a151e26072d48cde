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

// sendAnswers sends one DNS answer for each name from a server's address to a client's,
// as fast as the socket takes them; nothing needs to listen at the client.
func sendAnswers(t *testing.T, server, client string, names []string) {
	t.Helper()
	if err := send(server, client, names); err != nil {
		t.Fatal(err)
	}
}

func send(server, client string, names []string) error {
	pc, err := net.ListenPacket("udp", server)
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	to, err := net.ResolveUDPAddr("udp", client)
	if err != nil {
		return err
	}
	for i, name := range names {
		a := &layers.DNS{ID: uint16(i), QR: true, RA: true,
			Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
		a.Answers = []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: net.IPv4(203, 0, 113, 90)}}
		out := gopacket.NewSerializeBuffer()
		if err := a.SerializeTo(out, gopacket.SerializeOptions{FixLengths: true}); err != nil {
			return err
		}
		if _, err := pc.WriteTo(out.Bytes(), to); err != nil {
			return err
		}
	}
	return nil
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

func TestOpenFailsClearlyOnAMissingInterface(t *testing.T) {
	needRaw(t)
	if _, err := Open([]string{"no-such-if0"}, packets.DNSFilter, SnaplenDNS); err == nil {
		t.Fatal("opened a capture on an interface that does not exist")
	}
}

// Packets wait in the ring until the kernel closes their block: a burst that arrives
// before any read is all captured, each with the time the kernel received it.
func TestBurstQueuedBeforeReadingIsCapturedWithItsReceiveTime(t *testing.T) {
	needRaw(t)
	c := openLoopback(t, packets.DNSFilter, SnaplenDNS)
	names := burstNames("queued", 300)
	sendAnswers(t, "127.42.0.55:53", "127.42.0.10:40000", names)
	sent := time.Now()
	got := &collected{}
	run(t, c, got)
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
}

// A burst larger than the socket's ring loses packets, and every one lost is counted.
func TestBurstBeyondTheQueueIsCountedAsDropped(t *testing.T) {
	needRaw(t)
	c := openLoopback(t, packets.DNSFilter, SnaplenDNS)
	names := burstNames("flood", 20_000) // the ring holds a few thousand such answers
	sendAnswers(t, "127.42.0.56:53", "127.42.0.11:40000", names)
	got := &collected{}
	run(t, c, got)
	var captured int
	eventually(t, "the queue read", func() bool {
		n := got.countNamed(names)
		stable := n == captured && n > 0
		captured = n
		return stable
	})
	dropped := c.Stats().Dropped
	t.Logf("captured %d of %d, %d counted dropped", captured, len(names), dropped)
	if dropped == 0 || captured == len(names) {
		t.Fatalf("captured %d of %d, %d dropped: the burst should not have fit the queue", captured, len(names), dropped)
	}
	if captured+int(dropped) < len(names) {
		t.Errorf("captured %d and counted %d dropped of %d sent: %d lost uncounted", captured, dropped, len(names), len(names)-captured-int(dropped))
	}
}

// One socket reads every interface, those made after it opened included: a new pod's
// veth is read from its first packet. Two network namespaces the test makes, joined by
// a veth pair made after the capture opened in one of them, carry the answers.
func TestEveryInterfaceFromOneSocketNewOnesIncluded(t *testing.T) {
	needRaw(t)
	a, b := newNetns(t, "a"), newNetns(t, "b")
	var c *Capture
	inNetns(t, a, func() (err error) {
		c, err = Open(nil, packets.DNSFilter, SnaplenDNS)
		return err
	})
	got := &collected{}
	run(t, c, got)
	for _, args := range [][]string{
		{"link", "add", "veth-a", "netns", a, "type", "veth", "peer", "name", "veth-b", "netns", b},
		{"-n", a, "addr", "add", "192.0.2.1/24", "dev", "veth-a"},
		{"-n", b, "addr", "add", "192.0.2.2/24", "dev", "veth-b"},
		{"-n", a, "link", "set", "veth-a", "up"},
		{"-n", b, "link", "set", "veth-b", "up"},
	} {
		ip(t, args...)
	}
	names := burstNames("veth", 20)
	inNetns(t, b, func() error { return send("192.0.2.2:53", "192.0.2.1:40000", names) })
	eventually(t, "the answers on the new veth", func() bool { return got.countNamed(names) == len(names) })
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, ans := range got.answers {
		if strings.HasPrefix(string(ans.Name), "veth-") && ans.Client != netip.MustParseAddr("192.0.2.1") {
			t.Errorf("answer for %s decoded for client %v, want 192.0.2.1", ans.Name, ans.Client)
		}
	}
}

// newNetns makes a network namespace that the test removes when it ends.
func newNetns(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("imcap-%d-%s", os.Getpid(), suffix)
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
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			errs <- err
			return
		}
		defer func() { _ = f.Close() }()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errs <- fmt.Errorf("entering %s: %w", name, err)
			return
		}
		errs <- fn()
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
