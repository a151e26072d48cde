package packets

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var seen = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func a(name, ip string, ttl uint32) layers.DNSResourceRecord {
	parsed := net.ParseIP(ip)
	typ := layers.DNSTypeA
	if parsed.To4() == nil {
		typ = layers.DNSTypeAAAA
	}
	return layers.DNSResourceRecord{Name: []byte(name), Type: typ, Class: layers.DNSClassIN, TTL: ttl, IP: parsed}
}

func cname(name, target string) layers.DNSResourceRecord {
	return layers.DNSResourceRecord{Name: []byte(name), Type: layers.DNSTypeCNAME, Class: layers.DNSClassIN, TTL: 300, CNAME: []byte(target)}
}

func response(question string, answers ...layers.DNSResourceRecord) *layers.DNS {
	return &layers.DNS{
		ID: 7, QR: true, OpCode: layers.DNSOpCodeQuery, RD: true, RA: true,
		Questions: []layers.DNSQuestion{{Name: []byte(question), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
		Answers:   answers,
	}
}

// packet serialises a frame the way it travels: link layer, IP, transport, payload.
func packet(t testing.TB, link gopacket.SerializableLayer, server, client string, transport string, payload gopacket.SerializableLayer) []byte {
	t.Helper()
	var ip gopacket.NetworkLayer
	proto := layers.IPProtocolUDP
	if transport == "tcp" {
		proto = layers.IPProtocolTCP
	}
	src, dst := net.ParseIP(server), net.ParseIP(client)
	ethType := layers.EthernetTypeIPv4
	if src.To4() != nil {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.To4(), DstIP: dst.To4()}
	} else {
		ethType = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src, DstIP: dst}
	}
	stack := []gopacket.SerializableLayer{}
	switch l := link.(type) {
	case *layers.Ethernet:
		l.EthernetType = ethType
		stack = append(stack, l)
	case *layers.Dot1Q:
		stack = append(stack, &layers.Ethernet{SrcMAC: mac(1), DstMAC: mac(2), EthernetType: layers.EthernetTypeDot1Q}, l)
		l.Type = ethType
	}
	stack = append(stack, ip.(gopacket.SerializableLayer))
	switch transport {
	case "udp":
		udp := &layers.UDP{SrcPort: 53, DstPort: 40000}
		_ = udp.SetNetworkLayerForChecksum(ip)
		stack = append(stack, udp)
	case "tcp":
		tcp := &layers.TCP{SrcPort: 53, DstPort: 40000, ACK: true, PSH: true, Window: 512}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		stack = append(stack, tcp)
	}
	if payload != nil {
		stack = append(stack, payload)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cooked puts the 16-byte Linux cooked-capture header the kernel writes before an IP packet.
func cooked(ip []byte, proto layers.EthernetType) []byte {
	hdr := make([]byte, 16, 16+len(ip))
	binary.BigEndian.PutUint16(hdr[0:], uint16(layers.LinuxSLLPacketTypeHost))
	binary.BigEndian.PutUint16(hdr[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(hdr[4:], 6)
	copy(hdr[6:], mac(1))
	binary.BigEndian.PutUint16(hdr[14:], uint16(proto))
	return append(hdr, ip...)
}

func mac(n byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, n} }

func eth() *layers.Ethernet { return &layers.Ethernet{SrcMAC: mac(1), DstMAC: mac(2)} }

// tcpDNS frames a DNS message for TCP: a two-byte length first.
type tcpDNS struct{ msg *layers.DNS }

func (m tcpDNS) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (m tcpDNS) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	inner := gopacket.NewSerializeBuffer()
	if err := m.msg.SerializeTo(inner, opts); err != nil {
		return err
	}
	out, err := b.PrependBytes(2 + len(inner.Bytes()))
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(out, uint16(len(inner.Bytes())))
	copy(out[2:], inner.Bytes())
	return nil
}

func expectAnswer(t *testing.T, d *Decoder, data []byte, client, name string, ttl uint32, ips ...string) {
	t.Helper()
	if kind := d.Decode(data, seen); kind != DNSAnswer {
		t.Fatalf("kind %v, want a DNS answer", kind)
	}
	got := d.Answer
	if got.Client != netip.MustParseAddr(client) || string(got.Name) != name || got.TTL != ttl || !got.Time.Equal(seen) {
		t.Errorf("answer %s %q ttl %d, want %s %q ttl %d", got.Client, got.Name, got.TTL, client, name, ttl)
	}
	if len(got.IPs) != len(ips) {
		t.Fatalf("ips %v, want %v", got.IPs, ips)
	}
	for i, ip := range ips {
		if got.IPs[i] != netip.MustParseAddr(ip) {
			t.Errorf("ips %v, want %v", got.IPs, ips)
		}
	}
}

func TestDecodeDNSAnswers(t *testing.T) {
	eth4 := NewDecoder(layers.LayerTypeEthernet)
	expectAnswer(t, eth4, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", response("api.stripe.com", a("api.stripe.com", "203.0.113.10", 60))),
		"10.244.1.7", "api.stripe.com", 60, "203.0.113.10")

	t.Run("AAAA over IPv6", func(t *testing.T) {
		expectAnswer(t, eth4, packet(t, eth(), "fd00::10", "fd00::7", "udp", response("v6.example", a("v6.example", "2001:db8::1", 30))),
			"fd00::7", "v6.example", 30, "2001:db8::1")
	})
	t.Run("CNAME chain, answers out of order", func(t *testing.T) {
		msg := response("www.shop.example",
			a("edge.cdn.example", "203.0.113.20", 20),
			cname("www.shop.example", "shop.cdn.example"),
			a("unrelated.example", "203.0.113.99", 5),
			cname("shop.cdn.example", "edge.cdn.example"),
			a("edge.cdn.example", "203.0.113.21", 40))
		expectAnswer(t, eth4, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", msg),
			"10.244.1.7", "www.shop.example", 20, "203.0.113.20", "203.0.113.21")
	})
	t.Run("VLAN tag", func(t *testing.T) {
		expectAnswer(t, eth4, packet(t, &layers.Dot1Q{VLANIdentifier: 42}, "10.96.0.10", "10.244.1.7", "udp", response("vlan.example", a("vlan.example", "203.0.113.30", 9))),
			"10.244.1.7", "vlan.example", 9, "203.0.113.30")
	})
	t.Run("Linux cooked", func(t *testing.T) {
		sll := NewDecoder(layers.LayerTypeLinuxSLL)
		ip := packet(t, nil, "10.96.0.10", "10.244.1.7", "udp", response("sll.example", a("sll.example", "203.0.113.40", 9)))
		expectAnswer(t, sll, cooked(ip, layers.EthernetTypeIPv4), "10.244.1.7", "sll.example", 9, "203.0.113.40")
	})
	t.Run("raw IP, both versions", func(t *testing.T) {
		raw := NewDecoder(layers.LayerTypeIPv4)
		expectAnswer(t, raw, packet(t, nil, "10.96.0.10", "10.244.1.7", "udp", response("raw.example", a("raw.example", "203.0.113.50", 9))),
			"10.244.1.7", "raw.example", 9, "203.0.113.50")
		expectAnswer(t, raw, packet(t, nil, "fd00::10", "fd00::7", "udp", response("raw6.example", a("raw6.example", "2001:db8::5", 9))),
			"fd00::7", "raw6.example", 9, "2001:db8::5")
	})
	t.Run("over TCP", func(t *testing.T) {
		expectAnswer(t, eth4, packet(t, eth(), "10.96.0.10", "10.244.1.7", "tcp", tcpDNS{response("tcp.example", a("tcp.example", "203.0.113.60", 9))}),
			"10.244.1.7", "tcp.example", 9, "203.0.113.60")
	})
}

// compressed is a response whose answer names the question by a pointer (0xc00c),
// as real servers write it.
func compressed() []byte {
	msg := make([]byte, 0, 64)
	msg = append(msg, 0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0)
	msg = append(msg, 3, 'a', 'p', 'i', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1)
	msg = append(msg, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 203, 0, 113, 70)
	return msg
}

func TestDecodeCompressedNames(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	expectAnswer(t, d, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload(compressed())),
		"10.244.1.7", "api.example", 120, "203.0.113.70")
}

func TestDecodeRefusesWhatIsNotAnAnswer(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	good := packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", response("x.example", a("x.example", "203.0.113.1", 9)))
	query := response("x.example")
	query.QR = false
	nxdomain := response("nope.example")
	nxdomain.ResponseCode = layers.DNSResponseCodeNXDomain
	for name, tc := range map[string]struct {
		data []byte
		want Kind
	}{
		"truncated in the DNS header": {good[:len(good)-30], Malformed},
		"truncated in the IP header":  {good[:20], Malformed},
		"empty":                       {nil, Malformed},
		"garbage on port 53":          {packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload("\xff\x00not dns at all, not even close")), Malformed},
		"a query, not a response":     {packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", query), Other},
		"NXDOMAIN":                    {packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", nxdomain), Other},
		"TCP DNS cut mid-message":     {packet(t, eth(), "10.96.0.10", "10.244.1.7", "tcp", gopacket.Payload([]byte{0, 200, 1, 2, 3})), Malformed},
	} {
		if got := d.Decode(tc.data, seen); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestDecodeSYN(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IPv4(10, 244, 1, 7), DstIP: net.IPv4(10, 96, 0, 20)}
	syn := &layers.TCP{SrcPort: 41000, DstPort: 8080, SYN: true, Window: 64240}
	_ = syn.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	e := eth()
	e.EthernetType = layers.EthernetTypeIPv4
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, e, ip, syn); err != nil {
		t.Fatal(err)
	}
	if kind := d.Decode(buf.Bytes(), seen); kind != SYN {
		t.Fatalf("kind %v", kind)
	}
	if d.Open != (Open{Client: netip.MustParseAddr("10.244.1.7"), Server: netip.MustParseAddr("10.96.0.20"), Port: 8080, Time: seen}) {
		t.Errorf("open %+v", d.Open)
	}
	syn.ACK = true
	buf = gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, e, ip, syn)
	if kind := d.Decode(buf.Bytes(), seen); kind == SYN {
		t.Error("a SYN-ACK is the server's answer, not a connection opened")
	}
}

// FuzzDecode: any bytes give a kind, never a panic, and an answer only with addresses.
func FuzzDecode(f *testing.F) {
	f.Add(packet(f, eth(), "10.96.0.10", "10.244.1.7", "udp", response("a.example", a("a.example", "203.0.113.1", 9))))
	f.Add(packet(f, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload(compressed())))
	f.Add(packet(f, eth(), "fd00::10", "fd00::7", "tcp", tcpDNS{response("t.example", a("t.example", "2001:db8::1", 9))}))
	d := NewDecoder(layers.LayerTypeEthernet)
	f.Fuzz(func(t *testing.T, data []byte) {
		if d.Decode(data, seen) == DNSAnswer && len(d.Answer.IPs) == 0 {
			t.Fatal("an answer with no address")
		}
	})
}

// sll2Header: LINKTYPE_LINUX_SLL2's 20 bytes for an outgoing IPv4/IPv6 packet on
// interface 12, an Ethernet device with a 6-byte address.
func sll2Header(proto layers.EthernetType) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], uint16(proto))
	binary.BigEndian.PutUint32(h[4:], 12)
	binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
	h[10], h[11] = 4, 6                  // PACKET_OUTGOING, address length
	copy(h[12:], mac(3))
	return h
}

