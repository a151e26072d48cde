package packets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// wire builds DNS messages byte by byte, as a server writes them, so that tests can
// say what a serializer would refuse to write.
type wire struct{ b []byte }

// header: ID 7, the given flags (QR, opcode, AA, TC, RD / RA, Z, RCODE) and counts.
func newWire(flags uint16, qd, an, ns, ar uint16) *wire {
	w := &wire{}
	for _, v := range []uint16{7, flags, qd, an, ns, ar} {
		w.b = binary.BigEndian.AppendUint16(w.b, v)
	}
	return w
}

const (
	flagsAnswer = 0x8180 // QR, RD, RA, NOERROR
	qname       = 12     // where the first question's name starts: a pointer to it is 0xc00c
)

func (w *wire) name(s string) *wire {
	for _, l := range strings.Split(s, ".") {
		w.b = append(w.b, byte(len(l)))
		w.b = append(w.b, l...)
	}
	w.b = append(w.b, 0)
	return w
}

func (w *wire) raw(b ...byte) *wire { w.b = append(w.b, b...); return w }

func (w *wire) ptr(off int) *wire { return w.raw(0xc0|byte(off>>8), byte(off)) }

func (w *wire) question(s string) *wire { return w.name(s).raw(0, 1, 0, 1) }

// rr writes a record's fixed part after its owner name, and its data.
func (w *wire) rr(typ uint16, ttl uint32, data ...byte) *wire {
	w.b = binary.BigEndian.AppendUint16(w.b, typ)
	w.b = binary.BigEndian.AppendUint16(w.b, 1)
	w.b = binary.BigEndian.AppendUint32(w.b, ttl)
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(data)))
	w.b = append(w.b, data...)
	return w
}

// aAnswer: an A record for the question, by pointer, as servers write it.
func (w *wire) aAnswer(ttl uint32, ip ...byte) *wire { return w.ptr(qname).rr(typeA, ttl, ip...) }

func (w *wire) frame(t testing.TB) []byte {
	return packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", gopacket.Payload(w.b))
}

// expectRefused: the message is Malformed, for the reason given.
func expectRefused(t *testing.T, w *wire, why error) {
	t.Helper()
	d := NewDecoder(layers.LayerTypeEthernet)
	if k := d.Decode(w.frame(t), seen); k != Malformed || !errors.Is(d.why, why) {
		t.Errorf("decoded as %v (%v), want Malformed: %v", k, d.why, why)
	}
}

func TestDecodeRefusesBadNames(t *testing.T) {
	t.Run("a pointer to itself", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
		expectRefused(t, w.ptr(len(w.b)).rr(typeA, 60, 203, 0, 113, 1), errPointerChain)
	})
	t.Run("two pointers to each other", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
		at := len(w.b)
		expectRefused(t, w.ptr(at+2).ptr(at).rr(typeA, 60, 203, 0, 113, 1), errPointerChain)
	})
	t.Run("a loop through a label", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
		at := len(w.b)
		expectRefused(t, w.raw(1, 'x').ptr(at).rr(typeA, 60, 203, 0, 113, 1), errPointerChain)
	})
	t.Run("a loop through a long label", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
		at := len(w.b)
		w.raw(63).raw(bytes.Repeat([]byte{'x'}, 63)...)
		expectRefused(t, w.ptr(at).rr(typeA, 60, 203, 0, 113, 1), errNameTooLong)
	})
	t.Run("a pointer past the end", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 1, 0, 0).question("api.example")
		expectRefused(t, w.ptr(0x3fff).rr(typeA, 60, 203, 0, 113, 1), errNameOffset)
	})
	t.Run("a pointer cut in half", func(t *testing.T) {
		expectRefused(t, newWire(flagsAnswer, 1, 0, 0, 0).raw(0xc0), errNameOffset)
	})
	t.Run("a label past the end", func(t *testing.T) {
		expectRefused(t, newWire(flagsAnswer, 1, 0, 0, 0).raw(9, 'a', 'p', 'i'), errNameOffset)
	})
	t.Run("a CNAME target pointing past its record", func(t *testing.T) {
		w := newWire(flagsAnswer, 1, 2, 0, 0).question("www.example")
		// The target points at the A record after it: outside the CNAME's own data.
		w.ptr(qname).rr(typeCNAME, 60, 0xc0, byte(len(w.b)+12))
		expectRefused(t, w.aAnswer(60, 203, 0, 113, 1), errNameOffset)
	})
	for _, b := range []byte{0x40, 0x80} { // 64 and 128: not a length, and not a pointer
		expectRefused(t, newWire(flagsAnswer, 1, 0, 0, 0).raw(b).raw(make([]byte, 70)...), errNameLabel)
	}
}

