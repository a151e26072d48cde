package conns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     \n"
const tcp6Header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// kernelLine writes a socket as the kernel's tcp4_seq_show does.
func kernelLine(sl int, local, remote string, state int) string {
	return fmt.Sprintf("%4d: %s %s %02X 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", sl, local, remote, state, 40000+sl)
}

// hex4 writes an IPv4 address and port the way the kernel does (host byte order).
func hex4(ip string, port uint16) string {
	b := netip.MustParseAddr(ip).As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], port)
}

func hex6(ip string, port uint16) string {
	b := netip.MustParseAddr(ip).As16()
	var s strings.Builder
	for w := 0; w < 16; w += 4 {
		fmt.Fprintf(&s, "%02X%02X%02X%02X", b[w+3], b[w+2], b[w+1], b[w])
	}
	return fmt.Sprintf("%s:%04X", s.String(), port)
}

func TestParseKernelLines(t *testing.T) {
	v4 := tcpHeader +
		"   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 0701F40A:A028 1400600A:1F90 01 00000000:00000000 02:000AFA21 00000000  1000        0 23457 2 0000000000000000 20 4 30 10 -1\n"
	var got []Socket
	if bad := Parse([]byte(v4), func(s Socket) { got = append(got, s) }); bad != 0 || len(got) != 2 {
		t.Fatalf("%d malformed, %d sockets", bad, len(got))
	}
	if got[0] != (Socket{Local: netip.MustParseAddrPort("127.0.0.1:53"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: StateListen}) {
		t.Errorf("listener %+v", got[0])
	}
	if got[1] != (Socket{Local: netip.MustParseAddrPort("10.244.1.7:41000"), Remote: netip.MustParseAddrPort("10.96.0.20:8080"), State: StateEstablished}) {
		t.Errorf("connection %+v", got[1])
	}

	v6 := tcp6Header +
		"   0: 000000FD000000000000000007000000:A028 000000FD000000000000000020000000:01BB 01 00000000:00000000 00:00000000 00000000     0        0 34567 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 0000000000000000FFFF00000701F40A:A029 0000000000000000FFFF00001400600A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 34568 1 0000000000000000 100 0 0 10 0\n"
	got = nil
	Parse([]byte(v6), func(s Socket) { got = append(got, s) })
	if len(got) != 2 || got[0].Local != netip.MustParseAddrPort("[fd00::7]:41000") || got[0].Remote != netip.MustParseAddrPort("[fd00::20]:443") {
		t.Fatalf("ipv6 %+v", got)
	}
	if got[1].Local != netip.MustParseAddrPort("10.244.1.7:41001") || got[1].Remote != netip.MustParseAddrPort("10.96.0.20:8080") {
		t.Errorf("an IPv4-mapped address must read as IPv4: %+v", got[1])
	}
	if hex6("fd00::7", 41000) != "000000FD000000000000000007000000:A028" || hex4("10.244.1.7", 41000) != "0701F40A:A028" {
		t.Fatal("the test's own kernel format is off")
	}
}

func TestParseSkipsGarbage(t *testing.T) {
	table := tcpHeader + "garbage\n   1: 0100007F:00 00000000:0000 0A\n   2: ZZ00007F:0035 00000000:0000 0A x\n" +
		kernelLine(3, hex4("10.0.0.1", 1), hex4("10.0.0.2", 2), StateEstablished)
	n := 0
	if bad := Parse([]byte(table), func(Socket) { n++ }); bad != 3 || n != 1 {
		t.Errorf("%d malformed, %d read; want 3 and 1", bad, n)
	}
}

// TestScanThisMachine opens a loopback connection and finds it in this machine's /proc,
// from the client's side only.
func TestScanThisMachine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.43.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 43, 0, 2)}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if srv := <-accepted; srv != nil {
		defer func() { _ = srv.Close() }()
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	var got []Conn
	st, err := (&Scanner{Root: "/proc"}).Scan(func(c Conn) { got = append(got, c) })
	if err != nil || st.Namespaces == 0 {
		t.Fatalf("scan: %v %+v", err, st)
	}
	want := Conn{Client: netip.MustParseAddr("127.43.0.2"), Server: netip.MustParseAddr("127.43.0.1"), Port: port}
	found, reversed := false, false
	for _, g := range got {
		found = found || g == want
		reversed = reversed || (g.Client == want.Server && g.Server == want.Client)
	}
	if !found || reversed {
		t.Errorf("client side found %v, server side taken for a client %v", found, reversed)
	}
}