func TestDecodeLinuxCookedV2(t *testing.T) {
	d := NewDecoder(layers.LayerTypeLinuxSLL2)
	v6 := append(sll2Header(layers.EthernetTypeIPv6), packet(t, nil, "fd00::10", "fd00::7", "udp", response("b.example", a("b.example", "2001:db8::2", 20)))...)
	if d.Decode(v6, seen) != DNSAnswer || d.Answer.Client != netip.MustParseAddr("fd00::7") || d.Answer.IPs[0] != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("IPv6 answer behind SLL2: %+v", d.Answer)
	}
	if k := d.Decode(sll2Header(layers.EthernetTypeIPv4)[:19], seen); k != Malformed {
		t.Errorf("a cut SLL2 header decoded as %v", k)
	}
}

func FuzzDecodeLinuxCookedV2(f *testing.F) {
	f.Add(append(sll2Header(layers.EthernetTypeIPv4), packet(f, nil, "10.96.0.10", "10.244.1.7", "udp", response("a.example", a("a.example", "203.0.113.1", 9)))...))
	f.Add(append(sll2Header(layers.EthernetTypeIPv6), packet(f, nil, "fd00::10", "fd00::7", "tcp", tcpDNS{response("t.example", a("t.example", "2001:db8::1", 9))})...))
	d := NewDecoder(layers.LayerTypeLinuxSLL2)
	f.Fuzz(func(t *testing.T, data []byte) {
		if d.Decode(data, seen) == DNSAnswer && len(d.Answer.IPs) == 0 {
			t.Fatal("an answer with no address")
		}
	})
}
