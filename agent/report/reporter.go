// Package report batches the agent's observations and sends them to the manager:
// de-duplicated per interval, gzipped, over TLS with the manager's CA and the
// projected ServiceAccount token, kept in a bounded buffer while the manager is away.
package report

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intent-mapper/intent-mapper/agent/metrics"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

// Options configure a Reporter.
type Options struct {
	// URL of the manager's report endpoint.
	URL string
	// CAFile holds the CA bundle the manager publishes; reloaded when it changes.
	CAFile string
	// ServerName to verify the manager's certificate against, if not the URL's host.
	ServerName string
	// TokenFile holds the projected ServiceAccount token; read for every send.
	TokenFile string
	Node      string
	Interval  time.Duration
	// BufferSize bounds the observations kept while the manager is away.
	BufferSize int
	// MaxPerReport bounds one report, to stay under the manager's size limit.
	MaxPerReport int
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	// Beat, when set, is called as Run starts and on every interval, whether or not
	// the manager answers: it tells a probe that the report loop turns.
	Beat func(time.Time)
}

// DefaultOptions are the agent's defaults.
func DefaultOptions() Options {
	return Options{
		URL:          "https://intent-mapper-ingest.intent-mapper-system.svc:9443/v1/reports",
		CAFile:       "/var/run/intent-mapper/ca/ca.crt",
		TokenFile:    "/var/run/secrets/intent-mapper/token",
		Interval:     10 * time.Second,
		BufferSize:   50_000,
		MaxPerReport: 20_000,
		MinBackoff:   time.Second,
		MaxBackoff:   time.Minute,
	}
}

type connKey struct {
	client, server netip.Addr
	port           uint16
}

type dnsKey struct {
	client netip.Addr
	name   string
}

// Reporter collects observations and sends them. Add methods are safe for
// concurrent use; Run sends.
type Reporter struct {
	opts Options

	mu      sync.Mutex
	conns   map[connKey]time.Time
	dns     map[dnsKey]reportv1.DNSAnswer
	http    []reportv1.HTTPCall
	mesh    []reportv1.MeshCall
	outbox  []*reportv1.Report // closed batches, oldest first
	waiting int                // observations in outbox

	client    *http.Client
	caModTime time.Time
}

// New returns a Reporter.
func New(opts Options) *Reporter {
	return &Reporter{opts: opts, conns: map[connKey]time.Time{}, dns: map[dnsKey]reportv1.DNSAnswer{}}
}

// AddConnection records a connection; within a batch, one per client, server and
// port, with the newest time.
func (r *Reporter) AddConnection(c reportv1.Connection) {
	key := connKey{c.Client, c.Server, c.Port}
	r.mu.Lock()
	if t, ok := r.conns[key]; !ok || c.Time.After(t) {
		r.conns[key] = c.Time
	}
	r.mu.Unlock()
}

// AddDNS records a DNS answer; within a batch, the newest per client and name, with
// the addresses of all of them.
func (r *Reporter) AddDNS(a reportv1.DNSAnswer) {
	key := dnsKey{a.Client, a.Name}
	r.mu.Lock()
	if old, ok := r.dns[key]; ok {
		for _, ip := range old.IPs {
			if !slices.Contains(a.IPs, ip) && len(a.IPs) < reportv1.MaxAnswerIPs {
				a.IPs = append(a.IPs, ip)
			}
		}
		if old.Time.After(a.Time) {
			a.Time, a.TTL = old.Time, old.TTL
		}
	}
	r.dns[key] = a
	r.mu.Unlock()
}

// AddHTTP records HTTP calls counted by mesh proxies. It keeps calls itself when the
// batch has none yet, as after every report: a scrape round's calls are megabytes, and
// a copy of them doubled the agent's heap at each round. The caller must not change
// calls afterwards.
func (r *Reporter) AddHTTP(calls ...reportv1.HTTPCall) {
	r.mu.Lock()
	if len(r.http) == 0 {
		r.http = calls
	} else {
		r.http = append(r.http, calls...)
	}
	r.mu.Unlock()
}

// AddMesh records L4 calls counted by ztunnel.
func (r *Reporter) AddMesh(calls ...reportv1.MeshCall) {
	r.mu.Lock()
	r.mesh = append(r.mesh, calls...)
	r.mu.Unlock()
}

// Buffered is the number of observations not yet sent.
func (r *Reporter) Buffered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting + len(r.conns) + len(r.dns) + len(r.http) + len(r.mesh)
}

