package filter

import (
	"testing"

	"imipd/itip"
)

func TestHeaderValue(t *testing.T) {
	r := func(user string, o itip.Outcome, reason itip.Reason) Result {
		return Result{User: user, Outcome: o, Method: "REQUEST", UID: "u1@x", Reason: reason}
	}
	cases := []struct {
		name string
		in   []Result
		want string
	}{
		{"none", nil, ""},
		{"one", []Result{r("a@x", itip.Applied, "")}, "applied; method=REQUEST; uid=u1@x"},
		{"reason", []Result{r("a@x", itip.NeedsAction, "invitation")}, "needs-action; method=REQUEST; uid=u1@x; reason=invitation"},
		{"all agree", []Result{r("a@x", itip.Applied, "updated"), r("b@x", itip.Applied, "updated")}, "applied; method=REQUEST; uid=u1@x; reason=updated"},
		{"disagree, no address (Bcc)", []Result{r("a@x", itip.Applied, ""), r("secret-bcc@x", itip.NeedsAction, "invitation")}, "mixed; method=REQUEST; uid=u1@x; outcomes=applied,needs-action"},
		{"uid injection", []Result{{Outcome: itip.Applied, Method: "REQUEST", UID: "a; reason=forged\r\nX: y"}}, "applied; method=REQUEST; uid=a__reason=forged__X:_y"},
	}
	for _, c := range cases {
		if got := HeaderValue(c.in); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
