package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

const benchToken = "agent-token"

// benchBody is a gzipped report of 1,000 connections, as an agent sends it.
func benchBody(b *testing.B) []byte {
	rep := &reportv1.Report{Version: reportv1.Version, Node: "node-a", AgentTime: time.Now()}
	for i := range 1000 {
		rep.Connections = append(rep.Connections, reportv1.Connection{
			Client: netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i)}), Server: netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}),
			Port: 8080, Time: time.Now(),
		})
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

// postAll sends the body from parallel clients over TLS and reports observations/s.
func postAll(b *testing.B, handler http.Handler) {
	srv := httptest.NewTLSServer(handler)
	defer srv.Close()
	body := benchBody(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := srv.Client()
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+Path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+benchToken)
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "obs/s")
}

// BenchmarkIngest: the real handler (cached authentication, bounded gzip, strict
// decode, validation) over TLS.
func BenchmarkIngest(b *testing.B) {
	var got atomic.Int64
	auth := &Authenticator{MaxEntries: 16, Now: time.Now}
	auth.remember(sha256.Sum256([]byte(benchToken)), verdict{caller: Caller{Node: "node-a"}, status: http.StatusOK, expires: time.Now().Add(time.Hour)}, time.Now())
	s := &Server{Auth: auth, MaxBody: DefaultMaxBody, Sink: func(r *reportv1.Report) { got.Add(int64(r.Len())) }}
	s.SetLeading(true)
	postAll(b, s)
}

// BenchmarkIngestBaseline: a handler that reads and decodes the body with no limit,
// no authentication and no validation, over the same TLS.
func BenchmarkIngestBaseline(b *testing.B) {
	postAll(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep := &reportv1.Report{}
		if err := json.NewDecoder(zr).Decode(rep); err != nil {
			http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
}
