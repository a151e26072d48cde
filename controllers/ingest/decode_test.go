package ingest

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"testing"
)

const seedReport = `{"version":"intentmapper.io/report/v1","node":"n","agentTime":"2026-11-23T10:00:00Z",` +
	`"connections":[{"client":"10.0.0.1","server":"10.0.0.2","port":80,"time":"2026-11-23T10:00:00Z"}],` +
	`"dns":[{"client":"10.0.0.1","name":"a.example","ips":["203.0.113.1"],"ttl":30,"time":"2026-11-23T10:00:00Z"}]}`

func decodeBody(body []byte, gz bool) int {
	s := &Server{MaxBody: 1 << 16}
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	_, status, _, _ := s.decode(httptest.NewRecorder(), req)
	return status
}

func TestDecode(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(seedReport))
	_ = zw.Close()
	for name, tc := range map[string]struct {
		body []byte
		gz   bool
		want int
	}{
		"plain":         {[]byte(seedReport), false, 0},
		"gzip":          {zipped.Bytes(), true, 0},
		"trailing data": {[]byte(seedReport + `{}`), false, http.StatusBadRequest},
		"unknown field": {[]byte(`{"version":"intentmapper.io/report/v1","node":"n","extra":1}`), false, http.StatusBadRequest},
		"old version":   {[]byte(`{"version":"v0","node":"n"}`), false, http.StatusBadRequest},
		"bad address":   {[]byte(`{"version":"intentmapper.io/report/v1","node":"n","connections":[{"client":"999.1.1.1"}]}`), false, http.StatusBadRequest},
		"not gzip":      {[]byte(seedReport), true, http.StatusBadRequest},
		"too large":     {bytes.Repeat([]byte(" "), 1<<17), false, http.StatusRequestEntityTooLarge},
	} {
		if got := decodeBody(tc.body, tc.gz); got != tc.want {
			t.Errorf("%s: status %d, want %d", name, got, tc.want)
		}
	}
}

// FuzzDecode: whatever arrives, the decoder answers with a report or a 4xx, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(seedReport), false)
	f.Add([]byte(`{"version":"intentmapper.io/report/v1","node":"n","http":[{"reporter":"source","count":1}]}`), false)
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		switch status := decodeBody(body, gz); status {
		case 0, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", status)
		}
	})
}
