// Package paths normalises HTTP paths for DiscoveredIntents: no query string, and
// everything from the first id-like segment on collapsed to a trailing "*", the only
// wildcard Istio's AuthorizationPolicy accepts in paths.
package paths

import "strings"

// Normalize returns the form of path that DiscoveredIntents records.
func Normalize(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	for start := 1; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if idLike(path[start:end]) {
			return path[:start] + "*"
		}
		start = end + 1
	}
	return path
}

// idLike tells segments that name one object (numbers, UUIDs, long hex) from those
// that name a route.
func idLike(seg string) bool {
	switch {
	case seg == "":
		return false
	case allOf(seg, isDigit):
		return true
	case isUUID(seg):
		return true
	case len(seg) >= 16 && allOf(seg, isHex):
		return true
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func allOf(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
