package system

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// buildBinary builds intent-mapper from this tree.
func buildBinary(t *testing.T) string {
	return build(t, "intent-mapper", "../..")
}

// buildAgent builds intent-mapper-agent, the binary the agents' DaemonSet runs.
func buildAgent(t *testing.T) string {
	return build(t, "intent-mapper-agent", "../../cmd/intent-mapper-agent")
}

func build(t *testing.T, name, pkg string) string {
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// assets is where kube-apiserver and etcd are.
func assets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	dir, _ := filepath.Abs("../../bin/k8s")
	return dir
}

func crdDir() string {
	dir, _ := filepath.Abs("../../config/crd/bases")
	return dir
}

// processUsage is what /proc says of a process: resident memory now, at its peak and
// of it what is not mapped from files (the heap, stacks; MiB), and CPU time (user and
// system, seconds).
type processUsage struct {
	rssMiB, peakMiB, anonMiB, cpuSeconds float64
}

func readProcess(pid int) processUsage {
	var u processUsage
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		name, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch name {
		case "VmHWM":
			u.peakMiB = kb / 1024
		case "VmRSS":
			u.rssMiB = kb / 1024
		case "RssAnon":
			u.anonMiB = kb / 1024
		}
	}
	if fields := statFields(pid); len(fields) > 12 {
		user, _ := strconv.ParseFloat(fields[11], 64)
		sys, _ := strconv.ParseFloat(fields[12], 64)
		u.cpuSeconds = (user + sys) / 100 // clock ticks
	}
	return u
}

// statFields are /proc/PID/stat's fields after the command name (state first); none
// when the process is gone.
func statFields(pid int) []string {
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	end := strings.LastIndexByte(string(stat), ')')
	if end < 0 || end+2 > len(stat) {
		return nil
	}
	return strings.Fields(string(stat[end+2:]))
}

// parentOf reads a process's parent from /proc/PID/stat; 0 when it is gone.
func parentOf(pid int) int {
	fields := statFields(pid)
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// controlPlaneCPU reads the CPU seconds of the kube-apiserver and etcd this test
// started: its own child processes of those names.
func controlPlaneCPU() (apiServer, etcd float64) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if parentOf(pid) != os.Getpid() {
			continue
		}
		cpu := readProcess(pid).cpuSeconds
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		switch strings.TrimSpace(string(comm)) {
		case "kube-apiserver":
			apiServer += cpu
		case "etcd":
			etcd += cpu
		}
	}
	return apiServer, etcd
}

// readMetrics reads a Prometheus metrics page.
func readMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	fams, err := tryMetrics(url)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func tryMetrics(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// saveResults writes sections into bench/system.json, keeping the sections other
// runs wrote there.
func saveResults(t *testing.T, sections map[string]any) {
	const path = "../../bench/system.json"
	all := map[string]any{}
	if raw, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(raw, &all)
	}
	for k, v := range sections {
		all[k] = v
	}
	raw, _ := json.MarshalIndent(sections, "", "  ")
	t.Logf("results:\n%s", raw)
	raw, _ = json.MarshalIndent(all, "", "  ")
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Error(err)
	}
}
