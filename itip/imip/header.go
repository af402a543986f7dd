package imip

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"imipd/address"
)

// field is one unfolded header field.
type field struct {
	name  string // lower-case
	value string // unfolded, surrounding white space removed
}

// header holds the fields of a header block in order.
type header []field

// add parses one unfolded field line. A line that is not "name: value" with a
// valid field name is dropped (lenient, e.g. a stray line in a header block).
func (h *header) add(l []byte) {
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		return
	}
	name := bytes.TrimRight(l[:i], " \t")
	if len(name) == 0 {
		return
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return
		}
	}
	*h = append(*h, field{
		name:  strings.ToLower(string(name)),
		value: strings.TrimSpace(string(l[i+1:])),
	})
}

// get returns the value of the first field with the lower-case name.
func (h header) get(name string) string {
	for _, f := range h {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// all returns the values of all fields with the lower-case name.
func (h header) all(name string) []string {
	var l []string
	for _, f := range h {
		if f.name == name {
			l = append(l, f.value)
		}
	}
	return l
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader converts RFC 2047 encoded words in any charset; unknown
// charsets are kept as valid UTF-8 rather than failing.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(toUTF8(label, b)), nil
}

func decodeWords(s string) string {
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// parseMediaType returns the lower-case media type and the parameters (keys
// lower-case) of a Content-Type or Content-Disposition value. The default is
// text/plain (RFC 2045). Values mime.ParseMediaType refuses are parsed leniently.
func parseMediaType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || params == nil {
		mt, params = lenientMediaType(v)
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		mt = "text/plain"
	}
	return mt, params
}

// lenientMediaType splits "type; a=b; c="d;e"" without failing; the first
// occurrence of a parameter wins.
func lenientMediaType(v string) (string, map[string]string) {
	params := map[string]string{}
	var parts []string
	var b strings.Builder
	inq := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			inq = !inq
		case c == '\\' && inq && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case c == ';' && !inq:
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	parts = append(parts, b.String())
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		k = strings.TrimSuffix(k, "*")
		if _, dup := params[k]; k != "" && !dup {
			params[k] = strings.TrimSpace(val)
		}
	}
	return strings.TrimSpace(parts[0]), params
}

// filename returns the Content-Disposition filename, else the Content-Type name.
func filename(h header, ctParams map[string]string) string {
	fn := ""
	if cd := h.get("content-disposition"); cd != "" {
		_, p := parseMediaType(cd)
		fn = p["filename"]
	}
	if fn == "" {
		fn = ctParams["name"]
	}
	return strings.TrimSpace(decodeWords(fn))
}

// fillMessage sets the header fields of m from the top-level header.
func fillMessage(m *Message, h header) {
	if a := addresses(h.get("from")); len(a) > 0 {
		m.From, m.fromName = a[0].Address, a[0].Name
	}
	if a := addresses(h.get("sender")); len(a) > 0 {
		m.Sender = a[0].Address
	}
	if a := addresses(h.get("reply-to")); len(a) > 0 {
		m.replyTo = a[0].Address
	}
	for _, v := range h.all("to") {
		for _, a := range addresses(v) {
			m.To = append(m.To, a.Address)
		}
	}
	for _, v := range h.all("cc") {
		for _, a := range addresses(v) {
			m.Cc = append(m.Cc, a.Address)
		}
	}
	m.Date = parseDate(h.get("date"))
	m.MessageID = messageID(h.get("message-id"))
	m.subject = decodeWords(h.get("subject"))
	m.AutoSubmitted = strings.ToLower(h.get("auto-submitted"))
	m.AuthResults = h.all("authentication-results")
}

func messageID(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	return v
}

// addresses parses an address list with imip's charsets (address.ParseList).
func addresses(v string) []mail.Address { return address.ParseList(v, wordDecoder) }

var (
	dateComment = regexp.MustCompile(`\([^()]*\)`)
	dateDay     = regexp.MustCompile(`^[A-Za-z]+,?\s+`)
)

// dateLayouts are tried, after comments and a leading day name are removed,
// when net/mail.ParseDate fails.
var dateLayouts = []string{
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -07:00",
	"2 Jan 2006 15:04:05 -0700 MST",
	"2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04 MST",
	"2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04:05 MST",
	"2 Jan 06 15:04 -0700",
	"2-Jan-2006 15:04:05 -0700",
	"2 January 2006 15:04:05 -0700",
	"Jan 2 15:04:05 2006",
	"Jan 2 15:04:05 MST 2006",
	"Jan 2 15:04:05 -0700 2006",
	"Jan 2, 2006 15:04:05 -0700",
	"Jan 2 2006 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// commonDateLayouts are RFC 5322 date-time with and without the day name,
// numeric zone (RFC 5322 section 3.3).
var commonDateLayouts = []string{"Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700"}

// parseDate parses an RFC 5322 date, and common broken forms; zero if it cannot.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	// The RFC 5322 form nearly every mailer writes, first: net/mail tries
	// its layouts one after another, and each miss builds an error.
	for _, layout := range commonDateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	s := dateComment.ReplaceAllString(v, " ")
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimSuffix(s, ".")
	if loc := dateDay.FindStringIndex(s); loc != nil && !strings.ContainsAny(s[:loc[1]], "0123456789") {
		// "Mon, ", "Monday " ... but not the month in "Jan 2 ...".
		if w := strings.TrimRight(s[:loc[1]], ", \t"); !isMonth(w) {
			s = s[loc[1]:]
		}
	}
	s = strings.Replace(s, " GMT+", " +", 1)
	s = strings.Replace(s, " UTC+", " +", 1)
	s = strings.Replace(s, " GMT-", " -", 1)
	s = strings.Replace(s, " UTC-", " -", 1)
	for _, cand := range []string{s, trimLastField(s)} {
		for _, layout := range dateLayouts {
			if t, err := time.Parse(layout, cand); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

func isMonth(w string) bool {
	if len(w) < 3 {
		return false
	}
	_, err := time.Parse("Jan", w[:3])
	return err == nil
}

func trimLastField(s string) string {
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		return s[:i]
	}
	return s
}
