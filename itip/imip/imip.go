package imip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits bounds the work done on one message. Zero fields mean the default.
type Limits struct {
	MaxDepth         int   // MIME nesting depth (default 10)
	MaxParts         int   // total MIME parts visited (default 200)
	MaxHeaderBytes   int   // bytes of the top-level header block (default 256 KiB); also bounds each part header
	MaxDecodedBytes  int64 // total decoded bytes read from calendar-candidate parts (default 8 MiB)
	MaxCalendarBytes int64 // decoded size of one calendar part (default 1 MiB)
}

// Default limits; see DefaultLimits.
const (
	defaultMaxDepth         = 10
	defaultMaxParts         = 200
	defaultMaxHeaderBytes   = 256 << 10
	defaultMaxDecodedBytes  = 8 << 20
	defaultMaxCalendarBytes = 1 << 20
)

// DefaultLimits returns the limits used for zero fields of a Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:         defaultMaxDepth,
		MaxParts:         defaultMaxParts,
		MaxHeaderBytes:   defaultMaxHeaderBytes,
		MaxDecodedBytes:  defaultMaxDecodedBytes,
		MaxCalendarBytes: defaultMaxCalendarBytes,
	}
}

// withDefaults replaces zero (and negative) fields by their defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = d.MaxDecodedBytes
	}
	if l.MaxCalendarBytes <= 0 {
		l.MaxCalendarBytes = d.MaxCalendarBytes
	}
	return l
}

// ErrNoCalendar is returned by Parse, together with the parsed header fields, when
// the message has no calendar part: the caller passes the message on untouched.
var ErrNoCalendar = errors.New("imip: no calendar part")

// Reasons of a LimitError. They are stable words, used in headers and logs.
const (
	ReasonDepth        = "mime-depth"
	ReasonParts        = "mime-parts"
	ReasonHeaderSize   = "header-size"
	ReasonDecodedSize  = "decoded-size"
	ReasonCalendarSize = "calendar-size"
)

// LimitError reports a limit of Limits that was hit. Reason is one of the
// Reason* words.
type LimitError struct {
	Reason string
	limit  int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("imip: message exceeds limit %s (%d)", e.Reason, e.limit)
}

// Part is one calendar part of a message.
type Part struct {
	path        string // IMAP-style MIME position: "1" for a single-part message, "1", "2.1", ... inside multiparts
	contentType string // lower-case media type, e.g. "text/calendar", "application/ics", "application/octet-stream"
	Method      string // upper-case value of the Content-Type method parameter, "" if none
	filename    string // from Content-Disposition filename, else Content-Type name ("" if none)
	Data        []byte // decoded (transfer encoding removed), converted to UTF-8, UTF-8 BOM stripped, every line ending in CRLF
}

// Message holds the header fields imipd needs and the calendar parts of a message.
type Message struct {
	From          string    // address of the From header, lower-cased, "" if none/unparseable
	fromName      string    // display name of the From address, RFC 2047 decoded
	Sender        string    // Sender header address, lower-cased
	replyTo       string    // first Reply-To address, lower-cased
	To, Cc        []string  // lower-cased addresses
	Date          time.Time // zero if missing or unparseable
	MessageID     string    // without angle brackets, as given
	subject       string    // RFC 2047 decoded
	AutoSubmitted string    // value of Auto-Submitted, lower-cased ("" if absent)
	AuthResults   []string  // values of every Authentication-Results header, in order, unfolded
	Parts         []Part    // calendar parts, in MIME order, exact byte-duplicates (same Data) removed
	forwarded     bool      // a calendar part was seen inside message/rfc822 or message/global (not extracted)
}

// isCalendarType reports whether a MIME leaf with this media type and filename is
// a calendar candidate: text/calendar, text/x-vcalendar, application/ics, or any
// type with a filename ending in ".ics" (any case). mediaType may carry
// parameters and any case.
func isCalendarType(mediaType, filename string) bool {
	mt := mediaType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "text/calendar", "text/x-vcalendar", "application/ics":
		return true
	}
	fn := strings.TrimRight(strings.TrimSpace(filename), `"' `)
	return len(fn) >= 4 && strings.EqualFold(fn[len(fn)-4:], ".ics")
}

