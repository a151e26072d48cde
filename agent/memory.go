package agent

import (
	"os"
	"runtime/debug"
	"strconv"
)

// MemoryLimitEnv holds the container's memory limit in bytes; the DaemonSet sets it
// from the downward API (resourceFieldRef limits.memory).
const MemoryLimitEnv = "MEMORY_LIMIT"

// gcPercent is the agent's GOGC. Its heap churns through every sidecar page scraped,
// and at the default (100) the heap it keeps grows to twice what is live: 50 brought
// a busy node's steady RSS from 71 to 51 MiB at no measurable CPU (docs/performance.md).
const gcPercent = 50

// gcSettings are the GOGC and soft memory limit (bytes; 0: none) the agent runs with:
// GOGC and GOMEMLIMIT in the environment win; else gcPercent, and 90% of the
// container's limit, so the collector works harder before the kernel kills.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	if getenv("GOGC") == "" {
		percent = gcPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if bytes, err := strconv.ParseInt(getenv(MemoryLimitEnv), 10, 64); err == nil && bytes > 0 {
			limit = bytes / 10 * 9
		}
	}
	return percent, limit
}

// tuneGC applies gcSettings to this process.
func tuneGC() {
	percent, limit := gcSettings(os.Getenv)
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
