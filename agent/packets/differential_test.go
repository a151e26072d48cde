package packets

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// diffLinks are the framings the differential target decodes; the input's first
// byte picks one, or, past them, an Ethernet frame built around the rest of the
// input as a DNS message (so that the fuzzer's mutations land in the message).
var diffLinks = []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLinuxSLL2, layers.LayerTypeIPv4}

// FuzzDecodeAgainstGopacket feeds the same frame to this package's decoder and to
// gopacket's (gopacketDecoder, the decoder it replaced) and fails when they
// disagree: on the kind, on a DNS answer's client, name, addresses or TTL, or on a
// SYN. The intended differences are listed in intendedDifference.
func FuzzDecodeAgainstGopacket(f *testing.F) {
	for _, s := range diffSeeds(f) {
		f.Add(s)
	}
	ours, theirs := make([]*Decoder, len(diffLinks)), make([]*gopacketDecoder, len(diffLinks))
	for i, l := range diffLinks {
		ours[i], theirs[i] = NewDecoder(l), newGopacketDecoder(l)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		i, frame := int(data[0])%(len(diffLinks)+1), data[1:]
		if i == len(diffLinks) {
			if len(frame) > 1400 { // one Ethernet frame
				return
			}
			i, frame = 0, packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload(frame))
		}
		d, ref := ours[i], theirs[i]
		got, want := d.Decode(frame, seen), ref.Decode(frame, seen)
		diff := disagreement(got, want, d, ref)
		if diff == "" || intendedDifference(diffLinks[i], frame, got, want, d, ref) != "" {
			return
		}
		t.Fatalf("%v frame %x: %s (our reason: %v; gopacket's DNS error: %v)", diffLinks[i], frame, diff, d.why, ref.dnsErr)
	})
}

func disagreement(got, want Kind, d *Decoder, ref *gopacketDecoder) string {
	if got != want {
		return fmt.Sprintf("kind %v, gopacket %v", got, want)
	}
	switch got {
	case DNSAnswer:
		a, b := d.Answer, ref.Answer
		if a.Client != b.Client || !bytes.Equal(a.Name, b.Name) || a.TTL != b.TTL || !a.Time.Equal(b.Time) || !slices.Equal(a.IPs, b.IPs) {
			return fmt.Sprintf("answer %s %q %v ttl %d, gopacket %s %q %v ttl %d", a.Client, a.Name, a.IPs, a.TTL, b.Client, b.Name, b.IPs, b.TTL)
		}
	case SYN:
		if d.Open != ref.Open {
			return fmt.Sprintf("open %+v, gopacket %+v", d.Open, ref.Open)
		}
	}
	return ""
}

// intendedDifference names the documented reason the two decoders may disagree on
// a frame, or "" when there is none:
//   - this decoder refuses a name of 256 octets (RFC 1035's limit is 255; gopacket
//     takes one more when the name is not compressed), a name that follows more than
//     32 compression pointers (gopacket: 254), an IP header whose version is not the
//     one its link announced (gopacket reads any version as the EtherType says), and
//     an IPv6 payload length of 0 (a jumbogram, which gopacket takes with a
//     hop-by-hop jumbo option);
//   - it reads the data of A, AAAA and CNAME records only: a malformed record of any
//     other type (TXT, SOA, OPT, SVCB...) is skipped by its RDLENGTH, where gopacket
//     refuses the whole message;
//   - it reads OPT's whole extended RCODE (RFC 6891 §6.1.3): gopacket keeps only its
//     low 4 bits, and takes RCODE 256 and up as NOERROR;
//   - it compares names as DNS does (RFC 4343), ASCII letters without regard to
//     case: gopacket's path folded Unicode too, so that a raw UTF-8 "\u212a"
//     (Kelvin) matched "k";
//   - behind Linux cooked v2 with ARPHRD_IPGRE it reads the protocol type, as libpcap
//     documents it; gopacket decodes an Ethernet header there.
func intendedDifference(link gopacket.LayerType, frame []byte, got, want Kind, d *Decoder, ref *gopacketDecoder) string {
	switch {
	case link == layers.LayerTypeLinuxSLL2 && len(frame) >= 10 && be16(frame[8:]) == 778:
		return "ARPHRD_IPGRE"
	case got == Malformed && oneOf(d.why, errNameTooLong, errPointerChain, errIPVersion, errIPv6Length):
		return d.why.Error()
	case want == Malformed && got != Malformed && ref.dnsErr != nil:
		if typ, ok := failedRecordType(ref); ok && typ != typeA && typ != typeAAAA && typ != typeCNAME {
			return fmt.Sprintf("data of a type %d record", typ)
		}
	case want == DNSAnswer && got == Other && extendedRcode(ref):
		return "extended RCODE of 256 or more"
	case (got == DNSAnswer || want == DNSAnswer) && ref.dnsErr == nil && nonASCIINames(ref):
		return "names compared by ASCII case"
	}
	return ""
}

func extendedRcode(ref *gopacketDecoder) bool {
	return slices.ContainsFunc(ref.dns.Additionals, func(rr layers.DNSResourceRecord) bool {
		return rr.Type == layers.DNSTypeOPT && rr.TTL>>28 != 0
	})
}

