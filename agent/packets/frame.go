package packets

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// link is the framing a Decoder's packets start with.
type link uint8

const (
	linkUnknown link = iota
	linkEthernet
	linkSLL  // Linux cooked capture v1
	linkSLL2 // Linux cooked capture v2, what `tcpdump -i any` writes
	linkRawIP
)

// IP protocol numbers the walk follows; IPv4 and IPv6 double as the selectors of
// the first IP header.
const (
	protoIPv4 = 4
	protoIPv6 = 41
	protoIPIP = 94
	// protoTCP and protoUDP are in filter.go.
)

// EtherTypes beyond those of filter.go.
const (
	etherQinQ     = 0x88a8
	etherBridging = 0x6558 // a whole Ethernet frame inside
	etherRaw      = 0xffff // libpcap's raw IP marker
)

// ARPHRD types whose Linux cooked v2 payload is not named by the protocol field.
const (
	arphrdFRAD     = 770
	arphrdRadiotap = 803
)

// Why a frame's headers were refused.
var (
	errShort      = errors.New("frame shorter than its headers")
	errLinkAddr   = errors.New("cooked capture address longer than 8 bytes")
	errIPVersion  = errors.New("IP version does not match the link's protocol")
	errIPLength   = errors.New("IPv4 total or header length invalid")
	errIPOption   = errors.New("IPv4 option overruns the header")
	errIPv6Length = errors.New("IPv6 payload length 0 (jumbogram)")
	errIPv6Ext    = errors.New("IPv6 hop-by-hop header invalid")
	errUDPLength  = errors.New("UDP length below its header")
	errTCPOffset  = errors.New("TCP data offset outside the segment")
)

// segment is what the link, IP and transport headers of a frame said.
type segment struct {
	src, dst         netip.Addr
	proto            uint8 // protoUDP or protoTCP
	srcPort, dstPort uint16
	tcpFlags         byte
	payload          []byte
}

// TCP flags.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// walk reads data's headers down to UDP or TCP into s, in place. found is false
// with a nil error for a frame that carries something else (ARP, LLC, an IP
// fragment, another protocol); an error means a header that does not parse.
func (s *segment) walk(l link, data []byte) (found bool, err error) {
	var etherType uint16
	switch l {
	case linkEthernet:
		if len(data) < 14 {
			return false, errShort
		}
		etherType, data = be16(data[12:]), data[14:]
	case linkSLL:
		if len(data) < 16 {
			return false, errShort
		}
		if be16(data[4:]) > 8 {
			return false, errLinkAddr
		}
		etherType, data = be16(data[14:]), data[16:]
	case linkSLL2:
		if len(data) < 20 {
			return false, errShort
		}
		if data[11] > 8 {
			return false, errLinkAddr
		}
		if hw := be16(data[8:]); hw == arphrdFRAD || hw == arphrdRadiotap {
			return false, nil
		}
		etherType, data = be16(data[0:]), data[20:]
	case linkRawIP:
		if len(data) == 0 {
			return false, errShort
		}
		etherType = etherIPv4
		if data[0]>>4 == 6 {
			etherType = etherIPv6
		}
	default:
		return false, nil
	}
	return s.network(etherType, data)
}

// network follows VLAN tags and bridged Ethernet to the first IP header. Here
// and in ip, a header with nothing after it ends the walk: there is nothing to read.
func (s *segment) network(etherType uint16, data []byte) (bool, error) {
	for len(data) > 0 {
		switch etherType {
		case etherVLAN, etherQinQ:
			if len(data) < 4 {
				return false, errShort
			}
			etherType, data = be16(data[2:]), data[4:]
		case etherBridging:
			if len(data) < 14 {
				return false, errShort
			}
			etherType, data = be16(data[12:]), data[14:]
		case etherIPv4, etherRaw:
			return s.ip(protoIPv4, data)
		case etherIPv6:
			return s.ip(protoIPv6, data)
		default:
			return false, nil
		}
	}
	return false, nil
}