func TestDecodeNameLengthLimit(t *testing.T) {
	label := func(n int) string { return strings.Repeat("a", n) }
	// 3×(1+63) + (1+61) + the root = 255 octets: the longest name there is.
	longest := strings.Join([]string{label(63), label(63), label(63), label(61)}, ".")
	d := NewDecoder(layers.LayerTypeEthernet)
	w := newWire(flagsAnswer, 1, 1, 0, 0).question(longest).aAnswer(60, 203, 0, 113, 1)
	expectAnswer(t, d, w.frame(t), "10.244.1.7", longest, 60, "203.0.113.1")

	expectRefused(t, newWire(flagsAnswer, 1, 1, 0, 0).question(longest+"a").aAnswer(60, 203, 0, 113, 1), errNameTooLong)
	// The same length reached through a pointer: the owner is "b." + the question.
	w = newWire(flagsAnswer, 1, 1, 0, 0).question(strings.Join([]string{label(63), label(63), label(63), label(60)}, "."))
	expectRefused(t, w.raw(1, 'b').ptr(qname).rr(typeA, 60, 203, 0, 113, 1), errNameTooLong)
}

func TestDecodeRefusesBadRecords(t *testing.T) {
	q := func(an uint16) *wire { return newWire(flagsAnswer, 1, an, 0, 0).question("api.example") }
	for name, tc := range map[string]struct {
		w   *wire
		why error
	}{
		"header cut":                    {&wire{newWire(flagsAnswer, 1, 0, 0, 0).b[:11]}, errDNSShort},
		"question cut before its type":  {newWire(flagsAnswer, 1, 0, 0, 0).name("api.example").raw(0, 1), errDNSShort},
		"record cut before its data":    {q(1).ptr(qname).raw(0, 1, 0, 1, 0, 0), errDNSShort},
		"RDATA shorter than RDLENGTH":   {q(1).ptr(qname).raw(0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0), errRDLength},
		"A of 5 bytes":                  {q(1).aAnswer(60, 203, 0, 113, 1, 9), errAddrLength},
		"AAAA of 4 bytes":               {q(1).ptr(qname).rr(typeAAAA, 60, 203, 0, 113, 1), errAddrLength},
		"QDCOUNT says 2, 1 is there":    {newWire(flagsAnswer, 2, 0, 0, 0).question("api.example"), errNameOffset},
		"ANCOUNT says 2, 1 is there":    {q(2).aAnswer(60, 203, 0, 113, 1), errNameOffset},
		"ARCOUNT says 1, none is there": {newWire(flagsAnswer, 1, 1, 0, 1).question("api.example").aAnswer(60, 203, 0, 113, 1), errNameOffset},
		"NSCOUNT says 1, none is there": {newWire(flagsAnswer, 1, 1, 1, 0).question("api.example").aAnswer(60, 203, 0, 113, 1), errNameOffset},
	} {
		t.Run(name, func(t *testing.T) { expectRefused(t, tc.w, tc.why) })
	}
}

