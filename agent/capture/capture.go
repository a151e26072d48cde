// Package capture reads packets from AF_PACKET sockets with a kernel BPF filter
// attached, on a list of interfaces or all of them.
package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// Handler receives each packet that passed the filter. data is valid only during the call.
type Handler func(data []byte, at time.Time, dec *packets.Decoder)

// Filter builds the kernel filter for a link framing.
type Filter func(link int) ([]bpf.RawInstruction, error)

// Stats are the counts a capture keeps.
type Stats struct {
	Captured uint64 // packets that passed the filter
	Dropped  uint64 // packets the kernel dropped for want of room
}

// handle is one open socket on one interface.
type handle struct {
	name string
	sock *socket
	dec  *packets.Decoder
}

// rescanEvery is how often a capture of all interfaces looks for new ones (a new
// pod's veth, say).
const rescanEvery = 15 * time.Second

// Open opens a filtered socket on each named interface, or on every interface that is
// up when names is empty (and then on new ones as they come up, while Run runs).
// Failing to open one (no CAP_NET_RAW) is an error.
func Open(names []string, filter Filter, snaplen int) (*Capture, error) {
	c := &Capture{filter: filter, snaplen: snaplen, all: len(names) == 0, open: map[string]*handle{}}
	if c.all {
		var err error
		if names, err = upInterfaces(); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		h, err := openOne(name, filter, snaplen)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.open[name] = h
	}
	if len(c.open) == 0 {
		return nil, errors.New("no interface to capture on")
	}
	return c, nil
}

func upInterfaces() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, i := range ifaces {
		if i.Flags&net.FlagUp != 0 {
			names = append(names, i.Name)
		}
	}
	return names, nil
}

// Capture lengths: a SYN is all headers; a DNS answer over UDP with EDNS stays within
// 4096 bytes. Each socket holds one buffer of this size, so small ones keep a node with
// many interfaces cheap.
const (
	SnaplenSYN = 256
	SnaplenDNS = 8192
)

func openOne(name string, filter Filter, snaplen int) (*handle, error) {
	link, first := linkOf(name)
	prog, err := filter(link)
	if err != nil {
		return nil, err
	}
	if loopback(name) {
		prog = incomingOnly(prog)
	}
	sock, err := openSocket(name, snaplen, prog)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("capturing on %s: %w: the agent needs CAP_NET_RAW", name, err)
		}
		return nil, fmt.Errorf("capturing on %s: %w", name, err)
	}
	return &handle{name: name, sock: sock, dec: packets.NewDecoder(first)}, nil
}

// loopback says whether name is a loopback interface.
func loopback(name string) bool {
	i, err := net.InterfaceByName(name)
	return err == nil && i.Flags&net.FlagLoopback != 0
}

// packetOutgoing is the kernel's PACKET_OUTGOING packet type (linux/if_packet.h).
const packetOutgoing = 4

// incomingOnly prepends to prog a test that drops packets the host sends. Loopback
// carries each packet twice, leaving and arriving: keeping one copy halves the work
// and never loses one. Elsewhere (a pod's veth) what the host sends is what a pod
// receives, so only loopback gets it. prog's jumps are relative: prepending keeps them.
func incomingOnly(prog []bpf.RawInstruction) []bpf.RawInstruction {
	head, _ := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	})
	return append(head, prog...)
}

// linkOf reads an interface's hardware type: ARPHRD_NONE (65534) and the other
// IP-only devices carry raw IP; the rest, loopback included, Ethernet framing.
func linkOf(name string) (int, gopacket.LayerType) {
	raw, err := os.ReadFile("/sys/class/net/" + name + "/type")
	if err == nil {
		if t, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && (t == 65534 || t == 776) {
			return packets.LinkRawIP, layers.LayerTypeIPv4
		}
	}
	return packets.LinkEthernet, layers.LayerTypeEthernet
}

// Capture is a set of open sockets.
type Capture struct {
	filter  Filter
	snaplen int
	all     bool
	mu      sync.Mutex
	open    map[string]*handle
	dropped uint64 // under mu

	captured atomic.Uint64
}

// Interfaces names the interfaces captured on.
func (c *Capture) Interfaces() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.open))
	for name := range c.open {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Run reads every socket until ctx ends, handing each packet to handle from the
// socket's own goroutine (one decoder per socket).
func (c *Capture) Run(ctx context.Context, fn Handler) {
	var wg sync.WaitGroup
	start := func(h *handle) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(ctx, h, fn)
		}()
	}
	c.mu.Lock()
	for _, h := range c.open {
		start(h)
	}
	c.mu.Unlock()
	tick := time.NewTicker(rescanEvery)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			if c.all {
				for _, h := range c.openNew() {
					start(h)
				}
			}
		}
	}
	c.Close() // unblocks the reads
	wg.Wait()
}

// openNew opens sockets on interfaces that came up since the last look.
func (c *Capture) openNew() []*handle {
	names, err := upInterfaces()
	if err != nil {
		return nil
	}
	var opened []*handle
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range names {
		if c.open[name] != nil {
			continue
		}
		if h, err := openOne(name, c.filter, c.snaplen); err == nil {
			c.open[name] = h
			opened = append(opened, h)
		}
	}
	return opened
}

// A socket's reader lets packets queue between batches: at a thousand a second, a
// wake-up every ten packets instead of every one. The pause is cut so that about
// batchTarget packets queue at the rate just seen, well within what rcvBuffer holds;
// a burst the queue cannot hold is counted as dropped.
const (
	batchPause  = 10 * time.Millisecond
	batchTarget = 64
)

// read reads one socket until ctx ends or its interface goes away.
func (c *Capture) read(ctx context.Context, h *handle, fn Handler) {
	deliver := func(data []byte, at time.Time) { fn(data, at, h.dec) }
	last := time.Now()
	for ctx.Err() == nil {
		n, err := h.sock.readQueued(deliver)
		c.captured.Add(uint64(n))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if _, gone := net.InterfaceByName(h.name); gone != nil {
				c.mu.Lock()
				delete(c.open, h.name)
				c.mu.Unlock()
				_ = h.sock.close()
				return
			}
		}
		now := time.Now()
		time.Sleep(pauseAfter(n, now.Sub(last))) // after an error too: a transient one must not spin
		last = now
	}
}

// pauseAfter is the pause after a batch of n packets that came in elapsed.
func pauseAfter(n int, elapsed time.Duration) time.Duration {
	if n <= batchTarget {
		return batchPause
	}
	return min(batchPause, elapsed*batchTarget/time.Duration(n))
}

// Stats returns the counts so far, the kernel's drops included.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.open {
		if d, err := h.sock.drops(); err == nil {
			c.dropped += d // the kernel resets its counts on each read
		}
	}
	return Stats{Captured: c.captured.Load(), Dropped: c.dropped}
}

// Close closes every socket.
func (c *Capture) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.open {
		_ = h.sock.close()
	}
}
