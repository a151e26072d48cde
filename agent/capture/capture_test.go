package capture

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// needRaw skips, saying why, where packet sockets cannot be opened.
func needRaw(t *testing.T) {
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
	c, err := Open([]string{"lo"}, filter, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := &collected{}
	done := make(chan struct{})
	go func() { c.Run(ctx, got.handle); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return got
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
