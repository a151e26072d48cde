// Package capture reads packets from AF_PACKET sockets with a kernel BPF filter
// attached: one socket for every interface, new ones included, or one for each
// named interface.
package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// Handler receives each packet that passed the filter, from its IP header on. data is
// valid only during the call.
type Handler func(data []byte, at time.Time, dec *packets.Decoder)

// Filter builds the kernel filter for a link framing.
type Filter func(link int) ([]bpf.RawInstruction, error)

// Stats are the counts a capture keeps.
type Stats struct {
	Captured uint64 // packets that passed the filter
	Dropped  uint64 // packets the kernel dropped for want of room
}

// Capture lengths: a SYN is all headers; a DNS answer over UDP with EDNS stays within
// 4096 bytes. The kernel cuts each packet there before it takes room in the ring.
const (
	SnaplenSYN = 256
	SnaplenDNS = 8192
)

// Capture is a set of open sockets.
type Capture struct {
	socks    []*socket
	captured atomic.Uint64

	mu      sync.Mutex
	dropped uint64
}

// Open opens a filtered socket on each named interface, or one on every interface,
// those that come up later included, when names is empty. Failing to open one (no
// CAP_NET_RAW) is an error.
func Open(names []string, filter Filter, snaplen int) (*Capture, error) {
	prog, err := filter(packets.LinkRawIP) // cooked sockets: every packet starts at IP
	if err != nil {
		return nil, err
	}
	lo, err := loopbackIndex()
	if err != nil {
		return nil, err
	}
	prog = cutAt(loopbackOnce(lo, prog), snaplen)
	indexes := []int{0} // every interface
	if len(names) > 0 {
		indexes = indexes[:0]
		for _, name := range names {
			i, err := net.InterfaceByName(name)
			if err != nil {
				return nil, fmt.Errorf("capturing on %s: %w", name, err)
			}
			indexes = append(indexes, i.Index)
		}
	}
	c := &Capture{}
	for i, index := range indexes {
		sock, err := openSocket(index, prog, snaplen)
		if err != nil {
			c.Close()
			if len(names) > 0 {
				return nil, fmt.Errorf("capturing on %s: %w", names[i], withCapability(err))
			}
			return nil, fmt.Errorf("capturing on every interface: %w", withCapability(err))
		}
		c.socks = append(c.socks, sock)
	}
	return c, nil
}

func withCapability(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: the agent needs CAP_NET_RAW", err)
	}
	return err
}

// loopbackIndex is the loopback interface's index, 0 if there is none.
func loopbackIndex() (uint32, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback != 0 {
			return uint32(i.Index), nil
		}
	}
	return 0, nil
}

// packetOutgoing is the kernel's PACKET_OUTGOING packet type (linux/if_packet.h).
const packetOutgoing = 4

// loopbackOnce prepends to prog a test that drops packets the host sends on loopback.
// Loopback carries each packet twice, leaving and arriving: keeping one copy halves
// the work and never loses one. Elsewhere (a pod's veth) what the host sends is what a
// pod receives, so only loopback gets it. prog's jumps are relative: prepending keeps
// them.
func loopbackOnce(lo uint32, prog []bpf.RawInstruction) []bpf.RawInstruction {
	head, _ := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: lo, SkipFalse: 3},
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	})
	return append(head, prog...)
}

// cutAt makes prog keep at most snaplen bytes of a packet it accepts: a filter's
// return value is how much of the packet the kernel copies.
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

// Run reads every socket until ctx ends, handing each packet to fn from the socket's
// own goroutine (one decoder per socket). It closes the capture when it returns.
func (c *Capture) Run(ctx context.Context, fn Handler) {
	var wg sync.WaitGroup
	for _, s := range c.socks {
		wg.Go(func() { c.read(s, fn) })
	}
	<-ctx.Done()
	c.Close() // ends the reads
	wg.Wait()
}

// read reads one socket until it is closed.
func (c *Capture) read(s *socket, fn Handler) {
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

// Stats returns the counts so far, the kernel's drops included.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.socks {
		if d, err := s.drops(); err == nil {
			c.dropped += d // the kernel resets its counts on each read
		}
	}
	return Stats{Captured: c.captured.Load(), Dropped: c.dropped}
}

// Close closes every socket.
func (c *Capture) Close() {
	for _, s := range c.socks {
		_ = s.close()
	}
}
