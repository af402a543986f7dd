package filter

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"

	"imipd/itip"
)

// DefaultHeader is the outcome header's name unless the configuration
// names another (header).
const DefaultHeader = "X-IMIP-Processed"

// HeaderName is the name of the outcome header the adapters write:
// Config.Header, or DefaultHeader.
func (p *Processor) HeaderName() string {
	if p.Cfg.Header != "" {
		return p.Cfg.Header
	}
	return DefaultHeader
}

// HeaderValue renders the outcome header (docs/rules.md "The header"):
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
		reasons := map[itip.Reason]bool{}
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
			b.WriteString("; reason=" + safe(string(g[0].Reason)))
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

// IsHeaderName reports whether a header field name, as a transport hands it
// over, is name: compared case-insensitively and without the white space
// RFC 5322's obsolete syntax allows before the colon (§4.5.3, obs-optional),
// which readers ignore. Every transport decides "is this imipd's header"
// with it (the milter through it, the LMTP proxy through headerFilter).
func IsHeaderName(field, name string) bool {
	return strings.EqualFold(strings.Trim(field, " \t"), name)
}

// headerFilter removes every field named name from a header block written
// to it in pieces of any size, and passes the rest on unchanged. Two kinds
// of reader see two different sets of fields in one block: a reader that
// ends lines at LF (Postfix, Dovecot, RFC 5322 §2.2, where CR occurs only
// in CRLF) sees a field as a line and its continuation lines; a reader that
// also ends lines at a bare CR (a CR that no LF follows), as Python's email
// package does, also sees a field after each bare CR inside such a line. A
// forged copy of imipd's header must go for both, and no field may appear
// to either reader that it did not see before:
//
//   - a field named name at the start of a line goes whole: the line, its
//     continuation lines, whatever bare CRs hide in them, its line end;
//   - a field named name hidden behind a bare CR inside a kept field goes
//     with its continuations (as the CR-reader sees them) and the separator
//     before each of its parts (the bare CR, the line end before a
//     continuation line), so what follows it stays hidden where it was.
//
// Nothing removed: the output is the input, byte for byte.
type headerFilter struct {
	name    string
	w       io.Writer
	err     error
	removed int // fields removed

	fieldSkip bool   // the current field (line and continuation lines) is being removed
	partSkip  bool   // within a kept field, the part after a bare CR being removed
	start     bool   // the next byte starts a part: after a separator, or at the beginning
	head      []byte // the start of a part, kept until it is clear what to do with it
	sep       []byte // the separator before the current part, not yet written: a bare CR or a line end (nil at the beginning)
	lineStart bool   // the part starts a line (sep is a line end, or the beginning)
	cr        bool   // the input so far ends in a CR: bare unless an LF follows
}

// maxHeadWS bounds the white space between a field name that matches and
// its colon that headerFilter waits for; past it, the field counts as one
// to remove.
const maxHeadWS = 1024

// newHeaderFilter returns a filter writing to w. inField: the first byte
// continues a kept field (a milter's header value) rather than starting a
// line (a header block).
func newHeaderFilter(w io.Writer, name string, inField bool) *headerFilter {
	return &headerFilter{w: w, name: name, start: !inField, lineStart: !inField}
}

func (f *headerFilter) out(b []byte) {
	if f.err != nil || len(b) == 0 {
		return
	}
	_, f.err = f.w.Write(b)
}

var crByte, crlf, lf = []byte("\r"), []byte("\r\n"), []byte("\n")

// emit writes bytes of the current part, unless it is being removed.
func (f *headerFilter) emit(b []byte) {
	if !f.fieldSkip && !f.partSkip {
		f.out(b)
	}
}

// separator ends the current part with a bare CR or a line end.
func (f *headerFilter) separator(s []byte) {
	f.sep, f.lineStart, f.start = s, !bytes.Equal(s, crByte), true
}

// ours reports whether a part's start is a field named f.name; done is
// false while that cannot be told yet (final: nothing more will come).
func (f *headerFilter) ours(h []byte, final bool) (is, done bool) {
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		return IsHeaderName(string(h[:i]), f.name), true
	}
	n := min(len(h), len(f.name))
	prefix := n > 0 && strings.EqualFold(string(h[:n]), f.name[:n]) && len(bytes.Trim(h[n:], " \t")) == 0
	switch {
	case prefix && !final && len(h) <= len(f.name)+maxHeadWS:
		return false, false // could still be name ":"
	case prefix && len(h) >= len(f.name):
		return true, true // the name without a colon, or with white space without end
	}
	return false, true
}

