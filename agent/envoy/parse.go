// Package envoy reads Istio's request counters from Envoy sidecars, waypoints and
// ztunnel, and turns their growth into observations with the time it was seen.
package envoy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metric families read; every other family is skipped before parsing.
const (
	RequestsTotal       = "istio_requests_total"
	TCPConnectionsTotal = "istio_tcp_connections_opened_total"
)

// maxLine bounds one line of a metrics page.
const maxLine = 64 << 10

// ErrTooLarge is returned for a page over the size limit.
var ErrTooLarge = errors.New("metrics page too large")

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

// Parse reads a Prometheus text page of at most maxBytes and returns the series of
// the two families it needs. Lines of other families are dropped as they stream by.
func Parse(page io.Reader, maxBytes int64) ([]Series, error) {
	kept, err := keepFamilies(page, maxBytes)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(kept))
	if err != nil {
		return nil, fmt.Errorf("parsing the metrics page: %w", err)
	}
	sums := map[struct {
		family string
		labels Labels
	}]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			key := struct {
				family string
				labels Labels
			}{name, labelsOf(m)}
			sums[key] += value(m)
		}
	}
	out := make([]Series, 0, len(sums))
	for k, v := range sums {
		out = append(out, Series{Family: k.family, Labels: k.labels, Value: v})
	}
	return out, nil
}

// keepFamilies copies the lines that belong to the wanted families.
func keepFamilies(page io.Reader, maxBytes int64) ([]byte, error) {
	limited := &io.LimitedReader{R: page, N: maxBytes + 1}
	r := bufio.NewReaderSize(limited, maxLine)
	var kept bytes.Buffer
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("a metrics line is longer than %d bytes", maxLine)
		}
		if limited.N <= 0 {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
		}
		if wanted(line) {
			kept.Write(line)
			if len(line) > 0 && line[len(line)-1] != '\n' {
				kept.WriteByte('\n')
			}
		}
		if err == io.EOF {
			return kept.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var (
	prefixRequests = []byte(RequestsTotal)
	prefixTCP      = []byte(TCPConnectionsTotal)
)

// wanted tells a line of a wanted family — a sample, or its # TYPE or # HELP — from
// the rest, by its prefix alone.
func wanted(line []byte) bool {
	if rest, ok := bytes.CutPrefix(line, []byte("# TYPE ")); ok {
		line = rest
	} else if rest, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
		line = rest
	}
	for _, p := range [][]byte{prefixRequests, prefixTCP} {
		if bytes.HasPrefix(line, p) && len(line) > len(p) {
			switch line[len(p)] {
			case '{', ' ', '\t':
				return true
			}
		}
	}
	return false
}

func labelsOf(m *dto.Metric) Labels {
	var l Labels
	for _, lp := range m.GetLabel() {
		v := lp.GetValue()
		switch lp.GetName() {
		case "reporter":
			l.Reporter = v
		case "source_workload":
			l.SourceWorkload = v
		case "source_workload_namespace":
			l.SourceNamespace = v
		case "destination_workload":
			l.DestinationWorkload = v
		case "destination_workload_namespace":
			l.DestinationNamespace = v
		case "destination_service":
			l.DestinationService = v
		case "request_method":
			l.Method = v
		case "request_path":
			l.Path = v
		case "connection_security_policy":
			l.SecurityPolicy = v
		}
	}
	return l
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