// Run closes a batch every interval and sends what waits, backing off while the
// manager fails, until ctx ends; then it tries once more to send what is left.
func (r *Reporter) Run(ctx context.Context) {
	tick := time.NewTicker(r.opts.Interval)
	defer tick.Stop()
	backoff := time.Duration(0)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	r.beat()
	for {
		select {
		case <-ctx.Done():
			r.closeBatch()
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = r.flush(final)
			cancel()
			return
		case <-tick.C:
			r.beat()
			r.closeBatch()
		case <-retry.C:
		}
		if r.flush(ctx) == nil {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, r.opts.MinBackoff), r.opts.MaxBackoff)
		jittered := backoff/2 + rand.N(backoff/2+1)
		retry.Reset(jittered)
	}
}

func (r *Reporter) beat() {
	if r.opts.Beat != nil {
		r.opts.Beat(time.Now())
	}
}

// closeBatch moves the current batch into the outbox, split to MaxPerReport, and
// keeps the outbox within BufferSize by dropping the oldest observations.
func (r *Reporter) closeBatch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &reportv1.Report{Version: reportv1.Version, Node: r.opts.Node, HTTP: r.http, Mesh: r.mesh}
	for k, t := range r.conns {
		rep.Connections = append(rep.Connections, reportv1.Connection{Client: k.client, Server: k.server, Port: k.port, Time: t})
	}
	for _, a := range r.dns {
		rep.DNS = append(rep.DNS, a)
	}
	clear(r.conns)
	clear(r.dns)
	r.http, r.mesh = nil, nil
	for _, part := range split(rep, r.opts.MaxPerReport) {
		r.outbox = append(r.outbox, part)
		r.waiting += part.Len()
	}
	for r.waiting > r.opts.BufferSize && len(r.outbox) > 0 {
		r.dropOldest(r.waiting - r.opts.BufferSize)
	}
	metrics.Buffered.Set(float64(r.waiting))
}

// dropOldest drops up to n observations from the oldest report.
func (r *Reporter) dropOldest(n int) {
	old := r.outbox[0]
	dropped := 0
	trim := func(l int) int {
		k := min(l, n-dropped)
		dropped += k
		return k
	}
	old.DNS = old.DNS[trim(len(old.DNS)):]
	old.Connections = old.Connections[trim(len(old.Connections)):]
	old.HTTP = old.HTTP[trim(len(old.HTTP)):]
	old.Mesh = old.Mesh[trim(len(old.Mesh)):]
	if old.Len() == 0 {
		r.outbox = r.outbox[1:]
	}
	r.waiting -= dropped
	metrics.Dropped.WithLabelValues("buffer-full").Add(float64(dropped))
}

// split cuts a report into parts of at most max observations.
func split(rep *reportv1.Report, limit int) []*reportv1.Report {
	var parts []*reportv1.Report
	for rep.Len() > 0 {
		part := &reportv1.Report{Version: rep.Version, Node: rep.Node}
		room := limit
		take := func(l int) int { k := min(l, room); room -= k; return k }
		n := take(len(rep.DNS))
		part.DNS, rep.DNS = rep.DNS[:n], rep.DNS[n:]
		n = take(len(rep.Connections))
		part.Connections, rep.Connections = rep.Connections[:n], rep.Connections[n:]
		n = take(len(rep.HTTP))
		part.HTTP, rep.HTTP = rep.HTTP[:n], rep.HTTP[n:]
		n = take(len(rep.Mesh))
		part.Mesh, rep.Mesh = rep.Mesh[:n], rep.Mesh[n:]
		parts = append(parts, part)
	}
	return parts
}

// errRetry marks a failure worth retrying: the manager away, overloaded, or a token
// or certificate not yet valid.
var (
	errRetry    = errors.New("will retry")
	errTooLarge = errors.New("report too large")
)

// flush sends the outbox in order, stopping at the first failure to retry.
func (r *Reporter) flush(ctx context.Context) error {
	for {
		r.mu.Lock()
		if len(r.outbox) == 0 {
			r.mu.Unlock()
			return nil
		}
		rep := r.outbox[0]
		r.mu.Unlock()

		err := r.send(ctx, rep)
		if errors.Is(err, errRetry) {
			metrics.Reports.WithLabelValues("failed").Inc()
			return err
		}
		if errors.Is(err, errTooLarge) && rep.Len() > 1 {
			r.split(rep)
			metrics.Reports.WithLabelValues("split").Inc()
			continue
		}
		r.mu.Lock()
		if len(r.outbox) > 0 && r.outbox[0] == rep {
			r.outbox = r.outbox[1:]
			r.waiting -= rep.Len()
		}
		metrics.Buffered.Set(float64(r.waiting))
		r.mu.Unlock()
		if err != nil {
			metrics.Reports.WithLabelValues("refused").Inc()
			metrics.Dropped.WithLabelValues("refused").Add(float64(rep.Len()))
			continue
		}
		metrics.Reports.WithLabelValues("sent").Inc()
	}
}

