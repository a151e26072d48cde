package policy

import "strings"

// An observed path ending in "*" stands for every path under its prefix (ids collapsed).
// An ALLOW must cover all of them; a DENY matches if it may reach any.

func pathField(in, notIn []string, observed string, deny bool) bool {
	if len(in)+len(notIn) == 0 {
		return true
	}
	if observed == "" {
		return deny
	}
	if len(in) > 0 && !pathsMatch(in, observed, deny) {
		return false
	}
	// Outside notPaths: for an ALLOW, no path of the family may be in them; for a DENY,
	// one path of the family outside them suffices.
	return len(notIn) == 0 || !pathsMatch(notIn, observed, !deny)
}

// pathsMatch: some pattern covers (maybe=false) or may match (maybe=true) the observed path.
func pathsMatch(patterns []string, observed string, maybe bool) bool {
	for _, p := range patterns {
		if pathMatch(p, observed, maybe) {
			return true
		}
	}
	return false
}

func pathMatch(pattern, observed string, maybe bool) bool {
	prefix, family := strings.CutSuffix(observed, "*")
	if !family {
		return stringMatch(pattern, observed)
	}
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		q := pattern[:len(pattern)-1]
		return strings.HasPrefix(prefix, q) || (maybe && strings.HasPrefix(q, prefix))
	case strings.HasPrefix(pattern, "*"):
		return maybe
	}
	return maybe && strings.HasPrefix(pattern, prefix)
}