// Parse reads a whole message from r and returns its header fields and calendar parts.
//
// Without a calendar part it returns (msg, ErrNoCalendar). When a limit is hit it
// returns (msg-so-far, *LimitError): the header fields and the calendar parts found
// before the limit. A read error of r is returned wrapped, with msg-so-far.
// Malformed MIME is tolerated: a broken part is skipped. Parse never panics.
// When r is a DashSkipper, r drops the bytes of skipped parts itself.
func Parse(r io.Reader, lim Limits) (*Message, error) {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil) // no reference to r, nor to the message, is kept
		readers.Put(br)
	}()
	w := &walker{
		br:  br,
		lim: lim.withDefaults(),
		msg: &Message{},
		bol: true,
	}
	w.src, _ = r.(DashSkipper)
	w.skipMboxLine()
	h, _, err := w.readHeader()
	fillMessage(w.msg, h)
	if err != nil {
		return w.msg, err
	}
	if _, err := w.entity(h, 0, ""); err != nil {
		return w.msg, err
	}
	if len(w.msg.Parts) == 0 {
		return w.msg, ErrNoCalendar
	}
	return w.msg, nil
}

// What an entity is to the walker.
const (
	kindOther     = iota // skipped
	kindMultipart        // walked
	kindMessage          // message/rfc822, message/global: never followed
	kindCalendar         // read as a calendar part
)

func kindOf(h header, mt string, params map[string]string) int {
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		return kindMultipart
	case mt == "message/rfc822" || mt == "message/global":
		return kindMessage
	case isCalendarType(mt, filename(h, params)):
		return kindCalendar
	}
	return kindOther
}

// MayContainCalendar tells from a message's top-level Content-Type and
// Content-Disposition whether Parse could find a calendar part in its body:
// a multipart message may, a single part only when it is calendar data
// itself. Parse applies the same rule, so a transport may skip the body of
// a message for which this is false (plain mail costs only its header).
func MayContainCalendar(contentType, contentDisposition string) bool {
	contentType, contentDisposition = strings.TrimSpace(contentType), strings.TrimSpace(contentDisposition)
	h := header{{name: "content-type", value: contentType}, {name: "content-disposition", value: contentDisposition}}
	mt, params := parseMediaType(contentType)
	k := kindOf(h, mt, params)
	return k == kindMultipart || k == kindCalendar
}

// IsMultipart reports whether a top-level Content-Type is a multipart type,
// read as Parse reads it: the milter decides small multipart mail without
// calendar data on its own goroutine, and only multipart mail can be that.
func IsMultipart(contentType string) bool {
	mt, _ := parseMediaType(strings.TrimSpace(contentType))
	return strings.HasPrefix(mt, "multipart/")
}

// readers reuses line buffers across messages: nothing Parse returns
// points into them (every kept byte is copied).
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// readBufSize is the size of the line buffer. Longer lines are read in pieces.
const readBufSize = 64 << 10

// noTerm is the term index of the end of the input.
const noTerm = -1

// term tells what ended the body of an entity: the index in walker.bounds of the
// boundary found (noTerm for the end of input), and whether it was the close
// delimiter.
type term struct {
	idx   int
	close bool
}

var eofTerm = term{idx: noTerm}

type walker struct {
	br      *bufio.Reader
	lim     Limits
	msg     *Message
	bounds  [][]byte    // active delimiters ("--" + boundary), outermost first
	parts   int         // entities visited
	decoded int64       // decoded bytes of calendar candidates
	bol     bool        // the next read starts at the beginning of a line
	src     DashSkipper // the input, when it can drop bytes itself (skipToDash)
	rerr    error       // sticky read error other than io.EOF
}

// line returns the next line including its line ending, or a piece of a line
// longer than the buffer. bol reports whether it starts at the beginning of a
// line. At the end of input it returns io.EOF, and a read error wrapped. The
// slice is valid until the next call.
func (w *walker) line() (l []byte, bol bool, err error) {
	if w.rerr != nil {
		return nil, false, w.rerr
	}
	bol = w.bol
	l, err = w.br.ReadSlice('\n')
	switch {
	case err == nil:
		w.bol = true
	case errors.Is(err, bufio.ErrBufferFull):
		w.bol = false
		err = nil
	case errors.Is(err, io.EOF):
		if len(l) > 0 {
			err = nil
		}
		w.bol = true
	default:
		w.rerr = fmt.Errorf("imip: reading message: %w", err)
		if len(l) > 0 {
			err = nil
		} else {
			err = w.rerr
		}
	}
	return l, bol, err
}

// skipMboxLine skips an mbox "From " postmark line at the very start.
func (w *walker) skipMboxLine() {
	p, _ := w.br.Peek(5)
	if string(p) != "From " {
		return
	}
	for {
		_, _, err := w.line()
		if err != nil || w.bol {
			return
		}
	}
}