func TestDecodeCountsAndFlags(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	q := func(flags uint16, an, ar uint16) *wire {
		return newWire(flags, 1, an, 0, ar).question("api.example")
	}
	t.Run("ANCOUNT says 1, 2 are there: the count wins", func(t *testing.T) {
		w := q(flagsAnswer, 1, 0).aAnswer(60, 203, 0, 113, 1).aAnswer(60, 203, 0, 113, 2)
		expectAnswer(t, d, w.frame(t), "10.244.1.7", "api.example", 60, "203.0.113.1")
	})
	t.Run("TC: the whole records of a truncated response are answers", func(t *testing.T) {
		w := q(flagsAnswer|0x0200, 1, 0).aAnswer(60, 203, 0, 113, 1)
		expectAnswer(t, d, w.frame(t), "10.244.1.7", "api.example", 60, "203.0.113.1")
		expectRefused(t, &wire{w.b[:len(w.b)-2]}, errRDLength)
	})
	t.Run("other types are skipped, their data unread", func(t *testing.T) {
		w := q(flagsAnswer, 3, 0).ptr(qname).rr(65, 60, 0xff, 0xff, 0xff). // HTTPS, garbage
											ptr(qname).rr(16, 60, 200, 'x'). // TXT whose string overruns it
											aAnswer(30, 203, 0, 113, 1)
		expectAnswer(t, d, w.frame(t), "10.244.1.7", "api.example", 30, "203.0.113.1")
	})
	opt := func(w *wire, extRcode byte) *wire { // RFC 6891: root owner, UDP size, extended RCODE in the TTL
		return w.raw(0, 0, typeOPT, 0x10, 0, extRcode, 0, 0, 0, 0, 0)
	}
	t.Run("OPT with no extended RCODE", func(t *testing.T) {
		w := opt(q(flagsAnswer, 1, 1).aAnswer(60, 203, 0, 113, 1), 0)
		expectAnswer(t, d, w.frame(t), "10.244.1.7", "api.example", 60, "203.0.113.1")
	})
	for name, w := range map[string]*wire{
		"a query (QR=0), even with answers": q(0x0100, 1, 0).aAnswer(60, 203, 0, 113, 1),
		"NXDOMAIN with an address":          q(0x8183, 1, 0).aAnswer(60, 203, 0, 113, 1),
		"SERVFAIL":                          q(0x8182, 1, 0).aAnswer(60, 203, 0, 113, 1),
		"BADVERS: RCODE 16, from OPT":       opt(q(flagsAnswer, 1, 1).aAnswer(60, 203, 0, 113, 1), 1),
		"no question":                       newWire(flagsAnswer, 0, 1, 0, 0).name("api.example").rr(typeA, 60, 203, 0, 113, 1),
		"the root as question":              newWire(flagsAnswer, 1, 1, 0, 0).raw(0, 0, 1, 0, 1).ptr(qname).rr(typeA, 60, 203, 0, 113, 1),
		"an A record with no data":          q(flagsAnswer, 1, 0).aAnswer(60),
		"addresses for another name":        q(flagsAnswer, 1, 0).name("other.example").rr(typeA, 60, 203, 0, 113, 1),
		"a name equal only in Unicode case": newWire(flagsAnswer, 1, 1, 0, 0).question("k.example").name("\u212a.example").rr(typeA, 60, 203, 0, 113, 1),
	} {
		if k := d.Decode(w.frame(t), seen); k != Other {
			t.Errorf("%s: %v (%v), want Other", name, k, d.why)
		}
	}
}

func TestDecodeCNAMEChainBounds(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	// A chain that loops back to the question, then a case-different A record.
	w := newWire(flagsAnswer, 1, 3, 0, 0).question("a.example")
	w.ptr(qname).rr(typeCNAME, 60, nameBytes("b.example")...)
	w.name("B.Example").rr(typeCNAME, 60, 0xc0, qname)
	w.name("b.EXAMPLE").rr(typeA, 10, 203, 0, 113, 9)
	expectAnswer(t, d, w.frame(t), "10.244.1.7", "a.example", 10, "203.0.113.9")

	// A chain of 20 names: the decoder follows the first 16 (the question and 15 links).
	w = newWire(flagsAnswer, 1, 21, 0, 0).question(chainName(0))
	for i := range 20 {
		w.name(chainName(i)).rr(typeCNAME, 60, nameBytes(chainName(i+1))...)
	}
	w.name(chainName(15)).rr(typeA, 60, 203, 0, 113, 15)
	expectAnswer(t, d, w.frame(t), "10.244.1.7", chainName(0), 60, "203.0.113.15")
	// The same, the address on the 17th name instead.
	w.b = bytes.Replace(w.b, append(nameBytes(chainName(15)), 0, typeA), append(nameBytes(chainName(16)), 0, typeA), 1)
	if k := d.Decode(w.frame(t), seen); k != Other {
		t.Errorf("an address 16 links down the chain: %v, want Other", k)
	}
}

func chainName(i int) string { return "n" + string(rune('a'+i)) + ".example" }

func nameBytes(s string) []byte { return (&wire{}).name(s).b }
