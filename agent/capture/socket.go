package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/endian"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// socket is one AF_PACKET socket on one interface. It is read in batches: everything
// queued at once, then the reader waits. At a thousand packets a second, one wake-up
// per packet was a third of the agent's CPU.
type socket struct {
	file *os.File
	conn syscall.RawConn
	buf  []byte // one packet, cut at the capture length
	oob  []byte // the kernel's receive time
}

const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// rcvBuffer is asked for each socket's queue. The kernel caps the request at
// net.core.rmem_max and doubles it: 416 KiB on a default kernel, room for about 500
// small packets between batches. It is charged only as packets queue.
const rcvBuffer = 1 << 20

// openSocket opens a socket on the named interface with prog as its kernel filter.
// The filter is attached before the socket is bound, so no unfiltered packet is ever
// queued.
func openSocket(name string, snaplen int, prog []bpf.RawInstruction) (*socket, error) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	if err := setUp(fd, iface.Index, prog); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "packet:"+name)
	conn, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return &socket{file: file, conn: conn, buf: make([]byte, snaplen), oob: make([]byte, unix.CmsgSpace(sizeofTimespec))}, nil
}

func setUp(fd, ifindex int, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if len(filter) == 0 {
		return errors.New("an empty kernel filter")
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("asking for receive times: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuffer); err != nil {
		return fmt.Errorf("sizing the queue: %w", err)
	}
	return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: endian.Htons(unix.ETH_P_ALL), Ifindex: ifindex})
}

// readQueued hands fn every packet queued, first waiting for one if none is. It
// returns how many it handed over. data is valid only during fn.
func (s *socket) readQueued(fn func(data []byte, at time.Time)) (int, error) {
	n := 0
	var failed error
	err := s.conn.Read(func(fd uintptr) bool {
		for {
			size, oobn, errno := s.recv(fd)
			switch errno {
			case 0:
				n++
				fn(s.buf[:min(size, len(s.buf))], receivedAt(s.oob[:oobn]))
			case unix.EINTR:
			case unix.EAGAIN:
				return n > 0 // with nothing read, wait for the next packet
			default:
				failed = errno
				return true
			}
		}
	})
	if err == nil {
		err = failed
	}
	return n, err
}

// recv reads one packet without waiting. MSG_TRUNC makes size the packet's whole
// length, which may exceed the buffer.
func (s *socket) recv(fd uintptr) (size, oobn int, errno unix.Errno) {
	iov := unix.Iovec{Base: &s.buf[0]}
	iov.SetLen(len(s.buf))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &s.oob[0]}
	msg.SetControllen(len(s.oob))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, e
	}
	return int(r), int(msg.Controllen), 0
}

// receivedAt reads the kernel's receive time from a packet's control message; a
// packet without one is stamped now.
func receivedAt(oob []byte) time.Time {
	if len(oob) < unix.CmsgSpace(sizeofTimespec) {
		return time.Now()
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_TIMESTAMPNS {
		return time.Now()
	}
	ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	return time.Unix(ts.Unix())
}

// drops returns the packets the kernel dropped for want of room since the last call.
func (s *socket) drops() (uint64, error) {
	var stats *unix.TpacketStats
	var err error
	if cerr := s.conn.Control(func(fd uintptr) {
		stats, err = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, err
	}
	return uint64(stats.Drops), nil
}

func (s *socket) close() error { return s.file.Close() }
