package packets

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Link framings the kernel filters are built for.
const (
	LinkEthernet = iota // Ethernet, possibly with one 802.1Q tag
	LinkRawIP           // IP with no link header (tun, wireguard, the capture's cooked sockets)
)

// What a filter lets through to user space.
const (
	filterDNS = iota // DNS responses: UDP or TCP from port 53
	filterSYN        // TCP SYN without ACK
)

// DNSFilter is a kernel filter that passes only DNS responses (IPv4 and IPv6, UDP and
// TCP, source port 53), so that nothing else is copied to the agent.
func DNSFilter(link int) ([]bpf.RawInstruction, error) { return build(link, filterDNS) }

// SYNFilter passes only TCP SYNs without ACK: connections being opened.
func SYNFilter(link int) ([]bpf.RawInstruction, error) { return build(link, filterSYN) }

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	protoTCP  = 6
	protoUDP  = 17
	accept    = "accept"
	reject    = "reject"
)

func build(link, what int) ([]bpf.RawInstruction, error) {
	p := &program{labels: map[string]int{}}
	switch link {
	case LinkEthernet:
		p.add(bpf.LoadAbsolute{Off: 12, Size: 2})
		p.jumpEq(etherVLAN, "vlan", "untagged")
		p.label("vlan")
		p.add(bpf.LoadAbsolute{Off: 16, Size: 2})
		p.byEtherType(18, what, "v")
		p.label("untagged")
		p.add(bpf.LoadAbsolute{Off: 12, Size: 2})
		p.byEtherType(14, what, "u")
	case LinkRawIP:
		p.add(bpf.LoadAbsolute{Off: 0, Size: 1})
		p.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		p.jumpEq(4, "r4", "r6?")
		p.label("r4")
		p.ipv4(0, what)
		p.label("r6?")
		p.jumpEq(6, "r6", reject)
		p.label("r6")
		p.ipv6(0, what)
	default:
		return nil, fmt.Errorf("unknown link type %d", link)
	}
	p.label(accept)
	p.add(bpf.RetConstant{Val: 262144})
	p.label(reject)
	p.add(bpf.RetConstant{Val: 0})
	return p.assemble()
}

// byEtherType dispatches on the ethertype in A to IPv4 or IPv6 at offset l3.
func (p *program) byEtherType(l3 uint32, what int, prefix string) {
	p.jumpEq(etherIPv4, prefix+"4", prefix+"6?")
	p.label(prefix + "4")
	p.ipv4(l3, what)
	p.label(prefix + "6?")
	p.jumpEq(etherIPv6, prefix+"6", reject)
	p.label(prefix + "6")
	p.ipv6(l3, what)
}

func (p *program) ipv4(l3 uint32, what int) {
	p.add(bpf.LoadAbsolute{Off: l3 + 9, Size: 1})
	p.protocol(what, fmt.Sprint("f4-", l3))
	p.label(fmt.Sprint("f4-", l3))
	p.add(bpf.LoadAbsolute{Off: l3 + 6, Size: 2}) // fragments after the first have no ports
	p.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 0, SkipFalse: 0})
	p.patch(reject, fmt.Sprint("x4-", l3))
	p.label(fmt.Sprint("x4-", l3))
	p.add(bpf.LoadMemShift{Off: l3})
	p.transport(l3, what)
}

func (p *program) ipv6(l3 uint32, what int) {
	p.add(bpf.LoadAbsolute{Off: l3 + 6, Size: 1})
	p.protocol(what, fmt.Sprint("p6-", l3))
	p.label(fmt.Sprint("p6-", l3))
	p.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
	p.transport(l3, what)
}

// protocol checks the IP protocol in A, going on at next when it fits.
func (p *program) protocol(what int, next string) {
	if what == filterSYN {
		p.jumpEq(protoTCP, next, reject)
		return
	}
	p.jumpEq(protoUDP, next, "tcp?"+next)
	p.label("tcp?" + next)
	p.jumpEq(protoTCP, next, reject)
}

// transport checks the transport header at X+l3.
func (p *program) transport(l3 uint32, what int) {
	if what == filterDNS {
		p.add(bpf.LoadIndirect{Off: l3, Size: 2})
		p.jumpEq(53, accept, reject)
		return
	}
	p.add(bpf.LoadIndirect{Off: l3 + 13, Size: 1})
	p.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12})
	p.jumpEq(0x02, accept, reject)
}

// program assembles BPF with named forward jumps.
type program struct {
	ins    []bpf.Instruction
	labels map[string]int
	jumps  []jump
}

type jump struct {
	at          int
	true, false string
}

func (p *program) add(i bpf.Instruction) { p.ins = append(p.ins, i) }

func (p *program) label(name string) { p.labels[name] = len(p.ins) }

// jumpEq jumps to ifEq when A equals val, else to ifNot.
func (p *program) jumpEq(val uint32, ifEq, ifNot string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins), true: ifEq, false: ifNot})
	p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val})
}

// patch sets the targets of the conditional jump just added.
func (p *program) patch(ifTrue, ifFalse string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins) - 1, true: ifTrue, false: ifFalse})
}

func (p *program) assemble() ([]bpf.RawInstruction, error) {
	for _, j := range p.jumps {
		ins := p.ins[j.at].(bpf.JumpIf)
		skip := func(label string) (uint8, error) {
			target, ok := p.labels[label]
			if !ok || target <= j.at || target-j.at-1 > 255 {
				return 0, fmt.Errorf("bad jump from %d to %q", j.at, label)
			}
			return uint8(target - j.at - 1), nil
		}
		var err error
		if ins.SkipTrue, err = skip(j.true); err != nil {
			return nil, err
		}
		if ins.SkipFalse, err = skip(j.false); err != nil {
			return nil, err
		}
		p.ins[j.at] = ins
	}
	return bpf.Assemble(p.ins)
}
