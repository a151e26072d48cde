// Package gctune sets the Go collector of intent-mapper's processes from their
// container: a GOGC of the component's choosing, and a soft memory limit at 90% of
// the container's limit, so that the collector works harder before the kernel kills.
package gctune

import (
	"os"
	"runtime/debug"
	"strconv"
)

// MemoryLimitEnv holds the container's memory limit in bytes; the manifests set it
// from the downward API (resourceFieldRef limits.memory).
const MemoryLimitEnv = "MEMORY_LIMIT"

// Settings are the GOGC and soft memory limit (bytes; 0: none) a process runs with:
// GOGC and GOMEMLIMIT in the environment win; else percent, and 90% of the
// container's limit.
func Settings(getenv func(string) string, percent int) (gogc int, limit int64) {
	if getenv("GOGC") == "" {
		gogc = percent
	}
	if getenv("GOMEMLIMIT") == "" {
		if bytes, err := strconv.ParseInt(getenv(MemoryLimitEnv), 10, 64); err == nil && bytes > 0 {
			limit = bytes / 10 * 9
		}
	}
	return gogc, limit
}

// Apply sets this process's collector from Settings.
func Apply(percent int) {
	gogc, limit := Settings(os.Getenv, percent)
	if gogc > 0 {
		debug.SetGCPercent(gogc)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
