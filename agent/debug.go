package agent

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/intent-mapper/intent-mapper/agent/conns"
	"github.com/intent-mapper/intent-mapper/agent/envoy"
	"github.com/intent-mapper/intent-mapper/agent/packets"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// dnsCommand decodes a capture file and prints one DNS answer per line.
func dnsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent dns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("pcap", "", "capture file to decode (pcap format)")
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if *path == "" {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent dns: --pcap FILE is required")
		return 2
	}
	n, malformed, err := decodePcap(*path, json.NewEncoder(stdout))
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent dns:", err)
		return 1
	}
	_, _ = fmt.Fprintf(stderr, "%d answers, %d malformed packets skipped\n", n, malformed)
	return 0
}

func decodePcap(path string, out *json.Encoder) (answers, malformed int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s is not a pcap file: %w", path, err)
	}
	first, err := firstLayer(r.LinkType())
	if err != nil {
		return 0, 0, err
	}
	dec := packets.NewDecoder(first)
	for {
		data, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return answers, malformed, nil
		}
		if err != nil {
			return answers, malformed, fmt.Errorf("reading %s: %w", path, err)
		}
		switch dec.Decode(data, ci.Timestamp) {
		case packets.DNSAnswer:
			answers++
			if err := out.Encode(toDNS(&dec.Answer)); err != nil {
				return answers, malformed, err
			}
		case packets.Malformed:
			malformed++
		}
	}
}

func firstLayer(link layers.LinkType) (gopacket.LayerType, error) {
	switch link {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, nil
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, nil
	case layers.LinkTypeLinuxSLL2: // what `tcpdump -i any` writes
		return layers.LayerTypeLinuxSLL2, nil
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return layers.LayerTypeIPv4, nil
	}
	return 0, fmt.Errorf("link type %v is not one the agent decodes (Ethernet, Linux cooked v1 and v2, raw IP)", link)
}

// connsCommand scans /proc once and prints the connections it finds.
func connsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent conns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("proc-root", "/proc", "the proc file system to scan")
	once := fs.Bool("once", false, "scan once and exit (the only mode)")
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if !*once {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent conns: only --once is supported; the agent itself scans repeatedly")
		return 2
	}
	out := json.NewEncoder(stdout)
	now := time.Now()
	st, err := (&conns.Scanner{Root: *root}).Scan(func(c conns.Conn) {
		_ = out.Encode(reportv1.Connection{Client: c.Client, Server: c.Server, Port: c.Port, Time: now})
	})
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent conns:", err)
		return 1
	}
	_, _ = fmt.Fprintf(stderr, "%d namespaces, %d sockets, %d malformed lines, in %v\n", st.Namespaces, st.Sockets, st.Malformed, st.Duration)
	return 0
}

// envoyCommand scrapes one proxy count times and prints its observations: the first
// scrape as history, then what grew.
func envoyCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent envoy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	raw := fs.String("url", "", "the proxy's metrics URL, e.g. http://10.244.1.7:15020/stats/prometheus")
	interval := fs.Duration("interval", 15*time.Second, "time between scrapes")
	count := fs.Int("count", 2, "number of scrapes")
	ztunnel := fs.Bool("ztunnel", false, "the proxy is ztunnel (L4 counters)")
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	u, err := url.Parse(*raw)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent envoy: --url must be http://HOST:PORT/PATH")
		return 2
	}
	port, _ := strconv.Atoi(u.Port())
	s := envoy.DefaultScraper()
	s.Port, s.FallbackPort, s.Path = port, 0, u.Path
	ip, _ := netip.ParseAddr(u.Hostname())
	p := &envoy.Poller{Scraper: s, Tracker: &envoy.Tracker{MaxSeries: 50_000}, Concurrency: 1,
		Host: func(envoy.Proxy) string { return u.Hostname() }}
	out := json.NewEncoder(stdout)
	for i := range *count {
		if i > 0 {
			time.Sleep(*interval)
		}
		calls, mesh, failed := p.Poll(context.Background(), []envoy.Proxy{{IP: ip, Ztunnel: *ztunnel}}, time.Now())
		for _, err := range failed {
			_, _ = fmt.Fprintln(stderr, "intent-mapper agent envoy:", err)
			return 1
		}
		for _, c := range calls {
			_ = out.Encode(c)
		}
		for _, m := range mesh {
			_ = out.Encode(m)
		}
	}
	return 0
}
