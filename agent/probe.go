package agent

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/intent-mapper/intent-mapper/agent/heartbeat"
)

// beatTo writes the report loop's heartbeat to path; a failed write is said once,
// and the probe then fails on its own.
func beatTo(path string, stderr io.Writer) func(time.Time) {
	said := false
	return func(now time.Time) {
		if err := heartbeat.Write(path, now); err != nil && !said {
			said = true
			_, _ = fmt.Fprintln(stderr, "intent-mapper agent: writing the heartbeat:", err)
		}
	}
}

// probeCommand is the DaemonSet's exec probe: it opens no port, it reads the file the
// running agent's report loop beats into.
func probeCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("heartbeat-file", "", "the running agent's --heartbeat-file")
	maxAge := fs.Duration("max-age", time.Minute, "oldest heartbeat that still counts")
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if *path == "" {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent probe: --heartbeat-file is required")
		return 2
	}
	if err := heartbeat.Check(*path, time.Now(), *maxAge); err != nil {
		_, _ = fmt.Fprintln(stderr, "intent-mapper agent probe:", err)
		return 1
	}
	return 0
}