// boundary reports whether l is a delimiter line of an active multipart. It
// checks the innermost multipart first, so an unterminated inner multipart is
// ended by a delimiter of an outer one.
func (w *walker) boundary(l []byte, bol bool) (term, bool) {
	if !bol || len(l) < 3 || l[0] != '-' || l[1] != '-' {
		return term{}, false
	}
	for i := len(w.bounds) - 1; i >= 0; i-- {
		d := w.bounds[i]
		if !bytes.HasPrefix(l, d) {
			continue
		}
		rest := l[len(d):]
		isClose := false
		if bytes.HasPrefix(rest, []byte("--")) {
			isClose = true
			rest = rest[2:]
		}
		// RFC 2046: only linear white space may follow the delimiter.
		if len(bytes.TrimLeft(rest, " \t\r\n")) == 0 {
			return term{idx: i, close: isClose}, true
		}
	}
	return term{}, false
}

// readHeader reads a header block up to the empty line that ends it, the end of
// input, or (in a part) a delimiter line, which ends the part too; then the
// returned term is valid.
func (w *walker) readHeader() (h header, t *term, err error) {
	var cur []byte // current field, unfolded
	var size int
	flush := func() {
		if cur != nil {
			h.add(cur)
		}
		cur = nil
	}
	for {
		l, bol, err := w.line()
		if err != nil {
			flush()
			if errors.Is(err, io.EOF) {
				return h, &eofTerm, nil
			}
			return h, nil, err
		}
		size += len(l)
		if size > w.lim.MaxHeaderBytes {
			flush()
			return h, nil, &LimitError{ReasonHeaderSize, int64(w.lim.MaxHeaderBytes)}
		}
		if !bol {
			if cur != nil {
				cur = append(cur, trimEOL(l)...)
			}
			continue
		}
		if tt, ok := w.boundary(l, bol); ok {
			flush()
			return h, &tt, nil
		}
		switch {
		case len(trimEOL(l)) == 0:
			flush()
			return h, nil, nil
		case l[0] == ' ' || l[0] == '\t':
			if cur != nil {
				cur = append(cur, trimEOL(l)...)
			}
		default:
			flush()
			cur = append([]byte(nil), trimEOL(l)...)
		}
	}
}

func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

// entity handles one MIME entity whose header has been read, up to the delimiter
// line or end of input that ends its body.
func (w *walker) entity(h header, depth int, path string) (term, error) {
	w.parts++
	if w.parts > w.lim.MaxParts {
		return term{}, &LimitError{ReasonParts, int64(w.lim.MaxParts)}
	}
	mt, params := parseMediaType(h.get("content-type"))
	switch kindOf(h, mt, params) {
	case kindMultipart:
		return w.multipart(params["boundary"], depth, path)
	case kindMessage:
		return w.skip(true)
	case kindOther:
		return w.skip(false)
	}
	fn := filename(h, params)
	if path == "" {
		path = "1"
	}
	return w.calendar(h, mt, params, fn, path)
}

// multipart walks the parts of a multipart entity with the given boundary.
func (w *walker) multipart(boundary string, depth int, path string) (term, error) {
	if depth+1 > w.lim.MaxDepth {
		return term{}, &LimitError{ReasonDepth, int64(w.lim.MaxDepth)}
	}
	w.bounds = append(w.bounds, []byte("--"+boundary))
	me := len(w.bounds) - 1
	t, err := w.skip(false) // preamble
	for n := 1; err == nil && t.idx == me && !t.close; n++ {
		ph, ht, herr := w.readHeader()
		if herr != nil {
			err = herr
			break
		}
		if ht != nil {
			// The part ended in its header: it has no body.
			w.parts++
			if w.parts > w.lim.MaxParts {
				err = &LimitError{ReasonParts, int64(w.lim.MaxParts)}
				break
			}
			t = *ht
			continue
		}
		p := strconv.Itoa(n)
		if path != "" {
			p = path + "." + p
		}
		t, err = w.entity(ph, depth+1, p)
	}
	w.bounds = w.bounds[:me]
	if err != nil || t.idx != me {
		// End of input, an error, or the delimiter of an outer multipart.
		return t, err
	}
	return w.skip(false) // epilogue
}

// skip reads lines up to the next delimiter line of an active multipart or the
// end of input. With fwd, a line that looks like the header or start of a calendar
// part sets Forwarded.
func (w *walker) skip(fwd bool) (term, error) {
	if len(w.bounds) == 0 && !fwd {
		// Top-level body of no interest: do not read it.
		return eofTerm, nil
	}
	for {
		if !fwd {
			w.skipToDash()
		}
		l, bol, err := w.line()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return eofTerm, nil
			}
			return term{}, err
		}
		if t, ok := w.boundary(l, bol); ok {
			return t, nil
		}
		if fwd && bol && !w.msg.forwarded && looksCalendar(l) {
			w.msg.forwarded = true
		}
	}
}