// decide settles the part that f.head starts and the separator before it;
// false while more bytes are needed.
func (f *headerFilter) decide(final bool) bool {
	h := f.head
	cont := len(h) > 0 && (h[0] == ' ' || h[0] == '\t')
	is := false
	if !cont && !(f.fieldSkip && !f.lineStart) {
		var done bool
		if is, done = f.ours(h, final); !done {
			return false
		}
	}
	keep := true
	switch {
	case f.lineStart && !cont:
		// A new field: the line end before it is the previous field's.
		if !f.fieldSkip {
			f.out(f.sep)
		}
		f.fieldSkip, f.partSkip = is, false
		keep = !is
	case f.fieldSkip:
		keep = false // a continuation or a hidden part of a field being removed
	case cont:
		keep = !f.partSkip // a continuation of the current part
	default:
		// A part hidden behind a bare CR inside a kept field.
		f.partSkip = is
		keep = !is
	}
	if is {
		f.removed++
	}
	if keep && !(f.lineStart && !cont) {
		f.out(f.sep)
	}
	if keep {
		f.out(h)
	}
	f.head, f.sep, f.start = f.head[:0], nil, false
	return true
}

// Write filters p.
func (f *headerFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && f.err == nil {
		if f.cr {
			f.cr = false
			if p[0] == '\n' {
				f.separator(crlf)
				p = p[1:]
			} else {
				f.separator(crByte)
			}
			continue
		}
		if f.start {
			// Collect the start of the part up to its colon, or its end.
			i := bytes.IndexAny(p, ":\r\n")
			switch {
			case i < 0:
				i = len(p)
			case p[i] == ':':
				i++
			}
			f.head = append(f.head, p[:i]...)
			p = p[i:]
			f.decide(len(p) > 0 && (p[0] == '\r' || p[0] == '\n'))
			continue
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			f.emit(p)
			break
		}
		f.emit(p[:i])
		c := p[i]
		p = p[i+1:]
		switch {
		case c == '\n':
			f.separator(lf)
		case len(p) == 0:
			f.cr = true
		case p[0] == '\n':
			f.separator(crlf)
			p = p[1:]
		default:
			f.separator(crByte)
		}
	}
	return n, f.err
}

// Close settles what is still undecided at the end of the input and writes
// it.
func (f *headerFilter) Close() error {
	if f.cr {
		f.cr = false
		f.separator(crByte)
	}
	if f.start && (len(f.head) > 0 || f.sep != nil) {
		f.decide(true)
	}
	return f.err
}

// HiddenFields removes from a header field's value, as a milter gets it
// (continuation lines joined with LF), every field named name that a bare
// CR hides in it (headerFilter), and reports how many there were; with
// none, the value comes back unchanged. In a value with a field removed,
// every bare CR left becomes a space: the value goes back to the MTA
// through go-milter, which turns a lone CR into LF (milterutil.CrLfToLf),
// and Postfix would read what follows an LF not followed by white space as
// a field of its own.
func HiddenFields(value, name string) (string, int) {
	if !strings.Contains(value, "\r") {
		return value, 0
	}
	var b bytes.Buffer
	f := newHeaderFilter(&b, name, true)
	f.Write([]byte(value))
	f.Close()
	if f.removed == 0 {
		return value, 0
	}
	out := b.Bytes()
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = ' '
		}
	}
	return string(out), f.removed
}

// WriteTagged writes the message read from r to w with every header field
// named name removed (headerFilter: continuation lines included, names
// compared with IsHeaderName, fields hidden behind a bare CR included) and,
// when value is not empty, one "name: value" field first (folded, CRLF line
// ends: the LMTP proxy's copy per header value).
func WriteTagged(w io.Writer, r io.Reader, name, value string) error {
	if value != "" {
		if _, err := io.WriteString(w, name+": "+FoldValue(len(name)+2, value, "\r\n")+"\r\n"); err != nil {
			return err
		}
	}
	br := taggedReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		taggedReaders.Put(br)
	}()
	hf := newHeaderFilter(w, name, false)
	midLine := false
	for {
		line, err := br.ReadSlice('\n')
		if !midLine && err == nil && len(bytes.TrimRight(line, "\r\n")) == 0 {
			// The end of the header: the rest as it is.
			if werr := hf.Close(); werr != nil {
				return werr
			}
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			_, err := br.WriteTo(w)
			return err
		}
		if _, werr := hf.Write(line); werr != nil {
			return werr
		}
		midLine = err != nil
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return hf.Close()
		default:
			return err
		}
	}
}

// taggedReaders are WriteTagged's buffers (32 KiB each, reused).
var taggedReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
