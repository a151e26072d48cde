package agent

import "testing"

func TestGCSettings(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		percent int
		limit   int64
		what    string
	}{
		{map[string]string{}, 50, 0, "outside a container: GOGC 50, no limit"},
		{map[string]string{"MEMORY_LIMIT": "201326592"}, 50, 181193931, "192Mi limit: 90% of it"},
		{map[string]string{"MEMORY_LIMIT": "201326592", "GOMEMLIMIT": "100MiB", "GOGC": "100"}, 0, 0, "the Go runtime's own variables win"},
		{map[string]string{"MEMORY_LIMIT": "192Mi"}, 50, 0, "not bytes: no limit rather than a wrong one"},
	} {
		percent, limit := gcSettings(func(k string) string { return c.env[k] })
		if percent != c.percent || limit != c.limit {
			t.Errorf("%s: GOGC %d, limit %d; want %d, %d", c.what, percent, limit, c.percent, c.limit)
		}
	}
}
