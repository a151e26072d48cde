package conns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func table10k() []byte {
	var b strings.Builder
	b.WriteString(tcpHeader)
	for i := range 10_000 {
		b.WriteString(kernelLine(i, hex4(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), uint16(30000+i%1000)), hex4("10.96.0.30", 6379), StateEstablished))
	}
	return []byte(b.String())
}

// BenchmarkParseProc: our parser over a 10,000-socket /proc/net/tcp.
func BenchmarkParseProc(b *testing.B) {
	table := table10k()
	b.ReportAllocs()
	b.SetBytes(int64(len(table)))
	for b.Loop() {
		n := 0
		Parse(table, func(Socket) { n++ })
		if n != 10_000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkParseProcBaseline: the common approach, strings.Fields and strconv per line.
func BenchmarkParseProcBaseline(b *testing.B) {
	table := table10k()
	b.ReportAllocs()
	b.SetBytes(int64(len(table)))
	for b.Loop() {
		n := 0
		for i, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 4 {
				continue
			}
			local, err1 := baselineAddr(f[1])
			remote, err2 := baselineAddr(f[2])
			st, err3 := strconv.ParseUint(f[3], 16, 8)
			if err1 != nil || err2 != nil || err3 != nil {
				b.Fatal("bad line")
			}
			_ = Socket{Local: local, Remote: remote, State: uint8(st)}
			n++
		}
		if n != 10_000 {
			b.Fatal(n)
		}
	}
}

func baselineAddr(s string) (netip.AddrPort, error) {
	parts := strings.Split(s, ":")
	ip, err := strconv.ParseUint(parts[0], 16, 32)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(parts[1], 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], uint32(ip))
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)), nil
}
