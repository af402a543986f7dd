package filter

import (
	"sort"
	"strings"
)

// HeaderValue renders the outcome header (SPEC "The header"):
//
//	<outcome>; method=<METHOD>; uid=<UID>[; reason=<word>]
//
// for results that all agree (one recipient, or LMTP's per-recipient copy).
// When recipients of one copy got different outcomes (milter mode, one copy
// for all, Bcc-safe), no address and no single recipient's outcome is shown:
//
//	mixed; method=<METHOD>; uid=<UID>; outcomes=<o1>,<o2>...
//
// with the distinct outcomes sorted. Several iTIP objects in one message are
// joined with ", " in message order. Values are reduced to header-safe
// characters. An empty slice gives "".
func HeaderValue(results []Result) string {
	type key struct{ method, uid string }
	var order []key
	groups := map[key][]Result{}
	for _, r := range results {
		k := key{r.Method, r.UID}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var parts []string
	for _, k := range order {
		g := groups[k]
		outs := map[string]bool{}
		reasons := map[string]bool{}
		for _, r := range g {
			outs[string(r.Outcome)] = true
			reasons[r.Reason] = true
		}
		var b strings.Builder
		if len(outs) == 1 {
			b.WriteString(string(g[0].Outcome))
		} else {
			b.WriteString("mixed")
		}
		if k.method != "" {
			b.WriteString("; method=" + safe(k.method))
		}
		if k.uid != "" {
			b.WriteString("; uid=" + safe(k.uid))
		}
		if len(outs) > 1 {
			var l []string
			for o := range outs {
				l = append(l, o)
			}
			sort.Strings(l)
			b.WriteString("; outcomes=" + strings.Join(l, ","))
		} else if len(reasons) == 1 && g[0].Reason != "" {
			b.WriteString("; reason=" + safe(g[0].Reason))
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, ", ")
}

// safe keeps printable ASCII other than ';' ',' and quotes, so a UID cannot
// inject header syntax; anything else becomes '_'. Long values are cut.
func safe(s string) string {
	const max = 200
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\' {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

// FoldValue folds a long header value between iTIP objects, before the
// space of ", " (unfolding gives the value back unchanged), once a line
// passes 78 characters (RFC 5322 §2.1.1). prefix is the length of "Name: "
// on the first line; nl is the line end the transport wants (CRLF in a
// message, LF through the milter protocol).
func FoldValue(prefix int, value, nl string) string {
	var b strings.Builder
	line := prefix
	for i, p := range strings.Split(value, ", ") {
		if i > 0 {
			b.WriteString(",")
			line++
			if line+1+len(p) > 78 {
				b.WriteString(nl)
				line = 0
			}
			b.WriteString(" ")
			line++
		}
		b.WriteString(p)
		line += len(p)
	}
	return b.String()
}
