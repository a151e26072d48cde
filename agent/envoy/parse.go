// Package envoy reads Istio's request counters from Envoy sidecars, waypoints and
// ztunnel, and turns their growth into observations with the time it was seen.
package envoy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The metric families read; every other family is skipped before parsing.
const (
	RequestsTotal       = "istio_requests_total"
	TCPConnectionsTotal = "istio_tcp_connections_opened_total"
)

// maxLine bounds one line of a metrics page; longer lines are skipped and counted.
const maxLine = 64 << 10

// MaxSeries bounds the series kept from one page; the rest are cut and counted.
const MaxSeries = 100_000

// ErrTooLarge is returned for a page over the scraper's read bound.
var ErrTooLarge = errors.New("metrics page too large")

// Skipped counts the lines of a page left out, by reason.
type Skipped struct {
	Overlong  int // longer than maxLine, in any family
	OverLimit int // of the families read, beyond the page's byte or series bound
}

// Labels are the labels of a series that say who called whom, how.
type Labels struct {
	Reporter             string
	SourceWorkload       string
	SourceNamespace      string
	DestinationWorkload  string
	DestinationNamespace string
	DestinationService   string
	Method               string
	Path                 string
	SecurityPolicy       string
}

// Series is the value of one family for one set of Labels, summed over the labels
// that do not matter here (response code, flags, …).
type Series struct {
	Family string
	Labels Labels
	Value  float64
}

// Parse streams a Prometheus text page and returns the series of the two families
// it needs. Lines of other families are dropped as they stream by; a line too long
// is skipped; of the families read, at most maxBytes and MaxSeries are kept, the rest
// cut. Only a malformed line of a family read, or a failed read, fails the page.
func Parse(page io.Reader, maxBytes int64) ([]Series, Skipped, error) {
	p := pageParser{sums: map[seriesKey]float64{}, maxBytes: maxBytes}
	if err := p.read(page); err != nil {
		return nil, p.skipped, err
	}
	out := make([]Series, 0, len(p.sums))
	for k, v := range p.sums {
		out = append(out, Series{Family: k.family, Labels: k.labels, Value: v})
	}
	return out, p.skipped, nil
}

type pageParser struct {
	kept     int64
	maxBytes int64
	sums     map[seriesKey]float64
	skipped  Skipped
}

// readers are the pages' line buffers, reused: a scrape round reads a page per proxy.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxLine) }}

func (p *pageParser) read(page io.Reader) error {
	r := readers.Get().(*bufio.Reader)
	r.Reset(page)
	defer func() {
		r.Reset(nil)
		readers.Put(r)
	}()
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.skipped.Overlong++
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			line = nil
		}
		if len(line) > 0 {
			if perr := p.line(line); perr != nil {
				return perr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// line adds one line of a wanted family to the sums; comments are not needed.
func (p *pageParser) line(line []byte) error {
	family, ok := wanted(line)
	if !ok || line[0] == '#' {
		return nil
	}
	if p.kept+int64(len(line)) > p.maxBytes {
		p.skipped.OverLimit++
		return nil
	}
	p.kept += int64(len(line))
	labels, v, err := parseSample(line[len(familyNames[family]):])
	if err != nil {
		return fmt.Errorf("parsing the metrics page: %s: %w", familyNames[family], err)
	}
	key := seriesKey{familyNames[family], labels}
	if _, ok := p.sums[key]; !ok && len(p.sums) >= MaxSeries {
		p.skipped.OverLimit++
		return nil
	}
	p.sums[key] += v
	return nil
}

var (
	familyNames    = [2]string{RequestsTotal, TCPConnectionsTotal}
	prefixRequests = []byte(RequestsTotal)
	prefixTCP      = []byte(TCPConnectionsTotal)
)

// wanted tells a line of a wanted family — a sample, or its # TYPE or # HELP — from
// the rest, by its prefix alone, and which family it is.
func wanted(line []byte) (int, bool) {
	if rest, ok := bytes.CutPrefix(line, []byte("# TYPE ")); ok {
		line = rest
	} else if rest, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
		line = rest
	}
	for i, p := range [][]byte{prefixRequests, prefixTCP} {
		if bytes.HasPrefix(line, p) && len(line) > len(p) {
			switch line[len(p)] {
			case '{', ' ', '\t':
				return i, true
			}
		}
	}
	return 0, false
}

// field is where Labels keeps a label's value, nil for labels it does not keep.
func (l *Labels) field(name []byte) *string {
	switch string(name) {
	case "reporter":
		return &l.Reporter
	case "source_workload":
		return &l.SourceWorkload
	case "source_workload_namespace":
		return &l.SourceNamespace
	case "destination_workload":
		return &l.DestinationWorkload
	case "destination_workload_namespace":
		return &l.DestinationNamespace
	case "destination_service":
		return &l.DestinationService
	case "request_method":
		return &l.Method
	case "request_path":
		return &l.Path
	case "connection_security_policy":
		return &l.SecurityPolicy
	}
	return nil
}
