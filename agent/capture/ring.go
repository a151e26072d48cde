package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/layers"

	"github.com/gopacket/gopacket/endian"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// ring is one AF_PACKET socket with a TPACKET_V3 receive ring. The kernel fills a
// block of the ring with packets and wakes the reader only when it closes the block:
// when it is full, or on the retire timer (every blockTimeout) once it holds a packet.
// A reader woken once a packet, at a thousand a second, spent more CPU waking than
// reading.
type ring struct {
	file      *os.File
	conn      syscall.RawConn
	ring      []byte
	blockSize int
	next      int // the block to read next
}

// The ring: blocks of blockSize(snaplen), 512 KiB for DNS answers and 128 KiB for
// SYNs, mapped into the agent's memory. Below about 1,500 answers (450 SYNs) a second
// a block closes on its timer, so the ring holds blocks × blockTimeout (1.6 s) of
// traffic for a reader held up by the node's other work; above, blocks close when
// full, and the ring holds about 2,000 answers (700 SYNs). A burst that fills it
// before the reader empties a block is dropped, and counted.
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

// openRing opens a socket on the interface with index ifindex, or on every
// interface with 0, with prog as its kernel filter, for packets cut at snaplen. The filter is attached before
// the socket is bound, so no unfiltered packet is ever queued.
func openRing(ifindex int, prog []bpf.RawInstruction, snaplen int) (*ring, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	size := blockSize(snaplen)
	mem, err := setUpRing(fd, ifindex, prog, size)
	if err != nil {
		if mem != nil {
			_ = unix.Munmap(mem)
		}
		_ = unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "packet")
	conn, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		_ = unix.Munmap(mem)
		return nil, err
	}
	return &ring{file: file, conn: conn, ring: mem, blockSize: size}, nil
}

func setUpRing(fd, ifindex int, prog []bpf.RawInstruction, size int) ([]byte, error) {
	if err := attach(fd, prog); err != nil {
		return nil, err
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

// readBlocks hands fn every packet of the blocks the kernel has closed, at most a
// ring's worth, first waiting for one if none is (a ring fed faster than it is read
// still lets Close in). It returns how many packets it handed over; data is valid
// only during fn. An error means the socket was closed.
func (s *ring) readBlocks(fn func(data []byte, at time.Time)) (int, error) {
	n := 0
	err := s.conn.Read(func(uintptr) bool {
		for range blocks {
			block := s.ring[s.next*s.blockSize : (s.next+1)*s.blockSize]
			status := (*uint32)(unsafe.Pointer(&block[blockStatusAt]))
			if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
				return n > 0 // with nothing read, wait for the kernel to close a block
			}
			n += readBlock(block, fn)
			atomic.StoreUint32(status, unix.TP_STATUS_KERNEL) // the block is the kernel's again
			s.next = (s.next + 1) % blocks
		}
		return true
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
		next := int(binary.NativeEndian.Uint32(p[packetNextAt:]))
		if next == 0 {
			return i + 1
		}
		at += next
	}
	return count
}

// drops returns the packets the kernel dropped for want of room since the last call.
func (s *ring) drops() (uint64, error) {
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
func (s *ring) close() error {
	err := s.file.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	if uerr := unix.Munmap(s.ring); err == nil {
		err = uerr
	}
	return err
}

// rings are a ring socket on each named interface, or one on every interface.
type rings struct {
	socks    []*ring
	captured atomic.Uint64

	mu      sync.Mutex
	dropped uint64
}

// openRings opens a ring on each interface index; 0 is every interface.
func openRings(indexes []int, names []string, prog []bpf.RawInstruction, snaplen int) (*rings, error) {
	c := &rings{}
	prog = cutAt(prog, snaplen)
	for i, index := range indexes {
		sock, err := openRing(index, prog, snaplen)
		if err != nil {
			c.close()
			if len(names) > 0 {
				return nil, fmt.Errorf("capturing on %s: %w", names[i], withCapability(err))
			}
			return nil, fmt.Errorf("capturing on every interface: %w", withCapability(err))
		}
		c.socks = append(c.socks, sock)
	}
	return c, nil
}

// cutAt makes prog keep at most snaplen bytes of a packet it accepts: a filter's
// return value is how much of the packet the kernel copies into the ring.
func cutAt(prog []bpf.RawInstruction, snaplen int) []bpf.RawInstruction {
	const retConstant = 0x06 // BPF_RET | BPF_K
	out := make([]bpf.RawInstruction, len(prog))
	for i, ins := range prog {
		if ins.Op == retConstant && ins.K > uint32(snaplen) {
			ins.K = uint32(snaplen)
		}
		out[i] = ins
	}
	return out
}

// run reads every ring until ctx ends, handing each packet to fn from the ring's own
// goroutine (one decoder per ring). It closes the rings when it returns.
func (c *rings) run(ctx context.Context, fn Handler) {
	var wg sync.WaitGroup
	for _, s := range c.socks {
		wg.Go(func() { c.read(s, fn) })
	}
	<-ctx.Done()
	c.close() // ends the reads
	wg.Wait()
}

// read reads one ring until it is closed.
func (c *rings) read(s *ring, fn Handler) {
	dec := packets.NewDecoder(layers.LayerTypeIPv4) // raw IP, either version
	deliver := func(data []byte, at time.Time) { fn(data, at, dec) }
	for {
		n, err := s.readBlocks(deliver)
		c.captured.Add(uint64(n))
		if err != nil {
			return
		}
	}
}

// stats returns the counts so far, the kernel's drops included.
func (c *rings) stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.socks {
		if d, err := s.drops(); err == nil {
			c.dropped += d // the kernel resets its counts on each read
		}
	}
	return Stats{Captured: c.captured.Load(), Dropped: c.dropped}
}

// close closes every ring.
func (c *rings) close() {
	for _, s := range c.socks {
		_ = s.close()
	}
}