func nonASCIINames(ref *gopacketDecoder) bool {
	nonASCII := func(b []byte) bool { return slices.ContainsFunc(b, func(c byte) bool { return c >= 0x80 }) }
	for _, q := range ref.dns.Questions {
		if nonASCII(q.Name) {
			return true
		}
	}
	return slices.ContainsFunc(ref.dns.Answers, func(rr layers.DNSResourceRecord) bool {
		return nonASCII(rr.Name) || nonASCII(rr.CNAME)
	})
}

func oneOf(err error, targets ...error) bool {
	return slices.ContainsFunc(targets, func(t error) bool { return errors.Is(err, t) })
}

// failedRecordType is the type of the record gopacket's DNS layer stopped at: it
// keeps the records it decoded before an error, so their number says which.
func failedRecordType(ref *gopacketDecoder) (uint16, bool) {
	dns, msg := &ref.dns, ref.dnsMsg
	if len(msg) < 12 || len(dns.Questions) != int(dns.QDCount) {
		return 0, false
	}
	k := len(dns.Answers) + len(dns.Authorities) + len(dns.Additionals)
	off := 12
	skipName := func() bool { // labels up to the root, or up to a pointer
		for off < len(msg) {
			switch b := int(msg[off]); {
			case b == 0:
				off++
				return true
			case b&0xc0 == 0xc0:
				off += 2
				return off <= len(msg)
			default:
				off += 1 + b&0x3f
			}
		}
		return false
	}
	for range dns.QDCount {
		if !skipName() {
			return 0, false
		}
		off += 4
	}
	for range k {
		if !skipName() || off+10 > len(msg) {
			return 0, false
		}
		off += 10 + int(be16(msg[off+8:]))
	}
	if !skipName() || off+2 > len(msg) {
		return 0, false
	}
	return be16(msg[off:]), true
}

// diffSeeds: frames of every link type, each behind its selector byte, carrying
// answers, CNAME chains, compression, SYNs and the malformed messages of the tests.
func diffSeeds(t testing.TB) [][]byte {
	v4 := packet(t, nil, "10.96.0.10", "10.244.1.7", "udp", response("a.example", a("a.example", "203.0.113.1", 9)))
	v6 := packet(t, nil, "fd00::10", "fd00::7", "tcp", tcpDNS{response("t.example", a("t.example", "2001:db8::1", 9))})
	w := newWire(flagsAnswer, 1, 4, 0, 1).question("www.example")
	w.ptr(qname).rr(typeCNAME, 60, nameBytes("edge.example")...)
	w.name("edge.example").rr(typeA, 20, 203, 0, 113, 7)
	w.ptr(qname).rr(16, 60, 3, 'a', 'b', 'c')
	w.ptr(qname).rr(typeAAAA, 20, make([]byte, 16)...)
	w.raw(0, 0, typeOPT, 0x10, 0, 0, 0, 0, 0, 0, 0)
	loop := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
	loop.ptr(len(loop.b)).rr(typeA, 60, 203, 0, 113, 1)
	ether := [][]byte{ // Ethernet frames
		packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", response("www.shop.example",
			cname("www.shop.example", "shop.cdn.example"), a("shop.cdn.example", "203.0.113.20", 20), a("shop.cdn.example", "203.0.113.21", 20))),
		packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", response("www.shop.example",
			a("edge.cdn.example", "203.0.113.20", 20), cname("www.shop.example", "shop.cdn.example"), a("unrelated.example", "203.0.113.99", 5),
			cname("shop.cdn.example", "edge.cdn.example"), a("edge.cdn.example", "203.0.113.21", 40))),
		fragment(t),
		packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload(compressed())),
		packet(t, &layers.Dot1Q{VLANIdentifier: 42}, "10.96.0.10", "10.244.1.7", "udp", answerMsg()),
		withHopByHop(t, packet(t, eth(), "fd00::10", "fd00::7", "udp", answerMsg())),
		serialize(t, ethOf(layers.EthernetTypeIPv4), ip4(layers.IPProtocolIPv4, "192.168.0.1", "192.168.0.2"),
			ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7"), udp53(), answerMsg()),
		serialize(t, ethOf(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP, "10.244.1.7", "10.96.0.20"), &layers.TCP{SrcPort: 41000, DstPort: 8080, SYN: true, DataOffset: 5}),
		w.frame(t), loop.frame(t),
	}
	seeds := make([][]byte, 0, len(ether)+7)
	seeds = append(seeds,
		append([]byte{1}, cooked(v4, layers.EthernetTypeIPv4)...),
		append([]byte{2}, append(sll2Header(layers.EthernetTypeIPv6), v6...)...),
		append([]byte{3}, v4...),
		append([]byte{3}, v6...),
	)
	for _, e := range ether {
		seeds = append(seeds, append([]byte{0}, e...))
	}
	for _, m := range [][]byte{w.b, loop.b, compressed()} {
		seeds = append(seeds, append([]byte{byte(len(diffLinks))}, m...))
	}
	return seeds
}
