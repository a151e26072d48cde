package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/endian"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// socket is one AF_PACKET socket with a TPACKET_V3 receive ring. The kernel fills a
// block of the ring with packets and wakes the reader only when it closes the block:
// when it is full or blockTimeout after its first packet. A reader woken once a
// packet, at a thousand a second, spent more CPU waking than reading.
//
// The socket is cooked (SOCK_DGRAM): every packet starts at its IP header, whatever
// the interface's framing, so one filter and one decoder serve every interface.
type socket struct {
	file      *os.File
	conn      syscall.RawConn
	ring      []byte
	blockSize int
	next      int // the block to read next
}

// The ring: blocks of blockSize(snaplen), 512 KiB for DNS answers and 128 KiB for
// SYNs, mapped into the agent's memory. At a few thousand packets a second a block
// closes on its timeout, so the ring holds blocks × blockTimeout (1.6 s) of traffic
// for a reader held up by the node's other work; beyond, a block closes when full,
// and the ring holds about 2,000 answers. A burst that fills it before the reader
// empties a block is dropped, and counted.
const (
	blocks       = 32
	blockTimeout = 50 // milliseconds
	frameSize    = 2048
	// packetRoom is what the kernel writes beside a packet: the block's header, the
	// packet's tpacket3_hdr and sockaddr_ll, aligned.
	packetRoom = 256
)

// blockSize is the smallest block that holds a packet cut at snaplen: a power of two,
// at least a page.
func blockSize(snaplen int) int {
	size := os.Getpagesize()
	for size < snaplen+packetRoom {
		size *= 2
	}
	return size
}

// Offsets in the kernel's structures (linux/if_packet.h): a block starts with
// tpacket_block_desc, whose tpacket_hdr_v1 says the block's owner, its packet count
// and where its first packet is; each packet starts with a tpacket3_hdr.
const (
	blockStatusAt  = 8
	blockPacketsAt = 12
	blockFirstAt   = 16
	packetNextAt   = 0
	packetSecAt    = 4
	packetNsecAt   = 8
	packetLenAt    = 12 // tp_snaplen: the bytes captured
	packetMacAt    = 24
	packetHeader   = 28 // through tp_net
)

// openSocket opens a socket on the interface with index ifindex, or on every
// interface with 0, with prog as its kernel filter, for packets cut at snaplen. The filter is attached before
// the socket is bound, so no unfiltered packet is ever queued.
func openSocket(ifindex int, prog []bpf.RawInstruction, snaplen int) (*socket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	size := blockSize(snaplen)
	ring, err := setUp(fd, ifindex, prog, size)
	if err != nil {
		if ring != nil {
			_ = unix.Munmap(ring)
		}
		_ = unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "packet")
	conn, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		_ = unix.Munmap(ring)
		return nil, err
	}
	return &socket{file: file, conn: conn, ring: ring, blockSize: size}, nil
}

func setUp(fd, ifindex int, prog []bpf.RawInstruction, size int) ([]byte, error) {
	if len(prog) == 0 {
		return nil, errors.New("an empty kernel filter")
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, fmt.Errorf("attaching the filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("asking for TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{Block_size: uint32(size), Block_nr: blocks, Frame_size: frameSize,
		Frame_nr: uint32(blocks * size / frameSize), Retire_blk_tov: blockTimeout}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("making the receive ring: %w", err)
	}
	ring, err := unix.Mmap(fd, 0, size*blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the receive ring: %w", err)
	}
	err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: endian.Htons(unix.ETH_P_ALL), Ifindex: ifindex})
	return ring, err
}

// readBlocks hands fn every packet of every block the kernel has closed, first
// waiting for one if none is. It returns how many packets it handed over; data is
// valid only during fn. An error means the socket was closed.
func (s *socket) readBlocks(fn func(data []byte, at time.Time)) (int, error) {
	n := 0
	err := s.conn.Read(func(uintptr) bool {
		for {
			block := s.ring[s.next*s.blockSize : (s.next+1)*s.blockSize]
			status := (*uint32)(unsafe.Pointer(&block[blockStatusAt]))
			if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
				return n > 0 // with nothing read, wait for the kernel to close a block
			}
			n += readBlock(block, fn)
			atomic.StoreUint32(status, unix.TP_STATUS_KERNEL) // the block is the kernel's again
			s.next = (s.next + 1) % blocks
		}
	})
	return n, err
}

// readBlock hands fn each packet of a closed block. The kernel wrote the offsets;
// one that points outside the block ends the block rather than the agent.
func readBlock(block []byte, fn func(data []byte, at time.Time)) int {
	count := int(binary.NativeEndian.Uint32(block[blockPacketsAt:]))
	at := int(binary.NativeEndian.Uint32(block[blockFirstAt:]))
	for i := range count {
		if at < 0 || at+packetHeader > len(block) {
			return i
		}
		p := block[at:]
		start := int(binary.NativeEndian.Uint16(p[packetMacAt:]))
		size := int(binary.NativeEndian.Uint32(p[packetLenAt:]))
		if start+size > len(p) {
			return i
		}
		sec, nsec := binary.NativeEndian.Uint32(p[packetSecAt:]), binary.NativeEndian.Uint32(p[packetNsecAt:])
		fn(p[start:start+size], time.Unix(int64(sec), int64(nsec)))
		at += int(binary.NativeEndian.Uint32(p[packetNextAt:]))
	}
	return count
}

// drops returns the packets the kernel dropped for want of room since the last call.
func (s *socket) drops() (uint64, error) {
	var stats *unix.TpacketStatsV3
	var err error
	if cerr := s.conn.Control(func(fd uintptr) {
		stats, err = unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, err
	}
	return uint64(stats.Drops), nil
}

// close closes the socket, then unmaps its ring: closing waits for a read in
// progress, and every read of the ring happens within one.
func (s *socket) close() error {
	err := s.file.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	if uerr := unix.Munmap(s.ring); err == nil {
		err = uerr
	}
	return err
}
