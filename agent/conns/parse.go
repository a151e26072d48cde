// Package conns finds the TCP connections of every network namespace on the node from
// /proc/<pid>/net/tcp and tcp6, and tells the client side from the server side.
package conns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
)

// TCP states, as /proc/net/tcp writes them.
const (
	StateEstablished = 0x01
	StateListen      = 0x0A
)

// Socket is one line of /proc/net/tcp or tcp6.
type Socket struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  uint8
}

var errLine = errors.New("malformed line")

// Parse reads a /proc/net/tcp (or tcp6) table and calls fn for each socket, without
// allocating. It returns how many lines it could not read; they are skipped.
func Parse(table []byte, fn func(Socket)) (malformed int) {
	first := true
	for len(table) > 0 {
		line := table
		if i := bytes.IndexByte(table, '\n'); i >= 0 {
			line, table = table[:i], table[i+1:]
		} else {
			table = nil
		}
		if first { // the header
			first = false
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			malformed++
			continue
		}
		fn(s)
	}
	return malformed
}

// parseLine reads "sl: local remote st ...", the only fields it needs.
func parseLine(line []byte) (Socket, error) {
	var s Socket
	rest := skipSpace(line)
	i := bytes.IndexByte(rest, ':')
	if i < 0 {
		return s, errLine
	}
	rest = skipSpace(rest[i+1:])
	var field []byte
	var err error
	field, rest = nextField(rest)
	if s.Local, err = parseAddrPort(field); err != nil {
		return s, err
	}
	field, rest = nextField(rest)
	if s.Remote, err = parseAddrPort(field); err != nil {
		return s, err
	}
	field, _ = nextField(rest)
	st, ok := hexValue(field)
	if !ok || len(field) != 2 {
		return s, errLine
	}
	s.State = uint8(st)
	return s, nil
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func nextField(b []byte) (field, rest []byte) {
	b = skipSpace(b)
	i := 0
	for i < len(b) && b[i] != ' ' && b[i] != '\t' {
		i++
	}
	return b[:i], b[i:]
}

// parseAddrPort reads "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6). The
// address is written as 32-bit words in the kernel's byte order (little-endian here).
func parseAddrPort(f []byte) (netip.AddrPort, error) {
	colon := bytes.IndexByte(f, ':')
	if colon < 0 || len(f)-colon-1 != 4 {
		return netip.AddrPort{}, errLine
	}
	port, ok := hexValue(f[colon+1:])
	if !ok {
		return netip.AddrPort{}, errLine
	}
	hex := f[:colon]
	var raw [16]byte
	switch len(hex) {
	case 8, 32:
		for w := 0; w < len(hex)/8; w++ {
			v, ok := hexValue(hex[w*8 : w*8+8])
			if !ok {
				return netip.AddrPort{}, errLine
			}
			binary.LittleEndian.PutUint32(raw[w*4:], uint32(v))
		}
	default:
		return netip.AddrPort{}, errLine
	}
	var addr netip.Addr
	if len(hex) == 8 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

func hexValue(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}
