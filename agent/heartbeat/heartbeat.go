// Package heartbeat lets the agent's main loop say it is alive in a local file, and
// an exec probe check it, so that probing needs no port on the node's addresses.
package heartbeat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Write records now in path, atomically, so a probe never reads half a beat.
func Write(path string, now time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".heartbeat-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(now.UTC().Format(time.RFC3339Nano) + "\n"); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Check fails unless path holds a beat no older than maxAge at now.
func Check(path string, now time.Time, maxAge time.Duration) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no heartbeat in %s yet: the agent has not started reporting", path)
	}
	if err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", path, err)
	}
	if age := now.Sub(at); age > maxAge {
		return fmt.Errorf("last heartbeat %s ago, more than %s: the agent's report loop is stuck", age.Round(time.Second), maxAge)
	}
	return nil
}
