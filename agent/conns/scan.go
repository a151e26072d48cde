package conns

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Conn is a connection seen from its client side.
type Conn struct {
	Client netip.Addr
	Server netip.Addr
	Port   uint16
}

// Stats describe one scan.
type Stats struct {
	Namespaces int
	Sockets    int
	Malformed  int
	Duration   time.Duration
}

// Scanner reads the connections of every network namespace under a proc root.
type Scanner struct {
	// Root is the proc file system: /proc, or /host/proc in the agent's pod.
	Root string

	buf       []byte
	listening map[uint16]bool
	sockets   []Socket
}

// Scan reads each network namespace once (the first process found in it), and calls
// fn for every established connection whose local side is the client: its local port
// is not one the namespace listens on.
func (s *Scanner) Scan(fn func(Conn)) (Stats, error) {
	start := time.Now()
	var st Stats
	entries, err := os.ReadDir(s.Root)
	if err != nil {
		return st, err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(s.Root, e.Name())
		ns, err := os.Readlink(filepath.Join(dir, "ns", "net"))
		if err != nil || seen[ns] {
			continue // gone, or a namespace already read
		}
		seen[ns] = true
		st.Namespaces++
		s.namespace(dir, fn, &st)
	}
	st.Duration = time.Since(start)
	return st, nil
}

// namespace reads one namespace's tcp and tcp6 tables.
func (s *Scanner) namespace(dir string, fn func(Conn), st *Stats) {
	if s.listening == nil {
		s.listening = map[uint16]bool{}
	}
	clear(s.listening)
	s.sockets = s.sockets[:0]
	for _, table := range tables {
		if s.noSockets(filepath.Join(dir, "net", table.sockstat), table.inuse) {
			continue
		}
		data, err := s.read(filepath.Join(dir, "net", table.name))
		if err != nil {
			continue // no IPv6 in this namespace, or the process left
		}
		st.Malformed += Parse(data, func(sock Socket) {
			st.Sockets++
			switch sock.State {
			case StateListen:
				s.listening[sock.Local.Port()] = true
			case StateEstablished:
				s.sockets = append(s.sockets, sock)
			}
		})
	}
	for _, sock := range s.sockets {
		local, remote := sock.Local.Addr(), sock.Remote.Addr()
		if s.listening[sock.Local.Port()] || local == remote {
			continue // the server's side, or a process talking to itself
		}
		fn(Conn{Client: local, Server: remote, Port: sock.Remote.Port()})
	}
}

// tables are a namespace's TCP tables, each with the sockstat line that counts its
// sockets. Reading a table makes the kernel walk the host's whole TCP hash (unless the
// namespace has its own); sockstat is a per-namespace counter, read for nothing.
var tables = []struct{ name, sockstat, inuse string }{
	{"tcp", "sockstat", "TCP: inuse "},
	{"tcp6", "sockstat6", "TCP6: inuse "},
}

// noSockets says whether the sockstat file at path counts no socket of the protocol
// whose line begins with prefix ("TCP6: inuse 0"): listening and established sockets
// are all counted there, and the scan reads nothing else. Unreadable or unknown: false.
func (s *Scanner) noSockets(path, prefix string) bool {
	data, err := s.read(path)
	if err != nil {
		return false
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte(prefix)); ok {
			n, _, _ := bytes.Cut(bytes.TrimSpace(rest), []byte(" "))
			return string(n) == "0"
		}
	}
	return false
}

// read reads a whole file into the scanner's reused buffer.
func (s *Scanner) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if s.buf == nil {
		s.buf = make([]byte, 0, 256<<10)
	}
	s.buf = s.buf[:0]
	for {
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, 0)[:len(s.buf)]
		}
		n, err := f.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil || n == 0 {
			return s.buf, nil
		}
	}
}
