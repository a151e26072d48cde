package heartbeat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heartbeat")
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	if err := Check(path, now, time.Minute); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("no beat yet: got %v", err)
	}
	if err := Write(path, now); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, now.Add(30*time.Second), time.Minute); err != nil {
		t.Errorf("fresh beat refused: %v", err)
	}
	if err := Check(path, now.Add(2*time.Minute), time.Minute); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("stale beat: got %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, now, time.Minute); err == nil {
		t.Error("garbage accepted as a beat")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
