package packets

import (
	"bytes"
	"errors"
	"net/netip"
)

// DNS record types and limits (RFC 1035 §3.2.2, §2.3.4; RFC 6891 for OPT).
const (
	typeA     = 1
	typeCNAME = 5
	typeAAAA  = 28
	typeOPT   = 41

	maxName = 255 // octets of a name on the wire, the root label included
	// maxPointers bounds the compression pointers followed for one name: a
	// compressor points once per suffix, and real names have a handful of labels.
	maxPointers = 32
)

var dot = []byte(".")

// Why a DNS message was refused.
var (
	errDNSShort     = errors.New("DNS message ends inside a header, question or record")
	errNameOffset   = errors.New("DNS name or pointer past the end of its message")
	errNameLabel    = errors.New("DNS label type 0x40/0x80 (reserved)")
	errNameTooLong  = errors.New("DNS name longer than 255 octets")
	errPointerChain = errors.New("DNS name follows too many compression pointers (a loop)")
	errRDLength     = errors.New("DNS record data past the end of its message")
	errAddrLength   = errors.New("DNS A or AAAA data of the wrong length")
)

// record is one A, AAAA or CNAME record of the answer section.
type record struct {
	typ    uint16
	ttl    uint32
	name   []byte     // the owner, as text
	target []byte     // CNAME: the canonical name, as text
	ip     netip.Addr // A, AAAA; invalid when the record has no data
}

// message is the part of a DNS message the decoder reads, in buffers that the
// next message reuses.
type message struct {
	response bool
	rcode    uint16 // with the extended bits of OPT records
	question []byte // the first question's name, as text
	answers  []record
	cnames   int    // how many of the answers are CNAMEs
	text     []byte // the names' text, back to back
	// plain remembers names read as text that had no pointer: a later name that
	// is the same bytes, or a pointer to one, reuses its text.
	plain  [maxPlain]plainName
	plains int
}

// maxPlain: a response names its question and a few CNAME targets.
const maxPlain = 8

type plainName struct {
	off  int
	wire []byte // the labels and the root
	text []byte
}

// remembered returns the text of the name at off when it is a remembered name,
// or a pointer to one, whose bytes all lie within msg.
func (m *message) remembered(msg []byte, off int) (next int, text []byte, ok bool) {
	if off+2 > len(msg) {
		return 0, nil, false
	}
	if msg[off]&0xc0 == 0xc0 {
		to := int(be16(msg[off:]) & 0x3fff)
		for _, p := range m.plain[:m.plains] {
			if p.off == to && to+len(p.wire) <= len(msg) {
				return off + 2, p.text, true
			}
		}
		return 0, nil, false
	}
	for _, p := range m.plain[:m.plains] {
		if end := off + len(p.wire); end <= len(msg) && bytes.Equal(msg[off:end], p.wire) {
			return end, p.text, true
		}
	}
	return 0, nil, false
}

func (m *message) remember(msg []byte, off, next int, text []byte) {
	if m.plains < maxPlain {
		m.plain[m.plains] = plainName{off: off, wire: msg[off:next], text: text}
		m.plains++
	}
}

// parse reads msg (RFC 1035 §4.1) in place. Every section is walked, so that a
// message that lies about its counts is refused whichever count lies; record
// data is read for A, AAAA and CNAME, and skipped for every other type.
func (m *message) parse(msg []byte) error {
	if len(msg) < 12 {
		return errDNSShort
	}
	m.response, m.rcode = msg[2]&0x80 != 0, uint16(msg[3]&0x0f)
	m.question, m.answers, m.cnames, m.text, m.plains = nil, m.answers[:0], 0, m.text[:0], 0
	qd, an, ns, ar := int(be16(msg[4:])), int(be16(msg[6:])), int(be16(msg[8:])), int(be16(msg[10:]))
	off := 12
	for i := range qd {
		next, text, err := m.name(msg, off, i == 0)
		if err != nil {
			return err
		}
		if next+4 > len(msg) {
			return errDNSShort
		}
		if i == 0 {
			m.question = text
		}
		off = next + 4
	}
	var err error
	for range an {
		if off, err = m.record(msg, off, true, false); err != nil {
			return err
		}
	}
	for i := range ns + ar {
		if off, err = m.record(msg, off, false, i >= ns); err != nil {
			return err
		}
	}
	return nil
}

