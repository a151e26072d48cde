// Package capture reads packets from AF_PACKET sockets with a kernel BPF filter
// attached, on a list of interfaces or all of them, new ones included.
package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

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
// 4096 bytes.
const (
	SnaplenSYN = 256
	SnaplenDNS = 8192
)

// Every socket is cooked (SOCK_DGRAM): each packet starts at its IP header, whatever
// the interface's framing, so one filter and one decoder serve every interface.
// Two ways of reading them:
//   - rings (ring.go): a TPACKET_V3 ring per socket, which the kernel fills and
//     wakes the reader for once per block. Used for named interfaces, and for every
//     interface through one socket bound to none where the kernel keeps such a
//     socket's packets to its own network namespace (Linux 6.15 and later).
//   - queues (queue.go): a socket on each interface, read in batches from one epoll
//     set, new interfaces opened as they come up. Used for every interface on older
//     kernels, where a socket bound to no interface is handed every packet of every
//     pod's namespace, the pods' own loopback included.
type reader interface {
	run(ctx context.Context, fn Handler)
	stats() Stats
	close()
}

// Capture is a set of open sockets.
type Capture struct {
	r reader
}

// unboundStaysInNamespace says whether the kernel delivers a socket bound to no
// interface only its own network namespace's packets ("net: introduce per netns
// packet chains", Linux 6.15).
var unboundStaysInNamespace = kernelAtLeast(6, 15)

// Open opens a filtered socket on each named interface, or on every interface, those
// that come up later included, when names is empty. Failing to open one (no
// CAP_NET_RAW) is an error.
func Open(names []string, filter Filter, snaplen int) (*Capture, error) {
	prog, err := filter(packets.LinkRawIP)
	if err != nil {
		return nil, err
	}
	lo, err := loopbackIndex()
	if err != nil {
		return nil, err
	}
	prog = ipOnly(loopbackOnce(lo, prog))
	var r reader
	switch {
	case len(names) > 0:
		indexes := make([]int, len(names))
		for i, name := range names {
			iface, err := net.InterfaceByName(name)
			if err != nil {
				return nil, fmt.Errorf("capturing on %s: %w", name, err)
			}
			indexes[i] = iface.Index
		}
		r, err = openRings(indexes, names, prog, snaplen)
	case unboundStaysInNamespace:
		r, err = openRings([]int{0}, nil, prog, snaplen)
	default:
		r, err = openQueues(prog, snaplen)
	}
	if err != nil {
		return nil, err
	}
	return &Capture{r: r}, nil
}

// Run reads every socket until ctx ends, handing each packet to fn. It closes the
// capture when it returns.
func (c *Capture) Run(ctx context.Context, fn Handler) { c.r.run(ctx, fn) }

// Stats returns the counts so far, the kernel's drops included.
func (c *Capture) Stats() Stats { return c.r.stats() }

// Close closes every socket, ending Run.
func (c *Capture) Close() { c.r.close() }

// attach attaches prog to a socket as its kernel filter.
func attach(fd int, prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return errors.New("an empty kernel filter")
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	return nil
}

// kernelAtLeast says whether the running kernel's version is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return versionAtLeast(unix.ByteSliceToString(u.Release[:]), major, minor)
}

// versionAtLeast compares a kernel release ("6.18.44-fc", "5.15.0-91-generic") with
// major.minor; a release it cannot read is not.
func versionAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	digits := parts[1]
	if end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
		digits = digits[:end]
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
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

func withCapability(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: the agent needs CAP_NET_RAW", err)
	}
	return err
}

// ipOnly prepends to prog a test that drops what is not IPv4 or IPv6 (ARP, MPLS, …):
// a cooked socket hands over every protocol from its network header on, and the
// filter tells IP versions apart by the first byte alone.
func ipOnly(prog []bpf.RawInstruction) []bpf.RawInstruction {
	head, _ := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	})
	return append(head, prog...)
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
