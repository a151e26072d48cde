package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/endian"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/intent-mapper/intent-mapper/agent/packets"
)

// queue is one cooked AF_PACKET socket bound to one interface, read without blocking.
type queue struct {
	fd   int
	name string
	buf  []byte // one packet, cut at the capture length
	oob  []byte // the kernel's receive time
}

const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// rcvBuffer is asked for each socket's queue, where packets wait between batches. The
// kernel caps the request at net.core.rmem_max and doubles it: 416 KiB on a default
// kernel, room for about 500 small packets. It is charged only as packets queue.
const rcvBuffer = 1 << 20

// openQueue opens a socket on an interface with prog as its kernel filter. The
// filter is attached before the socket is bound, so no unfiltered packet is queued.
func openQueue(name string, ifindex int, prog []bpf.RawInstruction, snaplen int) (*queue, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	if err := setUpQueue(fd, ifindex, prog); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &queue{fd: fd, name: name, buf: make([]byte, snaplen), oob: make([]byte, unix.CmsgSpace(sizeofTimespec))}, nil
}

func setUpQueue(fd, ifindex int, prog []bpf.RawInstruction) error {
	if err := attach(fd, prog); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("asking for receive times: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuffer); err != nil {
		return fmt.Errorf("sizing the queue: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: endian.Htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("binding: %w", err)
	}
	return nil
}

// maxDrain bounds one drain, so that a socket fed faster than it is read still lets
// the reader look at the others, and at Close.
const maxDrain = 1024

// drain hands fn the packets queued, at most maxDrain, and returns how many it handed
// over; data is valid only during fn. An error other than an empty queue (the
// interface went away, say) ends the drain.
func (s *queue) drain(fn func(data []byte, at time.Time)) (int, error) {
	for n := 0; n < maxDrain; {
		size, oobn, errno := s.recv()
		switch errno {
		case 0:
			n++
			fn(s.buf[:min(size, len(s.buf))], receivedAt(s.oob[:oobn]))
		case unix.EINTR:
		case unix.EAGAIN:
			return n, nil
		default:
			return n, errno
		}
	}
	return maxDrain, nil
}

// recv reads one packet without waiting. MSG_TRUNC makes size the packet's whole
// length, which may exceed the buffer.
func (s *queue) recv() (size, oobn int, errno unix.Errno) {
	iov := unix.Iovec{Base: &s.buf[0]}
	iov.SetLen(len(s.buf))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &s.oob[0]}
	msg.SetControllen(len(s.oob))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, e
	}
	return int(r), int(msg.Controllen), 0
}

// receivedAt reads the kernel's receive time from a packet's control message; a
// packet without one (the kernel turns receive times on a moment after the first
// socket asks) is stamped now.
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
func (s *queue) drops() (uint64, error) {
	stats, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, err
	}
	return uint64(stats.Drops), nil
}

func (s *queue) close() error { return unix.Close(s.fd) }

// The reader waits for any socket in one epoll set, reads every packet queued on
// every socket, then pauses while the next ones queue: packets arriving meanwhile
// wake nobody. At a thousand packets a second, waking for each one cost more than
// reading it. The pause is short beside a queue's room (rcvBuffer), so only a burst
// of tens of thousands a second on one interface would overflow it, counted as dropped.
const (
	batchPause  = 20 * time.Millisecond
	rescanEvery = 15 * time.Second // new interfaces: a new pod's veth
)

// queues are a socket on each interface and the epoll set that watches them: how
// every interface is read where a socket bound to none would tap every namespace.
type queues struct {
	prog    []bpf.RawInstruction
	snaplen int
	rescan  time.Duration
	epoll   int
	wake    int // an eventfd in the set: close writes it to end a wait

	mu       sync.Mutex
	socks    map[int]*queue  // by descriptor
	names    map[string]bool // interfaces with a socket
	captured uint64
	dropped  uint64
	running  bool
	done     chan struct{}
	closed   bool
}

