package packets

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func benchPacket(b *testing.B) []byte {
	return packet(b, eth(), "10.96.0.10", "10.244.1.7", "udp", response("www.shop.example",
		cname("www.shop.example", "shop.cdn.example"), a("shop.cdn.example", "203.0.113.20", 20), a("shop.cdn.example", "203.0.113.21", 20)))
}

// BenchmarkDecodeDNS: our decoder, reusing its layers.
func BenchmarkDecodeDNS(b *testing.B) {
	data := benchPacket(b)
	d := NewDecoder(layers.LayerTypeEthernet)
	b.ReportAllocs()
	for b.Loop() {
		if d.Decode(data, seen) != DNSAnswer {
			b.Fatal("not decoded")
		}
	}
}

// BenchmarkDecodeDNSBaseline: the common approach, a new packet per frame and the DNS
// layer pulled from it, the same answer extracted.
func BenchmarkDecodeDNSBaseline(b *testing.B) {
	data := benchPacket(b)
	b.ReportAllocs()
	for b.Loop() {
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		dns, _ := p.Layer(layers.LayerTypeDNS).(*layers.DNS)
		if dns == nil || len(dns.Answers) == 0 {
			b.Fatal("not decoded")
		}
		var ips []netip.Addr
		for _, rr := range dns.Answers {
			if ip, ok := netip.AddrFromSlice(rr.IP); ok && rr.Type == layers.DNSTypeA {
				ips = append(ips, ip)
			}
		}
		if len(ips) != 2 {
			b.Fatal("answers lost")
		}
	}
}

// BenchmarkDecodeDNSBaselineDecodingLayerParser: gopacket's own fast path, layers
// preallocated and reused by a DecodingLayerParser, the same answer extracted.
func BenchmarkDecodeDNSBaselineDecodingLayerParser(b *testing.B) {
	data := benchPacket(b)
	var (
		ether layers.Ethernet
		ip4   layers.IPv4
		ip6   layers.IPv6
		udp   layers.UDP
		dns   layers.DNS
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &ether, &ip4, &ip6, &udp, &dns)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	ips := make([]netip.Addr, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := parser.DecodeLayers(data, &decoded); err != nil || !slices.Contains(decoded, layers.LayerTypeDNS) {
			b.Fatal("not decoded", err)
		}
		ips = ips[:0]
		for _, rr := range dns.Answers {
			if ip, ok := netip.AddrFromSlice(rr.IP); ok && rr.Type == layers.DNSTypeA {
				ips = append(ips, ip)
			}
		}
		if len(ips) != 2 {
			b.Fatal("answers lost")
		}
	}
}
