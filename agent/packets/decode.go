// Package packets decodes the two kinds of packet the agent captures — DNS responses
// and TCP SYNs — into reusable structures, with no allocation per packet. It reads
// the frame's bytes in place: link, IP and transport headers (frame.go), then the
// DNS message (message.go).
package packets

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Kind is what a packet turned out to be.
type Kind int

// Kinds of decoded packet.
const (
	// Other: not a DNS answer nor a SYN (or nothing usable in it).
	Other Kind = iota
	// DNSAnswer: a DNS response with A or AAAA answers for its question.
	DNSAnswer
	// SYN: a TCP SYN without ACK, a connection being opened.
	SYN
	// Malformed: a packet that claimed to be one of the above and did not parse.
	Malformed
)

// maxAnswers bounds the addresses kept from one response.
const maxAnswers = 64

// Answer is a decoded DNS response. Its slices are reused by the next Decode.
type Answer struct {
	Client netip.Addr // the response's destination
	Name   []byte     // the question, without a trailing dot
	IPs    []netip.Addr
	TTL    uint32 // smallest TTL of the addresses kept
	Time   time.Time
}

// Open is a decoded SYN.
type Open struct {
	Client netip.Addr
	Server netip.Addr
	Port   uint16
	Time   time.Time
}

// Decoder decodes packets of one link type. It is not safe for concurrent use.
type Decoder struct {
	link link
	seg  segment
	msg  message
	// why says what was wrong with the last Malformed packet.
	why error

	// chain holds the names a CNAME chain from the question reaches.
	chain [maxChain][]byte
	links int

	Answer Answer
	Open   Open
}

// maxChain bounds the names a CNAME chain may reach, the question included.
const maxChain = 16

// NewDecoder returns a decoder for packets that start with the given link layer:
// layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL or LinuxSLL2, or
// layers.LayerTypeIPv4 / LayerTypeIPv6 for raw IP (either works: the version is
// read from the packet). With any other layer type every packet is Other.
func NewDecoder(first gopacket.LayerType) *Decoder {
	d := &Decoder{}
	switch first {
	case layers.LayerTypeEthernet:
		d.link = linkEthernet
	case layers.LayerTypeLinuxSLL:
		d.link = linkSLL
	case layers.LayerTypeLinuxSLL2:
		d.link = linkSLL2
	case layers.LayerTypeIPv4, layers.LayerTypeIPv6:
		d.link = linkRawIP
	}
	d.Answer.IPs = make([]netip.Addr, 0, maxAnswers)
	d.msg.answers = make([]record, 0, 16)
	d.msg.text = make([]byte, 0, 1024)
	return d
}

// Decode decodes one packet seen at t and says what it was; DNSAnswer fills
// d.Answer and SYN fills d.Open.
func (d *Decoder) Decode(data []byte, t time.Time) Kind {
	d.why = nil
	if len(data) == 0 {
		return d.malformed(errShort)
	}
	found, err := d.seg.walk(d.link, data)
	if err != nil {
		return d.malformed(err)
	}
	if !found {
		return Other
	}
	s := &d.seg
	if s.proto == protoUDP {
		if s.srcPort != 53 {
			return Other
		}
		return d.dnsAnswer(s.payload, s.dst, t)
	}
	switch {
	case s.tcpFlags&(tcpSYN|tcpACK) == tcpSYN:
		d.Open = Open{Client: s.src, Server: s.dst, Port: s.dstPort, Time: t}
		return SYN
	case s.srcPort == 53 && len(s.payload) > 2:
		// DNS over TCP: a two-byte length, then the message, whole in this segment.
		n := int(be16(s.payload))
		if n > len(s.payload)-2 {
			return d.malformed(errDNSShort)
		}
		return d.dnsAnswer(s.payload[2:2+n], s.dst, t)
	}
	return Other
}

func (d *Decoder) malformed(why error) Kind {
	d.why = why
	return Malformed
}

// dnsAnswer reads a DNS message: a response without error, with a question and
// addresses for it (through CNAMEs) is an answer. Queries, NXDOMAIN, SERVFAIL and
// the like are Other.
func (d *Decoder) dnsAnswer(payload []byte, client netip.Addr, t time.Time) Kind {
	m := &d.msg
	if err := m.parse(payload); err != nil {
		return d.malformed(err)
	}
	if !m.response || m.rcode != 0 || m.question == nil {
		return Other
	}
	a := &d.Answer
	a.Client, a.Time, a.TTL = client, t, 0
	a.Name = bytes.TrimSuffix(m.question, dot)
	a.IPs = a.IPs[:0]
	d.chain[0], d.links = a.Name, 1
	if m.cnames > 0 {
		d.followChain()
	}
	for i := range m.answers {
		rr := &m.answers[i]
		if rr.typ == typeCNAME || !rr.ip.IsValid() || len(a.IPs) == maxAnswers || !d.inChain(rr.name) {
			continue
		}
		a.IPs = append(a.IPs, rr.ip)
		if a.TTL == 0 || rr.ttl < a.TTL {
			a.TTL = rr.ttl
		}
	}
	if len(a.IPs) == 0 || len(a.Name) == 0 {
		return Other
	}
	return DNSAnswer
}

// followChain collects the names reachable from the question through CNAMEs, in
// whatever order the answers come.
func (d *Decoder) followChain() {
	for grew := true; grew && d.links < maxChain; {
		grew = false
		for i := range d.msg.answers {
			rr := &d.msg.answers[i]
			if rr.typ == typeCNAME && d.links < maxChain && d.inChain(rr.name) && !d.inChain(rr.target) {
				d.chain[d.links] = rr.target
				d.links++
				grew = true
			}
		}
	}
}

// inChain: name is one of the chain's. Names compare as DNS compares them
// (RFC 4343): ASCII letters without regard to case, every other byte as it is.
func (d *Decoder) inChain(name []byte) bool {
	for _, n := range d.chain[:d.links] {
		if sameName(n, name) {
			return true
		}
	}
	return false
}

func sameName(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] { // one remembered text
		return true
	}
	for i, c := range a {
		if c != b[i] && lower(c) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
