package report

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// tricky is a string with every class appendString escapes: quotes, backslash,
// control characters, HTML characters, multi-byte UTF-8 and an invalid byte.
const tricky = "a<b>&\"q\"\\ \n\r\t\x01\x1f é 日本 \xff\xfe end"

// fill sets every field of v, recursively, to a value that is not its zero: a field
// added to an observation and not to its appender then fails the comparison.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Interface().(type) {
	case netip.Addr:
		v.Set(reflect.ValueOf(netip.MustParseAddr("fd00::1:2")))
		return
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 12, 3, 4, 123456789, time.FixedZone("plus-one", 3600))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(tricky)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1<<(v.Type().Bits()) - 1)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(t, s.Index(0))
		s.Index(1).Set(reflect.ValueOf(netip.MustParseAddr("10.1.2.3")).Convert(v.Type().Elem()))
		v.Set(s)
	default:
		t.Fatalf("fill: no value for a %s field: teach fill and the appenders", v.Type())
	}
}

// sameJSON fails unless got is valid JSON that decodes to what encoding/json's
// encoding of v decodes to.
func sameJSON(t *testing.T, got []byte, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("appended:\n%s\nencoding/json:\n%s", got, want)
	}
}

// checkAppender holds an appender to encoding/json, with every field set and with none.
func checkAppender[T any](t *testing.T, appendTo func([]byte, *T) []byte) {
	var full, empty T
	fill(t, reflect.ValueOf(&full).Elem())
	sameJSON(t, appendTo(nil, &full), full)
	sameJSON(t, appendTo(nil, &empty), empty)
}

func TestAppendersEncodeAsEncodingJSON(t *testing.T) {
	t.Run("dns", func(t *testing.T) { checkAppender(t, appendDNS) })
	t.Run("connection", func(t *testing.T) { checkAppender(t, appendConnection) })
	t.Run("http", func(t *testing.T) { checkAppender(t, appendHTTP) })
	t.Run("mesh", func(t *testing.T) { checkAppender(t, appendMesh) })
	t.Run("address with a zone", func(t *testing.T) {
		a := netip.MustParseAddr("fe80::1%eth\"0\\")
		sameJSON(t, appendAddr(nil, a), a)
	})
}

// TestEncodedReportDecodes reads a full report back as the manager does and finds
// every observation.
func TestEncodedReportDecodes(t *testing.T) {
	rep := fullReport()
	rep.DNS[7].Name = tricky
	rep.HTTP[3].Path = tricky
	out, err := encode(rep)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeGzip(t, out)
	if got.Len() != rep.Len() || got.DNS[7].Name != "a<b>&\"q\"\\ \n\r\t\x01\x1f é 日本 \ufffd\ufffd end" || got.HTTP[3].Path != got.DNS[7].Name {
		t.Fatalf("read back %d of %d observations; name %q", got.Len(), rep.Len(), got.DNS[7].Name)
	}
	if !got.Connections[9_999].Time.Equal(rep.Connections[9_999].Time) || got.Connections[9_999].Client != rep.Connections[9_999].Client {
		t.Fatalf("last connection read back as %+v", got.Connections[9_999])
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", tricky, "/api/v1/items?id=1&x=<y>", "\u2028\u2029", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sameJSON(t, appendString(nil, s), s)
	})
}

func decodeGzip(t *testing.T, body []byte) *reportv1.Report {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	dec.DisallowUnknownFields()
	rep := &reportv1.Report{}
	if err := dec.Decode(rep); err != nil {
		t.Fatal(err)
	}
	if err := rep.Validate(); err != nil {
		t.Fatal(err)
	}
	return rep
}