// ip reads IP headers (tunnels nest them) down to the transport header. Each
// header consumes at least 20 bytes, so the loop ends with the data.
func (s *segment) ip(proto uint8, data []byte) (bool, error) {
	var err error
	for len(data) > 0 {
		switch proto {
		case protoIPv4, protoIPIP:
			proto, data, err = s.ipv4(data)
		case protoIPv6:
			proto, data, err = s.ipv6(data)
		case protoUDP:
			return true, s.udp(data)
		case protoTCP:
			return true, s.tcp(data)
		default:
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// ipv4 reads an IPv4 header; proto 0 for a fragment, which is not followed.
func (s *segment) ipv4(data []byte) (proto uint8, payload []byte, err error) {
	if len(data) < 20 {
		return 0, nil, errShort
	}
	if data[0]>>4 != 4 {
		return 0, nil, errIPVersion
	}
	hlen, total := int(data[0]&0x0f)*4, int(be16(data[2:]))
	if total == 0 {
		total = len(data) // segmentation offload leaves the field to the NIC
	}
	if total < 20 || hlen < 20 || hlen > total {
		return 0, nil, errIPLength
	}
	if len(data) > total {
		data = data[:total] // Ethernet padding
	} else if hlen > len(data) {
		return 0, nil, errShort
	}
	if !ipv4OptionsValid(data[20:hlen]) {
		return 0, nil, errIPOption
	}
	s.src = netip.AddrFrom4([4]byte(data[12:16]))
	s.dst = netip.AddrFrom4([4]byte(data[16:20]))
	if be16(data[6:])&0x3fff != 0 { // more fragments, or an offset
		return 0, nil, nil
	}
	return data[9], data[hlen:], nil
}

// ipv4OptionsValid: every option's length stays within the header (RFC 791 3.1).
func ipv4OptionsValid(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return true
		case 1: // no-operation
			opts = opts[1:]
		default:
			if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
				return false
			}
			opts = opts[opts[1]:]
		}
	}
	return true
}

// ipv6 reads an IPv6 header and a hop-by-hop options header after it; any other
// extension header ends the walk (ip's loop does not follow its number).
func (s *segment) ipv6(data []byte) (proto uint8, payload []byte, err error) {
	if len(data) < 40 {
		return 0, nil, errShort
	}
	if data[0]>>4 != 6 {
		return 0, nil, errIPVersion
	}
	plen := int(be16(data[4:]))
	if plen == 0 {
		return 0, nil, errIPv6Length
	}
	proto, payload = data[6], data[40:]
	if plen < len(payload) {
		payload = payload[:plen]
	}
	s.src = netip.AddrFrom16([16]byte(data[8:24])).Unmap()
	s.dst = netip.AddrFrom16([16]byte(data[24:40])).Unmap()
	if proto != 0 {
		return proto, payload, nil
	}
	if len(payload) < 2 {
		return 0, nil, errShort
	}
	hlen := (int(payload[1]) + 1) * 8
	if hlen > len(payload) || !hopByHopValid(payload[2:hlen]) {
		return 0, nil, errIPv6Ext
	}
	return payload[0], payload[hlen:], nil
}

// hopByHopValid: the options are well-formed TLVs, and none is a jumbo payload
// length, which only a payload length of 0 may come with (RFC 2675).
func hopByHopValid(opts []byte) bool {
	for len(opts) > 0 {
		if opts[0] == 0 { // Pad1
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1])+2 > len(opts) || opts[0] == 0xc2 {
			return false
		}
		opts = opts[int(opts[1])+2:]
	}
	return true
}

func (s *segment) udp(data []byte) error {
	if len(data) < 8 {
		return errShort
	}
	s.proto, s.srcPort, s.dstPort = protoUDP, be16(data[0:]), be16(data[2:])
	switch n := int(be16(data[4:])); {
	case n >= 8:
		s.payload = data[8:min(n, len(data))]
	case n == 0: // as on a jumbogram: the rest
		s.payload = data[8:]
	default:
		return errUDPLength
	}
	return nil
}

func (s *segment) tcp(data []byte) error {
	if len(data) < 20 {
		return errShort
	}
	off := int(data[12]>>4) * 4
	if off < 20 || off > len(data) {
		return errTCPOffset
	}
	s.proto, s.srcPort, s.dstPort, s.tcpFlags = protoTCP, be16(data[0:]), be16(data[2:]), data[13]
	s.payload = data[off:]
	return nil
}
