package packets

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// runFilter runs a filter in x/net/bpf's VM, as the kernel would, and says whether
// the packet passes.
func runFilter(t *testing.T, raw []bpf.RawInstruction, data []byte) bool {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func synPacket(t *testing.T, link gopacket.SerializableLayer, ack bool, src, dst string) []byte {
	t.Helper()
	s, d := net.ParseIP(src), net.ParseIP(dst)
	var ip gopacket.NetworkLayer
	etype := layers.EthernetTypeIPv4
	if s.To4() != nil {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s.To4(), DstIP: d.To4()}
	} else {
		etype = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: s, DstIP: d}
	}
	tcp := &layers.TCP{SrcPort: 41000, DstPort: 443, SYN: true, ACK: ack, Window: 64240}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	var stack []gopacket.SerializableLayer
	if e, ok := link.(*layers.Ethernet); ok {
		e.EthernetType = etype
		stack = append(stack, e)
	}
	stack = append(stack, ip.(gopacket.SerializableLayer), tcp)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFilters(t *testing.T) {
	dnsEth, _ := DNSFilter(LinkEthernet)
	dnsRaw, _ := DNSFilter(LinkRawIP)
	synEth, _ := SYNFilter(LinkEthernet)
	synRaw, _ := SYNFilter(LinkRawIP)
	answer := response("f.example", a("f.example", "203.0.113.1", 9))
	ntp := packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload("x"))
	ntp[14+20+1] = 123 // source port 123, not 53

	for name, tc := range map[string]struct {
		filter []bpf.RawInstruction
		data   []byte
		pass   bool
	}{
		"dns udp4":          {dnsEth, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", answer), true},
		"dns udp6":          {dnsEth, packet(t, eth(), "fd00::10", "fd00::7", "udp", answer), true},
		"dns tcp4":          {dnsEth, packet(t, eth(), "10.96.0.10", "10.244.1.7", "tcp", tcpDNS{answer}), true},
		"dns tcp6":          {dnsEth, packet(t, eth(), "fd00::10", "fd00::7", "tcp", tcpDNS{answer}), true},
		"dns vlan":          {dnsEth, packet(t, &layers.Dot1Q{VLANIdentifier: 7}, "10.96.0.10", "10.244.1.7", "udp", answer), true},
		"dns raw4":          {dnsRaw, packet(t, nil, "10.96.0.10", "10.244.1.7", "udp", answer), true},
		"dns raw6":          {dnsRaw, packet(t, nil, "fd00::10", "fd00::7", "udp", answer), true},
		"other udp":         {dnsEth, ntp, false},
		"syn to dns filter": {dnsEth, synPacket(t, eth(), false, "10.244.1.7", "10.96.0.20"), false},
		"syn4":              {synEth, synPacket(t, eth(), false, "10.244.1.7", "10.96.0.20"), true},
		"syn6":              {synEth, synPacket(t, eth(), false, "fd00::7", "fd00::20"), true},
		"syn raw4":          {synRaw, synPacket(t, nil, false, "10.244.1.7", "10.96.0.20"), true},
		"syn-ack":           {synEth, synPacket(t, eth(), true, "10.96.0.20", "10.244.1.7"), false},
		"dns answer to syn": {synEth, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", answer), false},
		"truncated":         {dnsEth, []byte{0, 1, 2}, false},
	} {
		if got := runFilter(t, tc.filter, tc.data); got != tc.pass {
			t.Errorf("%s: passes %v, want %v", name, got, tc.pass)
		}
	}
}
