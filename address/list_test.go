package address

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseList(t *testing.T) {
	cases := []struct{ in, want, name string }{
		{`"Doe, John" <John@Example.COM>`, "john@example.com", "Doe, John"},
		{`a@x.org, B <b@X.org>`, "a@x.org b@x.org", ""},
		{`undisclosed-recipients:;`, "", ""},
		{`John Doe <john@example.com> (broken`, "john@example.com", "John Doe"},
		{`<john@example.com>, <jane@example.com>,`, "john@example.com jane@example.com", ""},
		{`john@example.com; jane@example.com`, "john@example.com jane@example.com", ""},
		{`=?utf-8?q?J=C3=B6rg?= <jorg@example.com>`, "jorg@example.com", "Jörg"},
		{`=?utf-8?q?J=C3=B6rg?= <jorg@example.com> (broken`, "jorg@example.com", "Jörg"},
		{`Bob <MAILTO:Bob@Example.test>`, "bob@example.test", "Bob"},
		{`nobody`, "", ""},
		{"  ", "", ""},
	}
	for _, c := range cases {
		l := ParseList(c.in, nil)
		var got []string
		for _, a := range l {
			got = append(got, a.Address)
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("ParseList(%q) = %q, want %q", c.in, g, c.want)
		}
		if c.name != "" && (len(l) == 0 || l[0].Name != c.name) {
			t.Errorf("ParseList(%q): name %v, want %q", c.in, l, c.name)
		}
	}
}

// FuzzParseList: a header value from outside never panics, and every
// address comes back normalised, valid UTF-8 in, valid UTF-8 out.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{`"Doe, John" <John@Example.COM>`, `a@x, <b@y> (c`, `=?utf-8?q?J=C3=B6rg?= <j@x>`, `<<<a@b>>>`, `x@y; z@w`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, a := range ParseList(v, nil) {
			if Normalize(a.Address) != a.Address {
				t.Fatalf("ParseList(%q): %q is not normalised", v, a.Address)
			}
			if utf8.ValidString(v) && !utf8.ValidString(a.Address) {
				t.Fatalf("ParseList(%q): %q is not UTF-8", v, a.Address)
			}
		}
	})
}
