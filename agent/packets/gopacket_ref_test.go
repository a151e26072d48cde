package packets

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// gopacketDecoder is the decoder this package had before its own parser: gopacket's
// DecodingLayerParser for the link, IP and transport layers and its DNS layer for the
// message. FuzzDecodeAgainstGopacket holds the two to the same answers.
type gopacketDecoder struct {
	eth    layers.Ethernet
	sll    layers.LinuxSLL
	sll2   layers.LinuxSLL2
	dot1q  layers.Dot1Q
	ip4    layers.IPv4
	ip6    layers.IPv6
	udp    layers.UDP
	tcp    layers.TCP
	dns    layers.DNS
	parser *gopacket.DecodingLayerParser // the link layer's, or IPv4's for raw IP
	ip6raw *gopacket.DecodingLayerParser // raw IP whose version is 6
	found  []gopacket.LayerType

	// chain holds the names a CNAME chain from the question reaches.
	chain [][]byte
	// dnsMsg and dnsErr: the last DNS message read, and gopacket's error on it.
	dnsMsg []byte
	dnsErr error

	Answer Answer
	Open   Open
}

// newGopacketDecoder returns a decoder for packets that start with the given link layer:
// layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL (v1 or v2), or layers.LayerTypeIPv4 /
// LayerTypeIPv6 for raw IP (either works: the version is read from the packet).
func newGopacketDecoder(first gopacket.LayerType) *gopacketDecoder {
	d := &gopacketDecoder{found: make([]gopacket.LayerType, 0, 8), chain: make([][]byte, 0, 16)}
	d.Answer.IPs = make([]netip.Addr, 0, maxAnswers)
	parser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.sll, &d.sll2, &d.dot1q, &d.ip4, &d.ip6, &d.udp, &d.tcp)
		p.IgnoreUnsupported = true
		return p
	}
	if first == layers.LayerTypeIPv4 || first == layers.LayerTypeIPv6 {
		d.parser, d.ip6raw = parser(layers.LayerTypeIPv4), parser(layers.LayerTypeIPv6)
	} else {
		d.parser = parser(first)
	}
	return d
}

// Decode decodes one packet seen at t and says what it was; DNSAnswer fills
// d.Answer and SYN fills d.Open.
func (d *gopacketDecoder) Decode(data []byte, t time.Time) Kind {
	if len(data) == 0 {
		return Malformed
	}
	d.dnsMsg, d.dnsErr = nil, nil
	parser := d.parser
	if d.ip6raw != nil && data[0]>>4 == 6 {
		parser = d.ip6raw
	}
	err := parser.DecodeLayers(data, &d.found)
	if len(d.found) == 0 {
		return Malformed
	}
	var src, dst netip.Addr
	for _, lt := range d.found {
		switch lt {
		case layers.LayerTypeIPv4:
			src, dst = sliceAddr(d.ip4.SrcIP), sliceAddr(d.ip4.DstIP)
		case layers.LayerTypeIPv6:
			src, dst = sliceAddr(d.ip6.SrcIP), sliceAddr(d.ip6.DstIP)
		case layers.LayerTypeUDP:
			if d.udp.SrcPort != 53 {
				return Other
			}
			return d.dnsAnswer(d.udp.Payload, dst, t)
		case layers.LayerTypeTCP:
			return d.fromTCP(src, dst, t)
		}
	}
	if err != nil {
		return Malformed
	}
	return Other
}

func (d *gopacketDecoder) fromTCP(src, dst netip.Addr, t time.Time) Kind {
	switch {
	case d.tcp.SYN && !d.tcp.ACK:
		d.Open = Open{Client: src, Server: dst, Port: uint16(d.tcp.DstPort), Time: t}
		return SYN
	case d.tcp.SrcPort == 53 && len(d.tcp.Payload) > 2:
		// DNS over TCP: a two-byte length, then the message, whole in this segment.
		n := int(binary.BigEndian.Uint16(d.tcp.Payload))
		if n > len(d.tcp.Payload)-2 {
			return Malformed
		}
		return d.dnsAnswer(d.tcp.Payload[2:2+n], dst, t)
	}
	return Other
}

func (d *gopacketDecoder) dnsAnswer(payload []byte, client netip.Addr, t time.Time) Kind {
	d.dnsMsg, d.dnsErr = payload, d.dns.DecodeFromBytes(payload, gopacket.NilDecodeFeedback)
	if d.dnsErr != nil {
		return Malformed
	}
	if !d.dns.QR || d.dns.ResponseCode != layers.DNSResponseCodeNoErr || len(d.dns.Questions) == 0 {
		return Other
	}
	a := &d.Answer
	a.Client, a.Time, a.TTL = client, t, 0
	a.Name = bytes.TrimSuffix(d.dns.Questions[0].Name, []byte("."))
	a.IPs = a.IPs[:0]
	d.followChain(a.Name)
	for i := range d.dns.Answers {
		rr := &d.dns.Answers[i]
		if (rr.Type != layers.DNSTypeA && rr.Type != layers.DNSTypeAAAA) || !d.inChain(rr.Name) || len(a.IPs) == maxAnswers {
			continue
		}
		ip, ok := netip.AddrFromSlice(rr.IP)
		if !ok {
			continue
		}
		a.IPs = append(a.IPs, ip.Unmap())
		if a.TTL == 0 || rr.TTL < a.TTL {
			a.TTL = rr.TTL
		}
	}
	if len(a.IPs) == 0 || len(a.Name) == 0 {
		return Other
	}
	return DNSAnswer
}

// followChain collects the names reachable from the question through CNAMEs, in
// whatever order the answers come.
func (d *gopacketDecoder) followChain(question []byte) {
	d.chain = append(d.chain[:0], question)
	for grew := true; grew && len(d.chain) < cap(d.chain); {
		grew = false
		for i := range d.dns.Answers {
			rr := &d.dns.Answers[i]
			if rr.Type == layers.DNSTypeCNAME && d.inChain(rr.Name) && !d.inChain(rr.CNAME) && len(d.chain) < cap(d.chain) {
				d.chain = append(d.chain, rr.CNAME)
				grew = true
			}
		}
	}
}

func (d *gopacketDecoder) inChain(name []byte) bool {
	name = bytes.TrimSuffix(name, []byte("."))
	for _, n := range d.chain {
		if bytes.EqualFold(bytes.TrimSuffix(n, []byte(".")), name) {
			return true
		}
	}
	return false
}

func sliceAddr(b []byte) netip.Addr {
	if a, ok := netip.AddrFromSlice(b); ok {
		return a.Unmap()
	}
	return netip.Addr{}
}
