package paths

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/client-path", "/client-path"},
		{"/client-path?user=1&x=2", "/client-path"},
		{"/a/b#frag", "/a/b"},
		{"/users/12345", "/users/*"},
		{"/users/12345/orders/9", "/users/*"},
		{"/orders/3f2b1c9e-8d4a-4b7e-9c1d-2a3b4c5d6e7f/items", "/orders/*"},
		{"/blobs/0123456789abcdef0123", "/blobs/*"},
		{"/blobs/abcdef", "/blobs/abcdef"}, // short hex is a word
		{"/v1/api", "/v1/api"},
		{"/", "/"},
		{"", "/"},
		{"relative", "/relative"},
		{"/trailing/", "/trailing/"},
		{"/42", "/*"},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/a/1", "/x?y", "", "//", "/0000000000000000/z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Normalize(in)
		if out == "" || out[0] != '/' {
			t.Fatalf("Normalize(%q) = %q: not a path", in, out)
		}
		if Normalize(out) != out {
			t.Fatalf("Normalize is not idempotent on %q: %q then %q", in, out, Normalize(out))
		}
	})
}
