package envoy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intent-mapper/intent-mapper/agent/metrics"
	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
)

var (
	scrapeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_scrape_errors_total",
		Help: "Failed scrapes of mesh proxies, by reason: unreachable, status, too-large, malformed.",
	}, []string{"reason"})
	pagesScraped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_agent_scraped_pages_total",
		Help: "Proxies' metrics pages fetched and parsed whole.",
	})
	bytesScraped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intentmapper_agent_scraped_bytes_total",
		Help: "Bytes of proxies' metrics pages read, whole or in part.",
	})
	linesSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intentmapper_agent_scrape_lines_skipped_total",
		Help: "Lines of proxies' metrics pages left out, by reason: overlong (over 64 KiB, any family), over-limit (of the families read, beyond the kept bytes or series).",
	}, []string{"reason"})
)

func init() { metrics.Registry.MustRegister(scrapeErrors, pagesScraped, bytesScraped, linesSkipped) }

// acceptText asks for Prometheus' text format, which the parser reads, over
// OpenMetrics.
const acceptText = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// Scraper fetches proxies' metrics pages.
type Scraper struct {
	Client *http.Client
	// Port and Path of the merged Istio metrics (15020, /stats/prometheus); Envoy's
	// own port (15090, same path) is tried when Port does not answer.
	Port         int
	FallbackPort int
	Path         string
	Timeout      time.Duration
	// MaxBytes bounds what is kept of the families read; the page itself streams,
	// up to MaxPage bytes.
	MaxBytes int64
	MaxPage  int64
	// Filter asks Envoy pages for EnvoyFilter's families alone.
	Filter bool
}

// DefaultScraper scrapes as the agent does by default.
func DefaultScraper() *Scraper {
	return &Scraper{Client: &http.Client{}, Port: 15020, FallbackPort: 15090, Path: "/stats/prometheus", Timeout: 5 * time.Second,
		MaxBytes: 16 << 20, MaxPage: 256 << 20, Filter: true}
}

// EnvoyFilter is the regular expression Envoy's admin keeps stats by when asked with
// ?filter=: RE2, matched anywhere in a stat's internal name, which holds the family's
// name in every form Istio writes ("istiocustom.istio_requests_total.reporter.…", or
// the Wasm plugin's "…;.;istio_requests_total"). Of an Envoy page only request counts
// are read: connection counts come from ztunnel.
var EnvoyFilter = regexp.QuoteMeta(RequestsTotal)

// envoyQuery asks for EnvoyFilter's stats alone.
var envoyQuery = url.Values{"filter": {EnvoyFilter}}.Encode()

// Scrape fetches and parses one proxy's page, whole.
func (s *Scraper) Scrape(ctx context.Context, host string) ([]Series, error) {
	return s.scrape(ctx, host, "")
}

// ScrapeEnvoy fetches and parses an Envoy proxy's page (a sidecar's or a waypoint's),
// asking for EnvoyFilter's families alone when s.Filter is on. A proxy that ignores
// the query sends the whole page, which parses the same.
func (s *Scraper) ScrapeEnvoy(ctx context.Context, host string) ([]Series, error) {
	if !s.Filter {
		return s.scrape(ctx, host, "")
	}
	return s.scrape(ctx, host, envoyQuery)
}

func (s *Scraper) scrape(ctx context.Context, host, query string) ([]Series, error) {
	series, err := s.scrapePort(ctx, host, s.Port, query)
	var unreachable *net.OpError
	if errors.As(err, &unreachable) && s.FallbackPort != 0 {
		series, err = s.scrapePort(ctx, host, s.FallbackPort, query)
	}
	if err != nil {
		scrapeErrors.WithLabelValues(reason(err)).Inc()
	} else {
		pagesScraped.Inc()
	}
	return series, err
}

func (s *Scraper) scrapePort(ctx context.Context, host string, port int, query string) ([]Series, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	u := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + s.Path
	switch {
	case query == "":
	case strings.Contains(s.Path, "filter="): // --scrape-path names its own filter: it wins
	case strings.Contains(s.Path, "?"): // --scrape-path may hold a query of its own
		u += "&" + query
	default:
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptText)
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{code: resp.StatusCode}
	}
	body := &io.LimitedReader{R: resp.Body, N: s.MaxPage + 1}
	series, skipped, err := Parse(body, s.MaxBytes)
	bytesScraped.Add(float64(s.MaxPage + 1 - body.N))
	if body.N <= 0 {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.MaxPage)
	}
	if skipped.Overlong > 0 {
		linesSkipped.WithLabelValues("overlong").Add(float64(skipped.Overlong))
	}
	if skipped.OverLimit > 0 {
		linesSkipped.WithLabelValues("over-limit").Add(float64(skipped.OverLimit))
	}
	return series, err
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("metrics page answered %d", e.code) }

