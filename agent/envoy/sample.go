package envoy

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

var errSample = errors.New("malformed sample")

// parseSample reads a sample line of Prometheus' text format after its metric name:
// optional {labels}, the value, an optional timestamp. Only the labels Labels holds
// are copied out; parsing the two families read by hand, rather than through expfmt,
// keeps a busy sidecar's scrape from allocating per label.
func parseSample(rest []byte) (Labels, float64, error) {
	var l Labels
	rest = bytes.TrimRight(rest, "\r\n")
	if len(rest) > 0 && rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], &l); err != nil {
			return l, 0, err
		}
	}
	value, stamp, ok := valueAndStamp(rest)
	if !ok {
		return l, 0, errSample
	}
	v, err := strconv.ParseFloat(string(value), 64)
	if err != nil {
		return l, 0, errSample
	}
	if stamp != nil {
		if _, err := strconv.ParseInt(string(stamp), 10, 64); err != nil {
			return l, 0, errSample
		}
	}
	return l, v, nil
}

// valueAndStamp splits "value [timestamp]", separated by blanks, without allocating.
// The text format separates them with spaces or tabs only (bytes.Fields took any space).
func valueAndStamp(in []byte) (value, stamp []byte, ok bool) {
	in = bytes.Trim(in, " \t")
	i := bytes.IndexAny(in, " \t")
	if i < 0 {
		return in, nil, len(in) > 0
	}
	value, stamp = in[:i], bytes.TrimLeft(in[i:], " \t")
	return value, stamp, !bytes.ContainsAny(stamp, " \t")
}

// interner hands out one string for equal label values across pages and scrapes:
// a proxy's page repeats the same workloads and paths every time, and a tracked
// series keeps its strings, so after the first scrape they cost nothing.
type interner struct {
	mu    sync.Mutex
	m     map[string]string
	bytes int
}

// The table's bounds: values that never repeat (ids in paths) start it over, and a
// value longer than a name or a normalised path is not kept at all.
const (
	maxInterned      = 20_000
	maxInternedBytes = 2 << 20
	maxInternedValue = 256
)

var labelValues = interner{m: map[string]string{}}

func (in *interner) get(b []byte) string {
	if len(b) > maxInternedValue {
		return string(b)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if len(in.m) >= maxInterned || in.bytes+len(b) > maxInternedBytes {
		clear(in.m)
		in.bytes = 0
	}
	s := string(b)
	in.m[s] = s
	in.bytes += len(s)
	return s
}

// parseLabels reads name="value" pairs up to the closing brace and returns what
// follows it.
func parseLabels(in []byte, l *Labels) ([]byte, error) {
	var kept [9]*string // the fields set so far: a kept label given twice is an error
	nkept := 0
	for {
		in = bytes.TrimLeft(in, " \t")
		if len(in) > 0 && in[0] == '}' {
			return in[1:], nil
		}
		n := labelNameEnd(in)
		if n == 0 {
			return nil, errSample
		}
		name := in[:n]
		in = bytes.TrimLeft(in[n:], " \t")
		if len(in) < 2 || in[0] != '=' {
			return nil, errSample
		}
		in = bytes.TrimLeft(in[1:], " \t")
		if len(in) == 0 || in[0] != '"' {
			return nil, errSample
		}
		value, after, err := quoted(in[1:])
		if err != nil {
			return nil, err
		}
		if f := l.field(name); f != nil {
			if slices.Contains(kept[:nkept], f) {
				return nil, errSample
			}
			kept[nkept], *f = f, labelValues.get(value)
			nkept++
		}
		in = bytes.TrimLeft(after, " \t")
		switch {
		case len(in) > 0 && in[0] == ',':
			in = in[1:]
		case len(in) > 0 && in[0] == '}':
		default:
			return nil, errSample
		}
	}
}

// labelNameEnd is the length of the label name that starts in.
func labelNameEnd(in []byte) int {
	for i, c := range in {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(in)
}

// quoted reads a label value up to its closing quote, undoing the format's escapes
// (\\, \" and \n), and returns it with what follows the quote.
func quoted(in []byte) ([]byte, []byte, error) {
	end := bytes.IndexByte(in, '"')
	if end < 0 {
		return nil, nil, errSample
	}
	if bytes.IndexByte(in[:end], '\\') < 0 { // the common case: nothing escaped, no copy
		if !utf8.Valid(in[:end]) {
			return nil, nil, errSample
		}
		return in[:end], in[end+1:], nil
	}
	var b bytes.Buffer
	for i := 0; i < len(in); i++ {
		switch c := in[i]; c {
		case '"':
			if !utf8.Valid(b.Bytes()) {
				return nil, nil, errSample
			}
			return b.Bytes(), in[i+1:], nil
		case '\\':
			if i+1 == len(in) {
				return nil, nil, errSample
			}
			i++
			switch in[i] {
			case '\\', '"':
				b.WriteByte(in[i])
			case 'n':
				b.WriteByte('\n')
			default:
				return nil, nil, errSample
			}
		default:
			b.WriteByte(c)
		}
	}
	return nil, nil, errSample
}
