package filter

import "testing"

func TestAuthResults(t *testing.T) {
	trusted := []string{"mx.example.test"}
	cases := []struct {
		name    string
		headers []string
		require bool
		want    string
	}{
		{"no header", nil, false, ""},
		{"dmarc fail", []string{"mx.example.test; dmarc=fail (p=reject) header.from=remote.test"}, false, "dmarc-fail"},
		{"untrusted dmarc fail ignored", []string{"evil.test; dmarc=fail header.from=remote.test"}, false, ""},
		{"forged pass from outside ignored, ours fails", []string{"mx.example.test; dmarc=fail header.from=remote.test", "evil.test; dmarc=pass"}, false, "dmarc-fail"},
		{"required, pass aligned", []string{"mx.example.test 1; spf=pass smtp.mailfrom=remote.test; dkim=pass header.d=remote.test; dmarc=pass header.from=remote.test"}, true, ""},
		{"required, pass other domain", []string{"mx.example.test; dmarc=pass header.from=other.test"}, true, "unauthenticated"},
		{"required, dkim only aligned", []string{"mx.example.test; dkim=pass (good) header.d=remote.test"}, true, ""},
		{"required, nothing", []string{"mx.example.test; none"}, true, "unauthenticated"},
		{"comments and case", []string{"MX.Example.Test (v1); DMARC=FAIL (policy) header.from=remote.test"}, false, "dmarc-fail"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := parseAuthResults(c.headers, trusted).fail("remote.test", c.require)
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func FuzzAuthResults(f *testing.F) {
	f.Add("mx.example.test; dmarc=fail (p=reject) header.from=remote.test")
	f.Add("mx.example.test (((; dkim=pass header.d=x")
	f.Fuzz(func(t *testing.T, h string) {
		v := parseAuthResults([]string{h}, []string{"mx.example.test"})
		_ = v.fail("remote.test", true)
	})
}