func reason(err error) string {
	var status *statusError
	var op *net.OpError
	switch {
	case errors.Is(err, ErrTooLarge):
		return "too-large"
	case errors.As(err, &status):
		return "status"
	case errors.As(err, &op), errors.Is(err, context.DeadlineExceeded):
		return "unreachable"
	}
	return "malformed"
}

// Proxy is one mesh proxy to scrape.
type Proxy struct {
	IP netip.Addr
	// Ztunnel proxies count L4 connections; the others, HTTP requests.
	Ztunnel bool
}

// Poller scrapes a set of proxies concurrently, within a bound, and reports growth.
type Poller struct {
	Scraper     *Scraper
	Tracker     *Tracker
	Concurrency int
	Host        func(Proxy) string // how to reach a proxy; its IP by default

	lastCalls int // calls found by the last poll: the next one's starting capacity
}

// Poll scrapes every proxy once and returns what grew, as report observations.
// A proxy that fails costs only its own observations.
func (p *Poller) Poll(ctx context.Context, proxies []Proxy, now time.Time) ([]reportv1.HTTPCall, []reportv1.MeshCall, map[netip.Addr]error) {
	var (
		mu     sync.Mutex
		calls  = make([]reportv1.HTTPCall, 0, p.lastCalls)
		mesh   []reportv1.MeshCall
		failed = map[netip.Addr]error{}
		wg     sync.WaitGroup
		slots  = make(chan struct{}, max(p.Concurrency, 1))
	)
	for _, proxy := range proxies {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			host := proxy.IP.String()
			if p.Host != nil {
				host = p.Host(proxy)
			}
			scrape := p.Scraper.ScrapeEnvoy
			if proxy.Ztunnel {
				scrape = p.Scraper.Scrape // ztunnel is not Envoy: it has no filter
			}
			series, err := scrape(ctx, host)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[proxy.IP] = err
				return
			}
			for _, d := range p.Tracker.Observe(proxy.IP.String(), series, now) {
				if c, ok := httpCall(proxy, d); ok {
					calls = append(calls, c)
				} else if m, ok := meshCall(proxy, d); ok {
					mesh = append(mesh, m)
				}
			}
		}()
	}
	wg.Wait()
	p.lastCalls = len(calls)
	return calls, mesh, failed
}

// known drops Istio's placeholder for a value it does not have.
func known(v string) string {
	if v == "unknown" {
		return ""
	}
	return v
}

func httpCall(proxy Proxy, d Delta) (reportv1.HTTPCall, bool) {
	l := d.Labels
	if d.Family != RequestsTotal || proxy.Ztunnel || known(l.SourceWorkload) == "" || known(l.DestinationWorkload) == "" {
		return reportv1.HTTPCall{}, false
	}
	return reportv1.HTTPCall{
		Reporter: l.Reporter, Proxy: proxy.IP,
		Source:             reportv1.Workload{Namespace: l.SourceNamespace, Name: l.SourceWorkload},
		Destination:        reportv1.Workload{Namespace: l.DestinationNamespace, Name: l.DestinationWorkload},
		DestinationService: known(l.DestinationService),
		Method:             strings.ToUpper(known(l.Method)), Path: known(l.Path),
		MutualTLS: l.SecurityPolicy == "mutual_tls",
		Count:     d.Count, Time: d.Time, History: d.History,
	}, true
}

func meshCall(proxy Proxy, d Delta) (reportv1.MeshCall, bool) {
	l := d.Labels
	if d.Family != TCPConnectionsTotal || !proxy.Ztunnel || known(l.SourceWorkload) == "" || known(l.DestinationWorkload) == "" {
		return reportv1.MeshCall{}, false
	}
	return reportv1.MeshCall{
		Proxy:              proxy.IP,
		Source:             reportv1.Workload{Namespace: l.SourceNamespace, Name: l.SourceWorkload},
		Destination:        reportv1.Workload{Namespace: l.DestinationNamespace, Name: l.DestinationWorkload},
		DestinationService: known(l.DestinationService),
		Count:              d.Count, Time: d.Time, History: d.History,
	}, true
}
