package packets

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// answerMsg is the DNS answer the frame tests carry.
func answerMsg() gopacket.SerializableLayer {
	return response("f.example", a("f.example", "203.0.113.80", 30))
}

func serialize(t testing.TB, stack ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip4(proto layers.IPProtocol, src, dst string) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ethOf(typ layers.EthernetType) *layers.Ethernet {
	e := eth()
	e.EthernetType = typ
	return e
}

func udp53() *layers.UDP { return &layers.UDP{SrcPort: 53, DstPort: 40000} }

func TestDecodeFrameHeaders(t *testing.T) {
	d := NewDecoder(layers.LayerTypeEthernet)
	t.Run("IPv4 options (IHL 6)", func(t *testing.T) {
		ip := ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7")
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
		frame := serialize(t, ethOf(layers.EthernetTypeIPv4), ip, udp53(), answerMsg())
		if frame[14]&0x0f != 6 {
			t.Fatalf("IHL %d, want 6", frame[14]&0x0f)
		}
		expectAnswer(t, d, frame, "10.244.1.7", "f.example", 30, "203.0.113.80")
		frame[14+20+1] = 40 // the option now claims more than the header holds
		if k := d.Decode(frame, seen); k != Malformed || !errors.Is(d.why, errIPOption) {
			t.Errorf("an option overrunning the header: %v (%v)", k, d.why)
		}
	})
	t.Run("Ethernet padding after the IP packet", func(t *testing.T) {
		frame := append(packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", answerMsg()), make([]byte, 12)...)
		expectAnswer(t, d, frame, "10.244.1.7", "f.example", 30, "203.0.113.80")
	})
	t.Run("802.1ad and 802.1Q tags", func(t *testing.T) {
		frame := serialize(t, ethOf(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7"), udp53(), answerMsg())
		expectAnswer(t, d, frame, "10.244.1.7", "f.example", 30, "203.0.113.80")
	})
	t.Run("IP in IP: the inner packet's client", func(t *testing.T) {
		frame := serialize(t, ethOf(layers.EthernetTypeIPv4), ip4(layers.IPProtocolIPv4, "192.168.0.1", "192.168.0.2"),
			ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7"), udp53(), answerMsg())
		expectAnswer(t, d, frame, "10.244.1.7", "f.example", 30, "203.0.113.80")
	})
	t.Run("IPv6 hop-by-hop options", func(t *testing.T) {
		expectAnswer(t, d, withHopByHop(t, packet(t, eth(), "fd00::10", "fd00::7", "udp", answerMsg())), "fd00::7", "f.example", 30, "203.0.113.80")
	})
	for name, tc := range map[string]struct {
		frame []byte
		want  Kind
		why   error
	}{
		"an IPv4 fragment": {fragment(t), Other, nil},
		"an IPv6 routing header, not followed": {
			withExtension(t, packet(t, eth(), "fd00::10", "fd00::7", "udp", answerMsg()), 43), Other, nil},
		"ARP":                            {serialize(t, ethOf(layers.EthernetTypeARP), gopacket.Payload(make([]byte, 28))), Other, nil},
		"UDP from another port":          {serialize(t, ethOf(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7"), &layers.UDP{SrcPort: 5353, DstPort: 40000}, answerMsg()), Other, nil},
		"IPv6 behind the IPv4 EtherType": {retype(packet(t, eth(), "fd00::10", "fd00::7", "udp", answerMsg()), layers.EthernetTypeIPv4), Malformed, errIPVersion},
		"IPv4 header length 4":           {patch(packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", answerMsg()), 14, 0x44), Malformed, errIPLength},
		"UDP length 7":                   {patch(packet(t, eth(), "10.96.0.10", "10.244.1.7", "udp", answerMsg()), 14+20+5, 7), Malformed, errUDPLength},
		"a VLAN tag cut":                 {serialize(t, ethOf(layers.EthernetTypeDot1Q), gopacket.Payload{0, 42})[:16], Malformed, errShort},
		"TCP data offset past the end":   {patch(packet(t, eth(), "10.96.0.10", "10.244.1.7", "tcp", nil), 14+20+12, 0xf0), Malformed, errTCPOffset},
	} {
		if k := d.Decode(tc.frame, seen); k != tc.want || !errors.Is(d.why, tc.why) {
			t.Errorf("%s: %v (%v), want %v (%v)", name, k, d.why, tc.want, tc.why)
		}
	}
}

// withHopByHop inserts an 8-byte hop-by-hop header (a PadN option) after an
// Ethernet frame's IPv6 header.
func withHopByHop(t testing.TB, frame []byte) []byte { return withExtension(t, frame, 0) }

// withExtension inserts an empty 8-byte IPv6 extension header of the given type.
func withExtension(t testing.TB, frame []byte, typ byte) []byte {
	t.Helper()
	const ip6 = 14
	if len(frame) < ip6+40 || frame[ip6]>>4 != 6 {
		t.Fatal("not IPv6 over Ethernet")
	}
	ext := []byte{frame[ip6+6], 0, 1, 4, 0, 0, 0, 0} // next header, length 0, PadN of 4
	if typ == 43 {
		ext = []byte{frame[ip6+6], 0, 0, 0, 0, 0, 0, 0} // routing type 0, segments left 0
	}
	out := append(append(append([]byte{}, frame[:ip6+40]...), ext...), frame[ip6+40:]...)
	out[ip6+6] = typ
	binary.BigEndian.PutUint16(out[ip6+4:], binary.BigEndian.Uint16(frame[ip6+4:])+8)
	return out
}

func fragment(t testing.TB) []byte {
	ip := ip4(layers.IPProtocolUDP, "10.96.0.10", "10.244.1.7")
	ip.Flags = layers.IPv4MoreFragments
	return serialize(t, ethOf(layers.EthernetTypeIPv4), ip, udp53(), answerMsg())
}

func retype(frame []byte, typ layers.EthernetType) []byte {
	binary.BigEndian.PutUint16(frame[12:], uint16(typ))
	return frame
}

func patch(frame []byte, at int, b byte) []byte {
	frame[at] = b
	return frame
}
