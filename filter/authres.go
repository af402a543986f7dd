package filter

import (
	"strings"
)

// authVerdict is what trusted Authentication-Results headers (RFC 8601) say
// about a message's author domain.
type authVerdict struct {
	seen      bool   // a header from a trusted authserv-id was found
	dmarc     string // result of the dmarc method ("pass", "fail", "none", ...), "" if absent
	dkimPass  []string
	spfPass   string // smtp.mailfrom domain of an spf=pass
	headerDom string // header.from of the dmarc result
}

// parseAuthResults reads the Authentication-Results header values in order
// and keeps only those whose authserv-id is trusted (RFC 8601 §5: headers from
// other ids must be ignored; the MTA is expected to remove forged copies of
// its own). It never fails: unparseable parts are skipped.
func parseAuthResults(values []string, trusted []string) authVerdict {
	var v authVerdict
	for _, raw := range values {
		id, rest := splitAuthServID(raw)
		if id == "" || !containsFold(trusted, id) {
			continue
		}
		v.seen = true
		for _, res := range strings.Split(rest, ";") {
			method, result, props := parseResinfo(res)
			switch method {
			case "dmarc":
				v.dmarc = result
				v.headerDom = props["header.from"]
			case "dkim":
				if result == "pass" {
					v.dkimPass = append(v.dkimPass, props["header.d"])
				}
			case "spf":
				if result == "pass" {
					v.spfPass = props["smtp.mailfrom"]
				}
			}
		}
		break // the topmost trusted header is the one our MTA added
	}
	return v
}

// Fail returns the reason word when the verdict forbids auto-processing:
// "dmarc-fail" on dmarc=fail; with requireAuth, "unauthenticated" unless DMARC
// passed for the From domain (or, without DMARC, DKIM passed for it).
func (v authVerdict) fail(fromDomain string, requireAuth bool) string {
	if v.dmarc == "fail" {
		return "dmarc-fail"
	}
	if !requireAuth {
		return ""
	}
	if v.dmarc == "pass" && (v.headerDom == "" || strings.EqualFold(v.headerDom, fromDomain)) {
		return ""
	}
	for _, d := range v.dkimPass {
		if strings.EqualFold(d, fromDomain) {
			return ""
		}
	}
	return "unauthenticated"
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

// splitAuthServID returns the authserv-id (without a version) and the rest.
func splitAuthServID(raw string) (string, string) {
	raw = stripComments(raw)
	head, rest, _ := strings.Cut(raw, ";")
	f := strings.Fields(head)
	if len(f) == 0 {
		return "", ""
	}
	return strings.ToLower(f[0]), rest
}

// parseResinfo reads "method=result (comment) prop.name=value ...".
func parseResinfo(s string) (method, result string, props map[string]string) {
	props = map[string]string{}
	for i, f := range strings.Fields(s) {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(k)
		val = strings.Trim(val, `"`)
		if i == 0 {
			method, result = k, strings.ToLower(val)
			continue
		}
		props[k] = strings.ToLower(val)
	}
	return
}

// stripComments removes RFC 5322 comments (nested parentheses).
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
