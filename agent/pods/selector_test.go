package pods

import "testing"

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"app": "ztunnel", "gateway.istio.io/managed": "istio.io-mesh-controller", "tier": "edge"}
	for _, c := range []struct {
		sel   string
		match bool
	}{
		{"app=ztunnel", true},
		{"app==ztunnel", true},
		{"app=waypoint", false},
		{"gateway.istio.io/managed=istio.io-mesh-controller,tier=edge", true},
		{"app=ztunnel, tier!=edge", false},
		{"tier!=core", true},
		{"missing!=x", true},
		{"tier", true},
		{"!tier", false},
		{"!missing", true},
		{"", true},
	} {
		s, err := ParseSelector(c.sel)
		if err != nil {
			t.Fatalf("%q: %v", c.sel, err)
		}
		if got := s.Matches(labels); got != c.match {
			t.Errorf("%q matches %v: %v, want %v", c.sel, labels, got, c.match)
		}
	}
}

func TestParseSelectorRefusesWhatItCannotMatch(t *testing.T) {
	for _, sel := range []string{"app in (ztunnel)", "app notin (a,b)", "=ztunnel", "app=zt unnel", "!", "app>1"} {
		if _, err := ParseSelector(sel); err == nil {
			t.Errorf("%q parsed; set-based or malformed selectors must be refused", sel)
		}
	}
}

func TestSelectorFromSet(t *testing.T) {
	s := SelectorFromSet(map[string]string{"app": "ztunnel"})
	if !s.Matches(map[string]string{"app": "ztunnel", "x": "y"}) || s.Matches(map[string]string{"app": "other"}) || s.Matches(nil) {
		t.Error("a set selector must require each of its labels with its value")
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"app=ztunnel", "a!=b,!c,d", "x in (y)", "k==v"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		for _, r := range sel {
			if r.Key == "" {
				t.Fatalf("%q gave a requirement without a key", s)
			}
		}
		_ = sel.Matches(map[string]string{"app": "ztunnel"})
	})
}