// openQueues opens a socket on every interface that is up, and on new ones as they
// come up while run runs.
func openQueues(prog []bpf.RawInstruction, snaplen int) (*queues, error) {
	c := &queues{prog: prog, snaplen: snaplen, rescan: rescanEvery,
		socks: map[int]*queue{}, names: map[string]bool{}, done: make(chan struct{})}
	if err := c.openSet(); err != nil {
		return nil, err
	}
	names, err := upInterfaces()
	if err != nil {
		c.close()
		return nil, err
	}
	for _, name := range names {
		if err := c.add(name); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (c *queues) openSet() error {
	var err error
	if c.epoll, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("making an epoll set: %w", err)
	}
	if c.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		_ = unix.Close(c.epoll)
		return fmt.Errorf("making an eventfd: %w", err)
	}
	if err := c.watch(c.wake); err != nil {
		_ = unix.Close(c.wake)
		_ = unix.Close(c.epoll)
		return err
	}
	return nil
}

func (c *queues) watch(fd int) error {
	return unix.EpollCtl(c.epoll, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// add opens a socket on the named interface and watches it.
func (c *queues) add(name string) error {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("capturing on %s: %w", name, err)
	}
	sock, err := openQueue(name, iface.Index, c.prog, c.snaplen)
	if err != nil {
		return fmt.Errorf("capturing on %s: %w", name, withCapability(err))
	}
	if err := c.watch(sock.fd); err != nil {
		_ = sock.close()
		return fmt.Errorf("capturing on %s: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.socks[sock.fd] = sock
	c.names[name] = true
	return nil
}

// remove closes a socket whose interface went away.
func (c *queues) remove(s *queue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, err := s.drops(); err == nil {
		c.dropped += d
	}
	delete(c.socks, s.fd)
	delete(c.names, s.name)
	_ = s.close() // closing takes it out of the epoll set
}

// openNew opens sockets on interfaces that came up since the last look.
func (c *queues) openNew() {
	names, err := upInterfaces()
	if err != nil {
		return
	}
	for _, name := range names {
		c.mu.Lock()
		known := c.names[name]
		c.mu.Unlock()
		if !known {
			_ = c.add(name) // it may be gone already; the next look tries again
		}
	}
}

// run reads every socket until ctx ends or the set is closed, handing each packet to
// fn from run's own goroutine. It closes the set when it returns.
func (c *queues) run(ctx context.Context, fn Handler) {
	c.mu.Lock()
	if c.closed || c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	defer c.release()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	dec := packets.NewDecoder(layers.LayerTypeIPv4) // raw IP, either version
	deliver := func(data []byte, at time.Time) { fn(data, at, dec) }
	events := make([]unix.EpollEvent, 64)
	next := time.Now().Add(c.rescan)
	for {
		timeout := int(max(time.Until(next), time.Millisecond) / time.Millisecond)
		n, err := unix.EpollWait(c.epoll, events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == c.wake {
				return
			}
			c.drain(int(ev.Fd), deliver)
		}
		if !time.Now().Before(next) {
			c.openNew()
			next = time.Now().Add(c.rescan)
		}
		if n > 0 {
			time.Sleep(batchPause) // after an error too: a socket that keeps failing must not spin
		}
	}
}

// drain reads one socket's queue; a socket whose interface went away is closed.
func (c *queues) drain(fd int, deliver func([]byte, time.Time)) {
	c.mu.Lock()
	s := c.socks[fd]
	c.mu.Unlock()
	if s == nil {
		return
	}
	n, err := s.drain(deliver)
	c.mu.Lock()
	c.captured += uint64(n)
	c.mu.Unlock()
	if err != nil {
		if _, gone := net.InterfaceByName(s.name); gone != nil {
			c.remove(s)
		}
	}
}

// stats returns the counts so far, the kernel's drops included.
func (c *queues) stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.socks {
		if d, err := s.drops(); err == nil {
			c.dropped += d // the kernel resets its counts on each read
		}
	}
	return Stats{Captured: c.captured, Dropped: c.dropped}
}

// close ends run, if it runs, and closes every socket.
func (c *queues) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if !c.running {
		c.mu.Unlock()
		c.release()
		return
	}
	var one [8]byte
	one[0] = 1 // an eventfd takes an 8-byte count; any nonzero one wakes the set
	_, _ = unix.Write(c.wake, one[:])
	c.mu.Unlock()
	<-c.done
}

// release closes every descriptor; run calls it when it ends, close when run never ran.
func (c *queues) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.socks {
		if d, err := s.drops(); err == nil {
			c.dropped += d
		}
		_ = s.close()
	}
	clear(c.socks)
	_ = unix.Close(c.wake)
	_ = unix.Close(c.epoll)
	c.closed = true
	if c.running {
		close(c.done)
	}
}