// skipToDash discards input up to the next line that starts with '-', the
// only lines that can be delimiters, without splitting lines: a search for
// '-' runs at memchr speed, and base64 (the bulk of a large attachment) has
// no '-' at all. Once nothing is buffered, a DashSkipper input is asked to
// drop bytes itself before it hands them over. It stops at a line start
// with '-', when nothing more is buffered and the next read would block or
// end, or on a read error (left for line to report).
func (w *walker) skipToDash() {
	for {
		if w.src != nil && w.br.Buffered() == 0 {
			w.src.SkipToDash(w.bol)
			w.bol = true // the input goes on at a line start, or ends
		}
		buf, err := w.br.Peek(1) // fills the buffer when it is empty
		if err != nil || (w.bol && buf[0] == '-') {
			return
		}
		buf, _ = w.br.Peek(w.br.Buffered())
		if i := DashLine(buf, w.bol); i >= 0 {
			_, _ = w.br.Discard(i)
			w.bol = true
			return
		}
		_, _ = w.br.Discard(len(buf))
		w.bol = buf[len(buf)-1] == '\n'
	}
}

// DashLine returns the index in b of the first '-' that starts a line, or -1.
// bol tells whether b[0] starts a line.
func DashLine(b []byte, bol bool) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '-')
		if j < 0 {
			return -1
		}
		i += j
		if (i == 0 && bol) || (i > 0 && b[i-1] == '\n') {
			return i
		}
		i++
	}
}

// A DashSkipper is an input to Parse that can drop bytes itself before it
// hands them over, where handing over costs: the milter's body pipe scans a
// large attachment on the MTA session's goroutine and drops it there, with
// no hand-over to the parse per body chunk.
type DashSkipper interface {
	// SkipToDash makes the next Read start at the next line that starts
	// with '-' (dropping every byte before it), or end the input if none
	// comes. bol tells whether the next byte not yet read starts a line.
	// Parse calls it only when it holds no unread input of its own.
	SkipToDash(bol bool)
}

// looksCalendar is the shallow look into an embedded message: a Content-Type
// line naming a calendar type, or a BEGIN:VCALENDAR line.
func looksCalendar(l []byte) bool {
	if len(l) > 200 {
		l = l[:200]
	}
	s := strings.ToLower(string(l))
	if strings.HasPrefix(s, "begin:vcalendar") {
		return true
	}
	if !strings.HasPrefix(s, "content-type:") {
		return false
	}
	return isCalendarType(strings.TrimSpace(s[len("content-type:"):]), "")
}

// calendar reads the body of a calendar candidate, decodes it and adds it to the
// message.
func (w *walker) calendar(h header, mt string, params map[string]string, fn, path string) (term, error) {
	maxCal := w.lim.MaxCalendarBytes
	cte := strings.ToLower(strings.TrimSpace(h.get("content-transfer-encoding")))
	// Bound on the encoded size: base64 and quoted-printable take at most
	// about 3.2 times the decoded size on legitimate input.
	rawMax := maxCal + 2
	if cte == "base64" || cte == "quoted-printable" {
		rawMax = 4*maxCal + 64<<10
	}
	var raw []byte
	var eol []byte // line ending held back: the one before a delimiter belongs to it
	var t term
	for {
		l, bol, err := w.line()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return term{}, err
			}
			raw = append(raw, eol...)
			t = eofTerm
			break
		}
		if tt, ok := w.boundary(l, bol); ok {
			t = tt
			break
		}
		raw = append(raw, eol...)
		body := trimEOL(l)
		eol = append(eol[:0], l[len(body):]...)
		raw = append(raw, body...)
		if int64(len(raw)) > rawMax {
			return term{}, &LimitError{ReasonCalendarSize, maxCal}
		}
	}

	var data []byte
	switch cte {
	case "base64":
		data = decodeBase64(raw)
	case "quoted-printable":
		data = decodeQP(raw)
	default: // 7bit, 8bit, binary, and unknown encodings as 8bit
		data = raw
	}
	data = crlf(toUTF8(params["charset"], data))
	n := int64(len(data))
	if n > maxCal {
		return term{}, &LimitError{ReasonCalendarSize, maxCal}
	}
	w.decoded += n
	if w.decoded > w.lim.MaxDecodedBytes {
		return term{}, &LimitError{ReasonDecodedSize, w.lim.MaxDecodedBytes}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return t, nil // an empty calendar part carries nothing
	}
	for _, p := range w.msg.Parts {
		if bytes.Equal(p.Data, data) {
			return t, nil
		}
	}
	w.msg.Parts = append(w.msg.Parts, Part{
		path:        path,
		contentType: mt,
		Method:      strings.ToUpper(strings.TrimSpace(params["method"])),
		filename:    fn,
		Data:        data,
	})
	return t, nil
}
