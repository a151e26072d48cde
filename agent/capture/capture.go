// Package capture reads packets from AF_PACKET sockets (gopacket's pcapgo, pure Go)
// with a kernel BPF filter attached, on a list of interfaces or all of them.
package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"

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
	h    *pcapgo.EthernetHandle
	dec  *packets.Decoder
}

// Open opens a filtered socket on each named interface, or on every interface that is
// up when names is empty. Failing to open any (no CAP_NET_RAW) is an error.
func Open(names []string, filter Filter) (*Capture, error) {
	if len(names) == 0 {
		ifaces, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, i := range ifaces {
			if i.Flags&net.FlagUp != 0 {
				names = append(names, i.Name)
			}
		}
	}
	c := &Capture{}
	for _, name := range names {
		h, err := openOne(name, filter)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.handles = append(c.handles, h)
	}
	if len(c.handles) == 0 {
		return nil, errors.New("no interface to capture on")
	}
	return c, nil
}

func openOne(name string, filter Filter) (*handle, error) {
	link, first := linkOf(name)
	prog, err := filter(link)
	if err != nil {
		return nil, err
	}
	h, err := pcapgo.NewEthernetHandle(name)
	if err != nil {
		return nil, fmt.Errorf("capturing on %s (the agent needs CAP_NET_RAW): %w", name, err)
	}
	if err := h.SetBPF(prog); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("attaching the filter on %s: %w", name, err)
	}
	return &handle{name: name, h: h, dec: packets.NewDecoder(first)}, nil
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
	handles []*handle
	mu      sync.Mutex
	stats   Stats
}

// Interfaces names the interfaces captured on.
func (c *Capture) Interfaces() []string {
	out := make([]string, len(c.handles))
	for i, h := range c.handles {
		out[i] = h.name
	}
	return out
}

// Run reads every socket until ctx ends, handing each packet to handle from the
// socket's own goroutine (one decoder per socket).
func (c *Capture) Run(ctx context.Context, handle Handler) {
	var wg sync.WaitGroup
	for _, h := range c.handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(ctx, h, handle)
		}()
	}
	<-ctx.Done()
	c.Close() // unblocks the reads
	wg.Wait()
}

func (c *Capture) read(ctx context.Context, h *handle, handle Handler) {
	for ctx.Err() == nil {
		data, ci, err := h.h.ZeroCopyReadPacketData()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // a transient error; do not spin
			continue
		}
		c.mu.Lock()
		c.stats.Captured++
		c.mu.Unlock()
		handle(data, ci.Timestamp, h.dec)
	}
}

// Stats returns the counts so far, the kernel's drops included.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.handles {
		if s, err := h.h.Stats(); err == nil {
			c.stats.Dropped += uint64(s.Drops) // the kernel resets its counts on each read
		}
	}
	return c.stats
}

// Close closes every socket.
func (c *Capture) Close() {
	for _, h := range c.handles {
		_ = h.h.Close()
	}
}
