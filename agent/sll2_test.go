package agent

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// sll2 is the 20-byte LINKTYPE_LINUX_SLL2 header libpcap writes for `-i any`:
// protocol (big-endian), 2 reserved bytes, interface index, ARPHRD_ type, packet
// type, address length, and the address padded to 8 bytes.
func sll2(proto layers.EthernetType, ifindex uint32, arphrd uint16, pktType uint8, addr net.HardwareAddr) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], uint16(proto))
	binary.BigEndian.PutUint32(h[4:], ifindex)
	binary.BigEndian.PutUint16(h[8:], arphrd)
	h[10] = pktType
	h[11] = byte(len(addr))
	copy(h[12:], addr)
	return h
}

// dnsOverIP is a DNS response for name with one address, from IP on, no link layer.
func dnsOverIP(t *testing.T, server, client, name, ip string) []byte {
	t.Helper()
	var network gopacket.SerializableLayer
	udp := &layers.UDP{SrcPort: 53, DstPort: 40000}
	if net.ParseIP(client).To4() != nil {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(server).To4(), DstIP: net.ParseIP(client).To4()}
		_ = udp.SetNetworkLayerForChecksum(ip4)
		network = ip4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP(server), DstIP: net.ParseIP(client)}
		_ = udp.SetNetworkLayerForChecksum(ip6)
		network = ip6
	}
	typ := layers.DNSTypeA
	if net.ParseIP(ip).To4() == nil {
		typ = layers.DNSTypeAAAA
	}
	dns := &layers.DNS{ID: 9, QR: true, RD: true, RA: true,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN}},
		Answers:   []layers.DNSResourceRecord{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN, TTL: 30, IP: net.ParseIP(ip)}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, network, udp, dns); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A capture from `tcpdump -i any` (Linux cooked v2) on a node: answers leaving
// CoreDNS's veth, over IPv4 and IPv6, and one on loopback.
func TestDNSCommandReadsATcpdumpAnyCapture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "any.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeLinuxSLL2); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x8a, 0x1c, 0x2e, 0x00, 0x00, 0x07}
	const arphrdEther, arphrdLoopback = 1, 772
	const outgoing, host = 4, 0
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	frames := [][]byte{
		append(sll2(layers.EthernetTypeIPv4, 12, arphrdEther, outgoing, mac), dnsOverIP(t, "10.244.0.3", "10.244.1.7", "api.stripe.com", "203.0.113.10")...),
		append(sll2(layers.EthernetTypeIPv6, 12, arphrdEther, outgoing, mac), dnsOverIP(t, "fd00:10:244::3", "fd00:10:244::17", "db.shop.svc.cluster.local", "fd00:10:96::30")...),
		append(sll2(layers.EthernetTypeIPv4, 1, arphrdLoopback, host, nil), dnsOverIP(t, "127.0.0.53", "127.0.0.1", "local.example", "192.0.2.1")...),
		sll2(layers.EthernetTypeIPv4, 12, arphrdEther, outgoing, mac)[:12], // cut inside the header
	}
	for i, frame := range frames {
		ci := gopacket.CaptureInfo{Timestamp: at.Add(time.Duration(i) * time.Second), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.Close()

	var stdout, stderr bytes.Buffer
	if code := Main([]string{"dns", "--pcap", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		`"client":"10.244.1.7","name":"api.stripe.com","ips":["203.0.113.10"]`,
		`"client":"fd00:10:244::17","name":"db.shop.svc.cluster.local","ips":["fd00:10:96::30"]`,
		`"client":"127.0.0.1","name":"local.example","ips":["192.0.2.1"]`,
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("no answer %s in:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "3 answers, 1 malformed") {
		t.Errorf("summary %q", stderr.String())
	}
}