// procRoot writes a proc tree: pids with a net namespace link and tcp tables.
func procRoot(t testing.TB, pids map[int]string, tables map[string][2]string) string {
	root := t.TempDir()
	for pid, ns := range pids {
		dir := filepath.Join(root, fmt.Sprint(pid))
		for _, sub := range []string{"ns", "net"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("net:["+ns+"]", filepath.Join(dir, "ns", "net")); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"tcp", "tcp6"} {
			if err := os.WriteFile(filepath.Join(dir, "net", name), []byte(tables[ns][i]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "sys"), 0o755); err != nil { // not a pid
		t.Fatal(err)
	}
	return root
}

func TestScanNamespacesOnceEach(t *testing.T) {
	pod := tcpHeader +
		kernelLine(0, hex4("0.0.0.0", 8080), hex4("0.0.0.0", 0), StateListen) +
		kernelLine(1, hex4("10.244.1.7", 8080), hex4("10.244.2.9", 50000), StateEstablished) + // served
		kernelLine(2, hex4("10.244.1.7", 41000), hex4("10.96.0.20", 5432), StateEstablished) + // called
		kernelLine(3, hex4("127.0.0.1", 41001), hex4("127.0.0.1", 15001), StateEstablished) // to itself
	pod6 := tcp6Header + kernelLine(0, hex6("fd00::7", 41002), hex6("fd00::20", 443), StateEstablished)
	var many strings.Builder
	many.WriteString(tcpHeader)
	for i := range 10_000 {
		many.WriteString(kernelLine(i, hex4(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), 30000), hex4("10.96.0.30", 6379), StateEstablished))
	}
	root := procRoot(t, map[int]string{100: "4026532001", 101: "4026532001", 200: "4026532002"},
		map[string][2]string{"4026532001": {pod, pod6}, "4026532002": {many.String(), tcp6Header}})

	var got []Conn
	st, err := (&Scanner{Root: root}).Scan(func(c Conn) { got = append(got, c) })
	if err != nil {
		t.Fatal(err)
	}
	if st.Namespaces != 2 || st.Sockets != 5+10_000 {
		t.Errorf("stats %+v: each namespace must be read once", st)
	}
	if len(got) != 2+10_000 {
		t.Fatalf("%d connections, want %d", len(got), 2+10_000)
	}
	want := map[Conn]bool{
		{Client: netip.MustParseAddr("10.244.1.7"), Server: netip.MustParseAddr("10.96.0.20"), Port: 5432}: true,
		{Client: netip.MustParseAddr("fd00::7"), Server: netip.MustParseAddr("fd00::20"), Port: 443}:       true,
	}
	for _, c := range got {
		delete(want, c)
		if c.Port == 50000 || c.Port == 15001 {
			t.Errorf("server side or self connection reported: %+v", c)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
}

// FuzzParse: any table gives sockets or counted malformed lines, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(tcpHeader + kernelLine(0, hex4("10.0.0.1", 80), hex4("10.0.0.2", 90), 1)))
	f.Add([]byte(tcp6Header + kernelLine(0, hex6("fd00::1", 80), hex6("::ffff:10.0.0.2", 90), 1)))
	f.Add([]byte("\n\n:::: ::\n"))
	f.Fuzz(func(t *testing.T, table []byte) {
		lines := strings.Count(string(table), "\n") + 1
		n := 0
		bad := Parse(table, func(s Socket) {
			n++
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid socket %+v", s)
			}
		})
		if n+bad > lines {
			t.Fatalf("%d sockets and %d malformed from %d lines", n, bad, lines)
		}
	})
}

// sockstat files as the kernel writes them (net/ipv4/proc.c, net/ipv6/proc.c).
const (
	sockstatV4Only = "sockets: used 12\nTCP: inuse 3 orphan 0 tw 0 alloc 4 mem 1\nUDP: inuse 0 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
	sockstat6None  = "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"
	sockstat6Some  = "TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"
)

// A table whose protocol counts no socket in the namespace's sockstat is not read (the
// read walks the host's TCP hash); a count above 0, or no sockstat, reads it.
func TestScanSkipsATableSockstatSaysIsEmpty(t *testing.T) {
	v6 := tcp6Header + kernelLine(0, hex6("fd00::7", 41002), hex6("fd00::20", 443), StateEstablished)
	root := procRoot(t, map[int]string{100: "4026532001", 200: "4026532002", 300: "4026532003"}, map[string][2]string{
		"4026532001": {tcpHeader, v6}, "4026532002": {tcpHeader, v6}, "4026532003": {tcpHeader, v6}})
	for pid, sockstat6 := range map[int]string{100: sockstat6None, 200: sockstat6Some} {
		for name, body := range map[string]string{"sockstat": sockstatV4Only, "sockstat6": sockstat6} {
			if err := os.WriteFile(filepath.Join(root, fmt.Sprint(pid), "net", name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pid 100's tcp6 table holds a socket its sockstat6 does not count: proof it was not read.
	got := map[string]bool{}
	st, err := (&Scanner{Root: root}).Scan(func(c Conn) { got[c.Client.String()] = true })
	if err != nil {
		t.Fatal(err)
	}
	if st.Namespaces != 3 || st.Sockets != 2 || len(got) != 1 {
		t.Errorf("stats %+v, clients %v: want the tcp6 tables of pids 200 (TCP6 inuse 1) and 300 (no sockstat) read, not 100's", st, got)
	}
}