// record reads the record at off and says where the next begins. An answer of
// type A, AAAA or CNAME is kept; an OPT record of the additional section lends
// its extended RCODE bits.
func (m *message) record(msg []byte, off int, answer, additional bool) (int, error) {
	mark := len(m.text)
	fixed, owner, err := m.name(msg, off, answer)
	if err != nil {
		return 0, err
	}
	if fixed+10 > len(msg) {
		return 0, errDNSShort
	}
	typ, ttl, n := be16(msg[fixed:]), be32(msg[fixed+4:]), int(be16(msg[fixed+8:]))
	data, end := fixed+10, fixed+10+n
	if end > len(msg) {
		return 0, errRDLength
	}
	r := record{typ: typ, ttl: ttl, name: owner}
	switch typ {
	case typeA, typeAAAA:
		if want := addrLen(typ); n != 0 && n != want {
			return 0, errAddrLength
		}
		if n != 0 {
			r.ip, _ = netip.AddrFromSlice(msg[data:end])
			r.ip = r.ip.Unmap()
		}
	case typeCNAME:
		if n != 0 {
			// The canonical name lies within the record's own data, pointers included.
			if _, r.target, err = m.name(msg[:end], data, answer); err != nil {
				return 0, err
			}
		}
	case typeOPT:
		if additional {
			m.rcode |= uint16(ttl>>24) << 4
		}
	default:
		m.text = m.text[:mark] // an owner name not needed
		return end, nil
	}
	if answer {
		// A name whose last label ends in a dot is the same name without it, as
		// the question is (a quirk of reading names as dotted text, kept).
		r.name, r.target = bytes.TrimSuffix(r.name, dot), bytes.TrimSuffix(r.target, dot)
		if typ == typeCNAME {
			m.cnames++
		}
		m.answers = append(m.answers, r)
	}
	return end, nil
}

func addrLen(typ uint16) int {
	if typ == typeA {
		return 4
	}
	return 16
}

func be32(b []byte) uint32 { return uint32(be16(b))<<16 | uint32(be16(b[2:])) }

// name reads the name at off (RFC 1035 §4.1.4) and says where what follows it
// begins. With keep, its text (labels joined by dots, the root empty) is
// appended to m.text and returned. Every label and pointer must lie within msg.
func (m *message) name(msg []byte, off int, keep bool) (next int, text []byte, err error) {
	if keep {
		if next, text, ok := m.remembered(msg, off); ok {
			return next, text, nil
		}
	}
	mark, next, pos, octets, pointers := len(m.text), -1, off, 1, 0
	for {
		if pos >= len(msg) {
			return 0, nil, errNameOffset
		}
		b := int(msg[pos])
		switch b & 0xc0 {
		case 0x00:
			if b == 0 {
				text = m.text[mark:len(m.text):len(m.text)]
				if next < 0 {
					next = pos + 1
					if keep {
						m.remember(msg, off, next, text)
					}
				}
				return next, text, nil
			}
			end := pos + 1 + b
			if end > len(msg) {
				return 0, nil, errNameOffset
			}
			if octets += 1 + b; octets > maxName {
				return 0, nil, errNameTooLong
			}
			if keep && len(m.text) == mark {
				m.text = append(m.text, msg[pos+1:end]...)
			} else if keep { // the label with its length byte, which becomes the dot
				m.text = append(m.text, msg[pos:end]...)
				m.text[len(m.text)-1-b] = '.'
			}
			pos = end
		case 0xc0:
			if pos+2 > len(msg) {
				return 0, nil, errNameOffset
			}
			if pointers++; pointers > maxPointers {
				return 0, nil, errPointerChain
			}
			if next < 0 {
				next = pos + 2
			}
			pos = int(be16(msg[pos:]) & 0x3fff)
		default:
			return 0, nil, errNameLabel
		}
	}
}
