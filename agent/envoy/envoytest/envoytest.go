// Package envoytest serves metrics pages as an Istio sidecar does, for tests: Envoy's
// stats, kept by the request's `filter` the way Envoy's admin keeps them, then the
// application's own metrics, which pilot-agent appends unfiltered.
package envoytest

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Tag is one of a stat's tags; Prometheus shows it as a label.
type Tag struct{ Name, Value string }

// Tags pairs names and values: Tags("reporter", "source", "request_path", "/a").
func Tags(namesAndValues ...string) []Tag {
	tags := make([]Tag, 0, len(namesAndValues)/2)
	for i := 0; i+1 < len(namesAndValues); i += 2 {
		tags = append(tags, Tag{Name: namesAndValues[i], Value: namesAndValues[i+1]})
	}
	return tags
}

// Bucket is a histogram's cumulative count up to Le.
type Bucket struct {
	Le    string
	Count uint64
}

// Stat is one of Envoy's stats as its admin holds it.
type Stat struct {
	// Name is the stat's full internal name, which the admin's filter matches;
	// Extracted, its name with the tags taken out, which Prometheus sees.
	Name, Extracted string
	Tags            []Tag
	Value           float64  // a counter's value, or a histogram's sum
	Buckets         []Bucket // a histogram's, the last one +Inf
}

// istioNamespace is the custom stat namespace of Istio's stats filter: Envoy shows
// its stats under their own names, the others with an envoy_ prefix.
const istioNamespace = "istiocustom."

// Istio is a stat of Istio's stats filter: it names a stat by its family and the
// tags after it, so the full name is "istiocustom.FAMILY.TAG1.VALUE1.TAG2…".
func Istio(family string, tags []Tag, value float64) Stat {
	var b strings.Builder
	b.WriteString(istioNamespace + family)
	for _, t := range tags {
		b.WriteString("." + t.Name + "." + t.Value)
	}
	return Stat{Name: b.String(), Extracted: istioNamespace + family, Tags: tags, Value: value}
}

// Cluster is one of Envoy's own stats of an upstream cluster: its full name holds the
// cluster's name, which tag extraction turns into envoy_cluster_name.
func Cluster(cluster, stat string, value float64) Stat {
	return Stat{Name: "cluster." + cluster + "." + stat, Extracted: "cluster." + stat,
		Tags: Tags("envoy_cluster_name", cluster), Value: value}
}

var notPrometheus = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// family is the name Prometheus sees.
func (s Stat) family() string {
	if rest, ok := strings.CutPrefix(s.Extracted, istioNamespace); ok {
		return notPrometheus.ReplaceAllString(rest, "_")
	}
	return "envoy_" + notPrometheus.ReplaceAllString(s.Extracted, "_")
}

func (s Stat) labels(extra string) string {
	parts := make([]string, 0, len(s.Tags)+1)
	for _, t := range s.Tags {
		parts = append(parts, notPrometheus.ReplaceAllString(t.Name, "_")+"="+strconv.Quote(t.Value))
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (s Stat) write(b *bytes.Buffer, family string) {
	if s.Buckets == nil {
		fmt.Fprintf(b, "%s%s %s\n", family, s.labels(""), num(s.Value))
		return
	}
	for _, k := range s.Buckets {
		fmt.Fprintf(b, "%s_bucket%s %d\n", family, s.labels("le="+strconv.Quote(k.Le)), k.Count)
	}
	fmt.Fprintf(b, "%s_sum%s %s\n%s_count%s %d\n", family, s.labels(""), num(s.Value), family, s.labels(""), s.Buckets[len(s.Buckets)-1].Count)
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Page is a set of stats that /stats/prometheus renders; it keeps its last rendering
// by filter, so a large page that does not change costs little to serve again.
type Page struct {
	stats  []Stat
	mu     sync.Mutex
	filter string
	out    []byte
}

// NewPage groups stats by the name Prometheus sees, as Envoy's admin does.
func NewPage(stats []Stat) *Page {
	sorted := append([]Stat(nil), stats...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Extracted < sorted[j].Extracted })
	return &Page{stats: sorted}
}

// Render writes the stats whose full name filter matches anywhere (RE2's partial
// match), all of them when filter is empty.
func (p *Page) Render(filter string) ([]byte, error) {
	re, err := regexp.Compile(filter)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out != nil && p.filter == filter {
		return p.out, nil
	}
	var b bytes.Buffer
	last := ""
	for _, s := range p.stats {
		if filter != "" && !re.MatchString(s.Name) {
			continue
		}
		family := s.family()
		if family != last {
			kind := "counter"
			if s.Buckets != nil {
				kind = "histogram"
			}
			fmt.Fprintf(&b, "# TYPE %s %s\n", family, kind)
			last = family
		}
		s.write(&b, family)
	}
	p.filter, p.out = filter, b.Bytes()
	return p.out, nil
}

// Sidecar serves /stats/prometheus as pilot-agent does on its merged metrics port.
type Sidecar struct {
	// Envoy gives Envoy's stats for each scrape, in pages.
	Envoy func() []*Page
	// App is the application's own metrics, appended whole.
	App []byte
	// IgnoreQuery serves as pilot-agent before Istio 1.24, which did not pass the
	// request's query on to Envoy.
	IgnoreQuery bool
}

// ServeHTTP answers with Envoy's stats, then the application's. Like pilot-agent,
// it leaves Envoy's part out when Envoy refuses the query (a filter that is not RE2).

func (s *Sidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	filter := ""
	if !s.IgnoreQuery {
		filter = r.URL.Query().Get("filter")
	}
	var envoy [][]byte
	for _, p := range s.Envoy() {
		b, err := p.Render(filter)
		if err != nil {
			envoy = nil
			break
		}
		envoy = append(envoy, b)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, b := range envoy {
		_, _ = w.Write(b)
	}
	_, _ = w.Write(s.App)
}