// split replaces a report the manager found too large (its bound is in bytes, the
// batch's in observations: long paths fill a batch sooner) with its two halves, sent
// in its place, so that nothing is dropped for its size alone.
func (r *Reporter) split(rep *reportv1.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.outbox) == 0 || r.outbox[0] != rep {
		return
	}
	first, second := halves(rep)
	r.outbox = append([]*reportv1.Report{first, second}, r.outbox[1:]...)
}

// halves cuts a report of two or more observations in two non-empty reports, in order.
func halves(rep *reportv1.Report) (*reportv1.Report, *reportv1.Report) {
	first := &reportv1.Report{Version: rep.Version, Node: rep.Node}
	second := &reportv1.Report{Version: rep.Version, Node: rep.Node}
	left := rep.Len() / 2
	first.DNS, second.DNS, left = cut(rep.DNS, left)
	first.Connections, second.Connections, left = cut(rep.Connections, left)
	first.HTTP, second.HTTP, left = cut(rep.HTTP, left)
	first.Mesh, second.Mesh, _ = cut(rep.Mesh, left)
	return first, second
}

func cut[T any](items []T, n int) (head, tail []T, left int) {
	k := min(n, len(items))
	return items[:k:k], items[k:], n - k
}

func (r *Reporter) send(ctx context.Context, rep *reportv1.Report) error {
	client, err := r.httpClient()
	if err != nil {
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	token, err := os.ReadFile(r.opts.TokenFile)
	if err != nil {
		return fmt.Errorf("%w: reading the token: %v", errRetry, err)
	}
	rep.AgentTime = time.Now()
	body, err := encode(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: manager answered %d: %s", errTooLarge, resp.StatusCode, msg)
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnsupportedMediaType:
		return fmt.Errorf("manager refused the report (%d): %s", resp.StatusCode, msg)
	default:
		return fmt.Errorf("%w: manager answered %d: %s", errRetry, resp.StatusCode, msg)
	}
}

// encode writes the report as gzipped JSON one observation at a time, so that a
// full report's JSON (8 MiB at 20,000 observations) is never held whole. The fastest
// level: reports cross the cluster network, and the agent's CPU is what it costs.
func encode(rep *reportv1.Report) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // a valid level: no error
	head, err := json.Marshal(reportv1.Report{Version: rep.Version, Node: rep.Node, AgentTime: rep.AgentTime})
	if err != nil {
		return nil, err
	}
	w := listWriter{out: zw, b: append(make([]byte, 0, 64<<10), head[:len(head)-1]...)} // without its closing brace: the lists follow
	writeList(&w, "dns", rep.DNS, appendDNS)
	writeList(&w, "connections", rep.Connections, appendConnection)
	writeList(&w, "http", rep.HTTP, appendHTTP)
	writeList(&w, "mesh", rep.Mesh, appendMesh)
	w.b = append(w.b, "}\n"...)
	w.flush()
	if err := errors.Join(w.err, zw.Close()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// listWriter gathers JSON in b and hands it to out in blocks.
type listWriter struct {
	out io.Writer
	b   []byte
	err error
}

func (w *listWriter) flush() {
	if w.err == nil {
		_, w.err = w.out.Write(w.b)
	}
	w.b = w.b[:0]
}

// writeList writes `,"name":[...]`, left out when empty as omitempty leaves it.
func writeList[T any](w *listWriter, name string, items []T, appendItem func([]byte, *T) []byte) {
	if len(items) == 0 {
		return
	}
	w.b = append(append(append(w.b, ',', '"'), name...), `":[`...)
	for i := range items {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendItem(w.b, &items[i])
		if len(w.b) >= 60<<10 {
			w.flush()
		}
	}
	w.b = append(w.b, ']')
}

// httpClient trusts the CA file as it is now, rebuilding the client when it changes.
func (r *Reporter) httpClient() (*http.Client, error) {
	info, err := os.Stat(r.opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	if r.client != nil && info.ModTime().Equal(r.caModTime) {
		return r.client, nil
	}
	pem, err := os.ReadFile(r.opts.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", r.opts.CAFile)
	}
	r.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: r.opts.ServerName, MinVersion: tls.VersionTLS12},
		MaxIdleConns:    2,
	}}
	r.caModTime = info.ModTime()
	return r.client, nil
}
