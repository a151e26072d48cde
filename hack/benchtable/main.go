// Command benchtable reads `go test -bench` output on standard input, pairs each
// benchmark X with its baselines from the same run (XBaseline, and XBaselineNAME for a
// further one), checks the targets, prints one table, and writes the raw output and a
// JSON summary into a directory.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// target is what a benchmark must reach: a speed-up over its baseline, a throughput,
// or no allocations. Zero fields are not checked.
type target struct {
	Ratio float64 `json:"ratio,omitempty"`
	// Over is the speed-up wanted over each named further baseline (XBaselineNAME).
	Over     map[string]float64 `json:"over,omitempty"`
	ObsPerS  float64            `json:"obsPerSecond,omitempty"`
	NoAllocs bool               `json:"noAllocs,omitempty"`
	MaxMiB   float64            `json:"maxMiB,omitempty"`
}

// targets from the project's issues; a benchmark not listed is reported, not judged.
var targets = map[string]target{
	"ResolveMerge": {ObsPerS: 200_000, Over: map[string]float64{"Indexer": 2}},
	"Ingest":       {ObsPerS: 100_000},
	"DecodeDNS":    {Ratio: 5, NoAllocs: true, Over: map[string]float64{"DecodingLayerParser": 1}},
	"ParseProc":    {Ratio: 3},
	"AgentMemory":  {MaxMiB: 50},
	"ScrapeParse":  {Ratio: 3},
	// a 20 MiB page: streamed, so the parse's peak heap stays small
	"ScrapeParseLarge": {Ratio: 3, MaxMiB: 32},
	"ParseLog":         {Ratio: 3},
}

type versus struct {
	Metrics map[string]float64 `json:"metrics"`
	Ratio   float64            `json:"ratio"`
}

type result struct {
	Name     string             `json:"name"`
	Package  string             `json:"package"`
	Metrics  map[string]float64 `json:"metrics"`
	Baseline map[string]float64 `json:"baseline,omitempty"`
	Ratio    float64            `json:"ratio,omitempty"`
	// Others are the further baselines, by name, with the ratio to each.
	Others map[string]versus `json:"others,omitempty"`
	Target *target           `json:"target,omitempty"`
	Met    *bool             `json:"met,omitempty"`
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func main() {
	dir := "bench"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	results := parse(string(raw))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raw.txt"), raw, 0o644); err != nil {
		fail(err)
	}
	summary, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), summary, 0o644); err != nil {
		fail(err)
	}
	print(results)
	fmt.Printf("\nraw output (benchstat-compatible): %s\nsummary: %s\n", filepath.Join(dir, "raw.txt"), filepath.Join(dir, "summary.json"))
}

func parse(out string) []result {
	byName := map[string]map[string]float64{}
	pkgOf := map[string]string{}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		text := sc.Text()
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg = p
		}
		m := line.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				metrics[fields[i+1]] = v
			}
		}
		byName[m[1]], pkgOf[m[1]] = metrics, pkg
	}
	var results []result
	for name, metrics := range byName {
		if strings.Contains(name, "Baseline") {
			continue
		}
		r := result{Name: name, Package: pkgOf[name], Metrics: metrics, Baseline: byName[name+"Baseline"]}
		r.Ratio = ratio(r.Baseline, metrics)
		for candidate, base := range byName {
			if label, ok := strings.CutPrefix(candidate, name+"Baseline"); ok && label != "" {
				if r.Others == nil {
					r.Others = map[string]versus{}
				}
				r.Others[label] = versus{Metrics: base, Ratio: ratio(base, metrics)}
			}
		}
		if t, ok := targets[name]; ok {
			r.Target = &t
			met := meets(r, t)
			r.Met = &met
		}
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	return results
}

// ratio is how many times faster ours is than the baseline; 0 without one.
func ratio(baseline, ours map[string]float64) float64 {
	if baseline == nil || ours["ns/op"] <= 0 {
		return 0
	}
	return baseline["ns/op"] / ours["ns/op"]
}

func meets(r result, t target) bool {
	for label, want := range t.Over {
		if o, ok := r.Others[label]; !ok || o.Ratio < want {
			return false
		}
	}
	return (t.Ratio == 0 || r.Ratio >= t.Ratio) &&
		(t.ObsPerS == 0 || r.Metrics["obs/s"] >= t.ObsPerS) &&
		(!t.NoAllocs || r.Metrics["allocs/op"] == 0) &&
		(t.MaxMiB == 0 || r.Metrics["MiB"] <= t.MaxMiB)
}

func print(results []result) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "benchmark\tours ns/op\tbaseline ns/op\tratio\tours allocs/op\tobs/s\tother\ttarget\tmet")
	for _, r := range results {
		base, ratio := "-", "-"
		if r.Baseline != nil {
			base, ratio = fmt.Sprintf("%.0f", r.Baseline["ns/op"]), fmt.Sprintf("%.2fx", r.Ratio)
		}
		obs := "-"
		if v, ok := r.Metrics["obs/s"]; ok {
			obs = fmt.Sprintf("%.0f", v)
		}
		tgt, met := "-", "-"
		if r.Target != nil {
			tgt, met = describe(*r.Target), map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		_, _ = fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\n", r.Name, r.Metrics["ns/op"], base, ratio, r.Metrics["allocs/op"], obs, other(r.Metrics), tgt, met)
		for _, label := range sortedKeys(r.Others) {
			o := r.Others[label]
			_, _ = fmt.Fprintf(w, "  vs %s\t\t%.0f\t%.2fx\t\t\t\t\t\n", label, o.Metrics["ns/op"], o.Ratio)
		}
	}
	_ = w.Flush()
}

// other shows a benchmark's own metrics (MiB, B/call, lines/s, …).
func other(metrics map[string]float64) string {
	var parts []string
	for unit, v := range metrics {
		switch unit {
		case "ns/op", "B/op", "allocs/op", "obs/s", "MB/s":
		default:
			parts = append(parts, fmt.Sprintf("%.4g %s", v, unit))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(t target) string {
	var parts []string
	for _, label := range sortedKeys(t.Over) {
		parts = append(parts, fmt.Sprintf(">=%gx %s", t.Over[label], label))
	}
	if t.Ratio > 0 {
		parts = append(parts, fmt.Sprintf(">=%gx", t.Ratio))
	}
	if t.ObsPerS > 0 {
		parts = append(parts, fmt.Sprintf(">=%.0f obs/s", t.ObsPerS))
	}
	if t.NoAllocs {
		parts = append(parts, "0 allocs")
	}
	if t.MaxMiB > 0 {
		parts = append(parts, fmt.Sprintf("<=%g MiB", t.MaxMiB))
	}
	return strings.Join(parts, ", ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}
