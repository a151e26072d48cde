package pods

import (
	"fmt"
	"strings"
)

// Selector matches pods' labels: every requirement must hold.
type Selector []Requirement

// Requirement is one term of a label selector: key=value (or key==value), key!=value,
// key (the label exists) or !key (it does not).
type Requirement struct {
	Key, Value string
	// Exists: a term without a value; Not negates the term.
	Exists, Not bool
}

// SelectorFromSet requires each label of set, with its value.
func SelectorFromSet(set map[string]string) Selector {
	s := make(Selector, 0, len(set))
	for k, v := range set {
		s = append(s, Requirement{Key: k, Value: v})
	}
	return s
}

// ParseSelector reads the equality-based form of Kubernetes' label selectors
// ("app=ztunnel,tier!=test,canary,!legacy"); set-based terms (in, notin) are refused.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		var r Requirement
		switch {
		case strings.Contains(term, "!="):
			r.Key, r.Value, _ = strings.Cut(term, "!=")
			r.Not = true
		case strings.Contains(term, "="):
			r.Key, r.Value, _ = strings.Cut(term, "=")
			r.Value = strings.TrimPrefix(r.Value, "=")
		case strings.HasPrefix(term, "!"):
			r.Key, r.Exists, r.Not = term[1:], true, true
		default:
			r.Key, r.Exists = term, true
		}
		r.Key, r.Value = strings.TrimSpace(r.Key), strings.TrimSpace(r.Value)
		if !validLabel(r.Key, false) || !validLabel(r.Value, true) {
			return nil, fmt.Errorf("label selector %q: term %q is not key=value, key!=value, key or !key", s, term)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// validLabel allows the characters of label keys (with a prefix/) and values.
func validLabel(s string, empty bool) bool {
	if s == "" {
		return empty
	}
	for _, c := range s {
		if !labelRune(c) {
			return false
		}
	}
	return true
}

func labelRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)
}

// Matches says whether labels meet every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		held := ok && (r.Exists || v == r.Value)
		if held == r.Not {
			return false
		}
	}
	return true
}
