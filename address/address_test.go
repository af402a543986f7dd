package address

import "testing"

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bob@example.test", "bob@example.test"},
		{"  Bob@Example.TEST ", "bob@example.test"},
		{"MAILTO:bob@example.test", "bob@example.test"},
		{"mailto: bob@example.test", "bob@example.test"},
		{"<bob@example.test>", "bob@example.test"},
		{" < Bob@example.test > ", "bob@example.test"},
		{"<mailto:bob@example.test>", "bob@example.test"},
		// A client that wraps twice (STYLE "Known limits").
		{"<<bob@example.test>>", "bob@example.test"},
		{"<< <Bob@example.test> >>", "bob@example.test"},
		{"<mailto:<bob@example.test>>", "bob@example.test"},
		{"mailto:MAILTO:bob@example.test", "bob@example.test"},
		{"<>", ""},
		{"", ""},
		{"<", "<"},
	} {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDomain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bob@Example.test", "example.test"},
		{`"a@b"@c.test`, "c.test"},
		{"bob", ""},
	} {
		if got := Domain(c.in); got != c.want {
			t.Errorf("Domain(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBase(t *testing.T) {
	for _, c := range []struct{ in, delim, want string }{
		{"bob+x@example.test", "+", "bob@example.test"},
		{"bob+x+y@example.test", "+", "bob@example.test"},
		{"bob@example.test", "+", "bob@example.test"},
		{"bob-x@example.test", "+", "bob-x@example.test"},
		{"bob+x@example.test", "", "bob+x@example.test"},
		{"bob-x@example.test", "-+", "bob@example.test"},
		{"bob+x@example.test", "-+", "bob@example.test"},
		{"first-last+x@example.test", "-+", "first@example.test"}, // the first delimiter found, as Postfix
		{"first-last+x@example.test", "+", "first-last@example.test"},
		{"+x@example.test", "+", "+x@example.test"},
		{"bob+x", "+", "bob+x"},
		{"bob+x@", "+", "bob@"},
		{"a+b@c+d@example.test", "+", "a@example.test"},
	} {
		if got := Base(c.in, c.delim); got != c.want {
			t.Errorf("Base(%q, %q) = %q, want %q", c.in, c.delim, got, c.want)
		}
	}
}

func FuzzAddress(f *testing.F) {
	f.Add("<Bob+x@Example.test>", "+")
	f.Add("mailto:a-b+c@d", "-+")
	f.Fuzz(func(t *testing.T, s, delim string) {
		n := Normalize(s)
		if Normalize(n) != n {
			t.Fatalf("Normalize not idempotent: %q -> %q -> %q", s, n, Normalize(n))
		}
		b := Base(n, delim)
		if Base(b, delim) != b {
			t.Fatalf("Base not idempotent: %q -> %q -> %q", n, b, Base(b, delim))
		}
		if Domain(b) != Domain(n) {
			t.Fatalf("Base changed the domain: %q -> %q", n, b)
		}
		if len(b) > len(n) {
			t.Fatalf("Base grew: %q -> %q", n, b)
		}
	})
}

func TestNormalizeForms(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice@example.test", "alice@example.test"},
		{"Alice@Example.TEST", "alice@example.test"},
		{"mailto:alice@example.test", "alice@example.test"},
		{"MAILTO:Alice@example.test", "alice@example.test"},
		{"MaIlTo:alice@example.test", "alice@example.test"},
		{"  mailto: alice@example.test \r\n", "alice@example.test"},
		{"mailto:", ""},
		{"", ""},
		{"mailtoalice@example.test", "mailtoalice@example.test"},
		{"mailto:mailto:x@y", "x@y"},                   // nested too: Normalize(Normalize(a)) is Normalize(a)
		{"<Alice@example.test>", "alice@example.test"}, // an SMTP path
		{"ÄRGER@Example.test", "ärger@example.test"},
	}
	for _, c := range cases {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
