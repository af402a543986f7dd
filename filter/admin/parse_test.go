package admin

import (
	"slices"
	"testing"
)

// TestFlagsAnywhere: a command's flags may follow its arguments, and the
// access check on imipctl's side (positional) reads the same arguments as
// the command (parse), so the file the daemon asks for is the one granted.
func TestFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-user", "bob@example.test", "in.eml"}, []string{"in.eml"}},
		{[]string{"in.eml", "-user", "bob@example.test"}, []string{"in.eml"}},
		{[]string{"in.eml", "-json", "-user=bob@example.test"}, []string{"in.eml"}},
		{[]string{"-json", "--", "-odd.eml"}, []string{"-odd.eml"}},
		{[]string{"a", "-json", "b", "--", "-c"}, []string{"a", "b", "-c"}},
		{[]string{"-"}, []string{"-"}},
	} {
		fs := newFlags("process")
		fs.Bool("json", false, "")
		fs.String("user", "", "")
		got, err := parse(fs, tc.args, 0, -1, "")
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parse %q = %q, %v; want %q", tc.args, got, err, tc.want)
		}
		if pos := positional(tc.args, []string{"user"}); !slices.Equal(pos, tc.want) {
			t.Errorf("positional %q = %q; want %q", tc.args, pos, tc.want)
		}
	}
	if a := accessFor([]string{"check", "in.eml", "-user", "bob@example.test"}); a.file != "in.eml" {
		t.Errorf("check FILE -user U grants %q", a.file)
	}
	if u := CommandUsage([]string{"outbox", "retry"}); u != "  outbox retry ID\n" {
		t.Errorf("CommandUsage(outbox retry) = %q", u)
	}
}
