package report

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// The appenders below write an observation as encoding/json would (the same fields,
// names and omitempty rules; json_test.go holds them to it), without reflection:
// every report passes through them, and encoding/json's reflection and marshallers
// were most of a report's cost (BenchmarkEncode).

func appendDNS(b []byte, d *reportv1.DNSAnswer) []byte {
	b = append(b, `{"client":`...)
	b = appendAddr(b, d.Client)
	b = append(b, `,"name":`...)
	b = appendString(b, d.Name)
	b = append(b, `,"ips":`...)
	if d.IPs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, ip := range d.IPs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAddr(b, ip)
		}
		b = append(b, ']')
	}
	b = append(b, `,"ttl":`...)
	b = strconv.AppendUint(b, uint64(d.TTL), 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, d.Time)
	return append(b, '}')
}

func appendConnection(b []byte, c *reportv1.Connection) []byte {
	b = append(b, `{"client":`...)
	b = appendAddr(b, c.Client)
	b = append(b, `,"server":`...)
	b = appendAddr(b, c.Server)
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(c.Port), 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, c.Time)
	return append(b, '}')
}

func appendHTTP(b []byte, c *reportv1.HTTPCall) []byte {
	b = append(b, `{"reporter":`...)
	b = appendString(b, c.Reporter)
	b = append(b, `,"proxy":`...)
	b = appendAddr(b, c.Proxy)
	b = appendWorkloads(b, c.Source, c.Destination, c.DestinationService)
	if c.Method != "" {
		b = append(b, `,"method":`...)
		b = appendString(b, c.Method)
	}
	if c.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, c.Path)
	}
	if c.Port != 0 {
		b = append(b, `,"port":`...)
		b = strconv.AppendUint(b, uint64(c.Port), 10)
	}
	if c.MutualTLS {
		b = append(b, `,"mutualTLS":true`...)
	}
	return appendCountTime(b, c.Count, c.Time, c.History)
}

func appendMesh(b []byte, c *reportv1.MeshCall) []byte {
	b = append(b, `{"proxy":`...)
	b = appendAddr(b, c.Proxy)
	b = appendWorkloads(b, c.Source, c.Destination, c.DestinationService)
	return appendCountTime(b, c.Count, c.Time, c.History)
}

func appendWorkloads(b []byte, src, dst reportv1.Workload, service string) []byte {
	b = append(b, `,"source":`...)
	b = appendWorkload(b, src)
	b = append(b, `,"destination":`...)
	b = appendWorkload(b, dst)
	if service != "" {
		b = append(b, `,"destinationService":`...)
		b = appendString(b, service)
	}
	return b
}

func appendCountTime(b []byte, count uint64, t time.Time, history bool) []byte {
	b = append(b, `,"count":`...)
	b = strconv.AppendUint(b, count, 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, t)
	if history {
		b = append(b, `,"history":true`...)
	}
	return append(b, '}')
}

func appendWorkload(b []byte, w reportv1.Workload) []byte {
	b = append(b, `{"namespace":`...)
	b = appendString(b, w.Namespace)
	b = append(b, `,"name":`...)
	b = appendString(b, w.Name)
	return append(b, '}')
}

// appendAddr writes an address as its MarshalText does: "" for the zero Addr. An
// IPv6 zone is free text, so an address with one is quoted in full.
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Zone() != "" {
		return appendString(b, a.String())
	}
	b = append(b, '"')
	if a.IsValid() {
		b = a.AppendTo(b)
	}
	return append(b, '"')
}

// appendTime writes RFC 3339 with nanoseconds, as time.Time's MarshalJSON does for
// the years it accepts (0 to 9999): observation times are the agent's clock. Where
// MarshalJSON would fail the report, the manager refuses it instead.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as JSON: names and paths come from the network, so control
// characters are escaped and invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
