package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// dnsFrame is an Ethernet frame carrying a DNS response for name with one address.
func dnsFrame(t *testing.T, client, name, ip string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 96, 0, 10), DstIP: net.ParseIP(client).To4()}
	udp := &layers.UDP{SrcPort: 53, DstPort: 40000}
	_ = udp.SetNetworkLayerForChecksum(ip4)
	dns := &layers.DNS{ID: 1, QR: true, RD: true, RA: true,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
		Answers:   []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 45, IP: net.ParseIP(ip)}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip4, udp, dns); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDNSCommandReadsAPcapFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, frame := range [][]byte{
		dnsFrame(t, "10.244.1.7", "API.Stripe.com", "203.0.113.10"),
		dnsFrame(t, "10.244.1.7", "x.example", "203.0.113.11")[:40], // cut short
		dnsFrame(t, "10.244.1.8", "db.shop.svc.cluster.local", "10.96.0.30"),
	} {
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
	var got []reportv1.DNSAnswer
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var a reportv1.DNSAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		got = append(got, a)
	}
	want := []reportv1.DNSAnswer{
		{Client: netip.MustParseAddr("10.244.1.7"), Name: "api.stripe.com", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.10")}, TTL: 45, Time: at},
		{Client: netip.MustParseAddr("10.244.1.8"), Name: "db.shop.svc.cluster.local", IPs: []netip.Addr{netip.MustParseAddr("10.96.0.30")}, TTL: 45, Time: at.Add(2 * time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Client != want[i].Client || got[i].Name != want[i].Name || got[i].IPs[0] != want[i].IPs[0] || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("answer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !strings.Contains(stderr.String(), "2 answers, 1 malformed") {
		t.Errorf("summary %q", stderr.String())
	}
}

func TestConnsCommandPrintsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.44.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer func() { _ = c.Close() }()
			time.Sleep(2 * time.Second)
		}
	}()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 44, 0, 2)}}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"conns", "--once"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"client":"127.44.0.2","server":"127.44.0.1"`) {
		t.Errorf("the test's own connection is missing:\n%s", stdout.String())
	}
}

// TestWithoutCapNetRawTheAgentSaysSoAndFails runs the agent as an unprivileged user,
// by running this test binary again as nobody.
func TestWithoutCapNetRawTheAgentSaysSoAndFails(t *testing.T) {
	if os.Getenv("AGENT_AS_NOBODY") == "1" {
		os.Exit(Main([]string{"--node", "n", "--interfaces", "lo", "--metrics-bind-address", "0"}, os.Stdout, os.Stderr))
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody; CI runs as root")
	}
	dir, err := os.MkdirTemp("", "agent-nobody") // the build directory is closed to nobody: run a copy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "agent.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestWithoutCapNetRawTheAgentSaysSoAndFails$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AGENT_AS_NOBODY=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v: %s", err, out)
	}
	if !strings.Contains(string(out), "the agent needs CAP_NET_RAW") {
		t.Errorf("the agent must say what it lacks: %s", out)
	}
}

func TestEnvoyCommandShowsHistoryThenGrowth(t *testing.T) {
	var scrapes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := 10 + scrapes.Add(1) // one more request between scrapes
		_, _ = fmt.Fprintf(w, "# TYPE istio_requests_total counter\nistio_requests_total{reporter=\"source\",source_workload=\"client\",source_workload_namespace=\"shop\",destination_workload=\"nginx\",destination_workload_namespace=\"shop\",request_method=\"GET\",request_path=\"/client-path\",response_code=\"200\"} %d\n", n)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"envoy", "--url", srv.URL + "/stats/prometheus", "--count", "2", "--interval", "10ms"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two lines, got %q", stdout.String())
	}
	var first, second reportv1.HTTPCall
	if json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
		t.Fatalf("not JSON: %q", lines)
	}
	if !first.History || first.Count != 11 || second.History || second.Count != 1 || second.Path != "/client-path" {
		t.Errorf("first %+v second %+v", first, second)
	}
}

// The profiles the agent serves with --pprof-bind-address are Go's, heap included.
func TestProfilesServeTheHeap(t *testing.T) {
	srv := httptest.NewServer(profiles())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("heap profile: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, err := http.Get(srv.URL + "/metrics"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the profiles' server answers /metrics with %d", resp.StatusCode)
		}
	}
}
