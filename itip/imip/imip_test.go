package imip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

type wantPart struct {
	path, ctype, method, filename string
	data                          string // exact Data when not ""
	contains                      string // substring of Data when not ""
}

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		msg    string
		lim    Limits
		err    error  // nil, ErrNoCalendar
		reason string // LimitError reason
		parts  []wantPart
		fwd    bool
		check  func(t *testing.T, m *Message)
	}{
		{
			name: "outlook base64 in alternative",
			msg:  outlookMsg,
			parts: []wantPart{{path: "3", ctype: "text/calendar", method: "REQUEST",
				data: canon(calRequest)}},
			check: func(t *testing.T, m *Message) {
				eq(t, "From", m.From, "olga@example.org")
				eq(t, "FromName", m.fromName, "Olga Organizer")
				eq(t, "To", strings.Join(m.To, ","), "ann@example.net,bob@example.net")
				eq(t, "Cc", strings.Join(m.Cc, ","), "carol@example.net")
				eq(t, "Subject", m.subject, "Quarterly planning – Q1")
				eq(t, "MessageID", m.MessageID, "DM6PR01MB0001.namprd01.prod.example.org")
				eq(t, "Date", m.Date.UTC().Format(time.RFC3339), "2025-01-02T10:00:00Z")
				if len(m.AuthResults) != 2 || !strings.Contains(m.AuthResults[1], "dmarc=pass") ||
					!strings.HasPrefix(m.AuthResults[0], "mx.example.net; dkim=pass") {
					t.Errorf("AuthResults %q", m.AuthResults)
				}
			},
		},
		{
			name: "google LF-only with application/ics twin",
			msg:  googleMsg,
			parts: []wantPart{{path: "1.3", ctype: "text/calendar", method: "REQUEST",
				data: canon(calRequest)}},
			check: func(t *testing.T, m *Message) {
				eq(t, "Sender", m.Sender, "calendar-notification@google.com")
				eq(t, "From", m.From, "olga@example.org")
				eq(t, "ReplyTo", m.replyTo, "olga@example.org")
				eq(t, "AutoSubmitted", m.AutoSubmitted, "auto-generated")
			},
		},
		{
			name: "google CRLF",
			msg:  wire(googleMsg),
			parts: []wantPart{{path: "1.3", ctype: "text/calendar", method: "REQUEST",
				data: canon(calRequest)}},
		},
		{
			name: "apple quoted-printable",
			msg:  appleQPMsg,
			parts: []wantPart{{path: "1.2", ctype: "text/calendar", filename: "iCal-reply.ics",
				data: canon(calReply)}},
			check: func(t *testing.T, m *Message) {
				eq(t, "MessageID", m.MessageID, "A1B2C3D4-0000-0000-0000-000000000000@example.net")
				eq(t, "Date", m.Date.UTC().Format(time.RFC3339), "2025-01-03T10:00:00Z")
			},
		},
		{
			name:  "single part LF-only 8bit",
			msg:   singleLFMsg,
			parts: []wantPart{{path: "1", ctype: "text/calendar", method: "REPLY", data: canon(calReply)}},
		},
		{
			name: "DSN bounce with message/rfc822",
			msg:  bounceMsg,
			err:  ErrNoCalendar,
			fwd:  true,
			check: func(t *testing.T, m *Message) {
				eq(t, "AutoSubmitted", m.AutoSubmitted, "auto-replied")
				eq(t, "From", m.From, "mailer-daemon@mx.example.org")
				if m.Date.IsZero() {
					t.Errorf("Date with comment not parsed")
				}
			},
		},
		{
			name:   "nested 5000 deep",
			msg:    nested(5000),
			reason: ReasonDepth,
		},
		{
			name:  "nested 9 deep is fine",
			msg:   nested(9),
			parts: []wantPart{{path: "1.1.1.1.1.1.1.1.1.1", ctype: "text/calendar"}},
		},
		{
			name:   "10000 parts",
			msg:    manyParts(10000),
			reason: ReasonParts,
		},
		{
			name:   "2 MB calendar",
			msg:    bigCalendar(2 << 20),
			reason: ReasonCalendarSize,
		},
		{
			name:   "2 MB calendar base64",
			msg:    "Content-Type: text/calendar\nContent-Transfer-Encoding: base64\n\n" + enc64(bigCalendar(2<<20)),
			reason: ReasonCalendarSize,
		},
		{
			name:   "decoded total",
			msg:    distinctCalendars(5),
			lim:    Limits{MaxDecodedBytes: 1500},
			reason: ReasonDecodedSize,
			check: func(t *testing.T, m *Message) {
				if len(m.Parts) == 0 {
					t.Errorf("parts found before the limit are lost")
				}
			},
		},
		{
			name:   "header size",
			msg:    hugeHeader(300 << 10),
			reason: ReasonHeaderSize,
			check: func(t *testing.T, m *Message) {
				eq(t, "From", m.From, "a@example.org")
			},
		},
		{
			name:  "iso-8859-1 converted",
			msg:   latin1Msg,
			parts: []wantPart{{path: "1", ctype: "text/calendar", method: "PUBLISH", contains: "SUMMARY:Café\r\n"}},
		},
		{
			name: "missing boundary",
			msg:  missingBoundaryMsg,
			err:  ErrNoCalendar,
		},
		{
			name:  "truncated base64",
			msg:   truncatedB64Msg,
			parts: []wantPart{{path: "1", ctype: "text/calendar", method: "REQUEST", contains: "BEGIN:VCALENDAR\r\nPRODID"}},
		},
		{
			name: "no content-type",
			msg:  noContentTypeMsg,
			err:  ErrNoCalendar,
			check: func(t *testing.T, m *Message) {
				eq(t, "From", m.From, "ann@example.net")
				eq(t, "FromName", m.fromName, "Ann A.")
				eq(t, "Subject", m.subject, "lunch?")
			},
		},
		{
			name: "text/plain calendar not sniffed",
			msg:  plainCalendarTextMsg,
			err:  ErrNoCalendar,
		},
		{
			name: "octet-stream .ics, RFC 2231 filename, mbox line",
			msg:  octetStreamMsg,
			parts: []wantPart{{path: "2", ctype: "application/octet-stream", filename: "Tréffen.ICS",
				data: canon(calRequest)}},
			check: func(t *testing.T, m *Message) {
				eq(t, "From", m.From, "olga@example.org")
			},
		},
		{
			name:  "unterminated inner multipart",
			msg:   unterminatedMsg,
			parts: []wantPart{{path: "2", ctype: "text/calendar", method: "REQUEST", data: canon(calRequest)}},
		},
		{
			name:  "multipart/signed, text/x-vcalendar",
			msg:   signedMsg,
			parts: []wantPart{{path: "1.2", ctype: "text/x-vcalendar", method: "REQUEST", data: canon(calRequest)}},
		},
		{
			name:  "UTF-8 BOM stripped",
			msg:   bomMsg,
			parts: []wantPart{{path: "1", ctype: "application/ics", data: canon(calReply)}},
		},
		{
			name:  "UTF-16",
			msg:   utf16Msg,
			parts: []wantPart{{path: "1", ctype: "text/calendar", data: "BEGIN:VCALENDAR\r\nSUMMARY:Ünïcode\r\nEND:VCALENDAR\r\n"}},
		},
		{
			name: "distinct parts kept in order",
			msg:  distinctCalendars(3),
			parts: []wantPart{
				{path: "1", contains: "X-N:0"}, {path: "2", contains: "X-N:1"}, {path: "3", contains: "X-N:2"},
			},
		},
		{
			name: "empty input",
			msg:  "",
			err:  ErrNoCalendar,
		},
		{
			name:  "part ending in its header",
			msg:   "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/calendar\n--x\nContent-Type: text/calendar\n\n" + calReply + "--x--\n",
			parts: []wantPart{{path: "2", ctype: "text/calendar", data: canon(calReply)}},
		},
		{
			name:  "invalid utf-8 replaced",
			msg:   "Content-Type: text/calendar; charset=x-unknown\n\nSUMMARY:\xff\xfe ok\n",
			parts: []wantPart{{path: "1", data: "SUMMARY:\uFFFD ok\r\n"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			m, err := Parse(strings.NewReader(tc.msg), tc.lim)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if m == nil {
				t.Fatalf("nil message, err %v", err)
			}
			switch {
			case tc.reason != "":
				var le *LimitError
				if !errors.As(err, &le) || le.Reason != tc.reason {
					t.Fatalf("err %v, want LimitError %s", err, tc.reason)
				}
			case err != tc.err:
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.reason == "" {
				if len(m.Parts) != len(tc.parts) {
					t.Fatalf("%d parts, want %d: %+v", len(m.Parts), len(tc.parts), m.Parts)
				}
				for i, w := range tc.parts {
					p := m.Parts[i]
					eq(t, "Path", p.path, w.path)
					if w.ctype != "" {
						eq(t, "ContentType", p.contentType, w.ctype)
					}
					eq(t, "Method", p.Method, w.method)
					if w.filename != "" {
						eq(t, "Filename", p.filename, w.filename)
					}
					if w.data != "" {
						eq(t, "Data", string(p.Data), w.data)
					}
					if w.contains != "" && !bytes.Contains(p.Data, []byte(w.contains)) {
						t.Errorf("Data %q does not contain %q", p.Data, w.contains)
					}
					if !utf8.Valid(p.Data) {
						t.Errorf("Data not UTF-8")
					}
				}
			}
			if m.forwarded != tc.fwd {
				t.Errorf("Forwarded %v, want %v", m.forwarded, tc.fwd)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
			for _, chunk := range []int{1, 7, 100, 1 << 20} {
				sameWhenSkipping(t, []byte(tc.msg), tc.lim, chunk, m, err)
			}
		})
	}
}

// skipReader is an input that implements DashSkipper by the letter of its
// contract, handing over at most chunk bytes per Read.
type skipReader struct {
	data  []byte
	chunk int
	skips int // SkipToDash calls
}

func (r *skipReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func (r *skipReader) SkipToDash(bol bool) {
	r.skips++
	if i := DashLine(r.data, bol); i >= 0 {
		r.data = r.data[i:]
	} else {
		r.data = nil
	}
}

// sameWhenSkipping checks that Parse of raw from a DashSkipper handing over
// chunk bytes per read gives m and err, the result from a plain reader.
func sameWhenSkipping(t *testing.T, raw []byte, lim Limits, chunk int, m *Message, err error) {
	t.Helper()
	sm, serr := Parse(&skipReader{data: raw, chunk: chunk}, lim)
	if fmt.Sprint(serr) != fmt.Sprint(err) || !reflect.DeepEqual(sm, m) {
		t.Fatalf("chunk %d: Parse from a DashSkipper differs:\n%+v, %v\nwant\n%+v, %v", chunk, sm, serr, m, err)
	}
}

func TestDashLine(t *testing.T) {
	for _, tc := range []struct {
		b    string
		bol  bool
		want int
	}{
		{"", true, -1},
		{"-x", true, 0},
		{"-x", false, -1},
		{"a-b\n-c", false, 4},
		{"a-b\n-c", true, 4},
		{"abc\n", true, -1},
		{"\n-", false, 1},
		{"x--\n\n--b", false, 5},
	} {
		if got := DashLine([]byte(tc.b), tc.bol); got != tc.want {
			t.Errorf("DashLine(%q, %v) = %d, want %d", tc.b, tc.bol, got, tc.want)
		}
	}
}

func TestParseSkipsThroughInput(t *testing.T) {
	// A large attachment between the text and the calendar part: the parse
	// asks its input to drop the attachment rather than reading it.
	att := strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 20000)
	raw := "From: olga@example.org\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + att +
		"--b1\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + calRequest + "\r\n--b1--\r\n"
	r := &skipReader{data: []byte(raw), chunk: 64 << 10}
	m, err := Parse(r, Limits{})
	if err != nil || len(m.Parts) != 1 || m.Parts[0].Method != "REQUEST" {
		t.Fatalf("got %v, %+v", err, m)
	}
	if r.skips == 0 {
		t.Fatalf("the input was never asked to skip")
	}
	pm, perr := Parse(strings.NewReader(raw), Limits{})
	sameWhenSkipping(t, []byte(raw), Limits{}, 64<<10, pm, perr)
}

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// errReader fails after its data.
type errReader struct{ r *strings.Reader }

var errBoom = errors.New("boom")

func (e errReader) Read(p []byte) (int, error) {
	n, _ := e.r.Read(p)
	if n == 0 {
		return 0, errBoom
	}
	return n, nil
}

func TestParseReadError(t *testing.T) {
	m, err := Parse(errReader{strings.NewReader(googleMsg[:900])}, Limits{})
	if !errors.Is(err, errBoom) || m == nil || m.From != "olga@example.org" {
		t.Fatalf("got %v %+v", err, m)
	}
}

func TestIsCalendarType(t *testing.T) {
	cases := []struct {
		mt, fn string
		want   bool
	}{
		{"text/calendar", "", true},
		{"TEXT/Calendar; method=REQUEST", "", true},
		{"text/x-vcalendar", "", true},
		{"application/ics", "", true},
		{"application/octet-stream", "invite.ics", true},
		{"application/octet-stream", "INVITE.ICS", true},
		{"text/plain", "BAHN_2024.ics", true},
		{"", `"meeting.ics"`, true},
		{"text/plain", "", false},
		{"application/octet-stream", "invite.ics.exe", false},
		{"application/octet-stream", "ics", false},
		{"text/html", "", false},
		{"multipart/mixed", "", false},
	}
	for _, c := range cases {
		if got := isCalendarType(c.mt, c.fn); got != c.want {
			t.Errorf("IsCalendarType(%q, %q) = %v", c.mt, c.fn, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	d := DefaultLimits()
	if (Limits{}).withDefaults() != d || d.MaxDepth != 10 || d.MaxParts != 200 ||
		d.MaxHeaderBytes != 256<<10 || d.MaxDecodedBytes != 8<<20 || d.MaxCalendarBytes != 1<<20 {
		t.Fatalf("defaults %+v", d)
	}
	e := &LimitError{ReasonParts, 200}
	eq(t, "Error", e.Error(), "imip: message exceeds limit mime-parts (200)")
}

func TestDecodeBase64(t *testing.T) {
	cases := []struct{ in, want string }{
		{"aGVsbG8=", "hello"},
		{"aGVsbG8", "hello"},         // missing padding
		{"aGVs\r\n bG8=\n", "hello"}, // white space
		{"aGVsbG8=aGk=", "hellohi"},  // concatenated
		{"aGVsb", "hel"},             // truncated
		{"aGVs*bG8", "hello"},        // stray character
		{"", ""},
	}
	for _, c := range cases {
		eq(t, c.in, string(decodeBase64([]byte(c.in))), c.want)
	}
}

func TestDecodeQP(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"a=3db", "a=b"},
		{"soft=\r\nbreak\r\n", "softbreak\r\n"},
		{"soft= \nbreak\n", "softbreak\n"},
		{"trail  \r\nx", "trail\r\nx"},
		{"bad=ZZ=", "bad=ZZ"},
		{"end=4", "end=4"},
		{"=C3=A9", "é"},
	}
	for _, c := range cases {
		eq(t, c.in, string(decodeQP([]byte(c.in))), c.want)
	}
}

func TestToUTF8(t *testing.T) {
	cases := []struct{ cs, in, want string }{
		{"utf-8", "caf\xc3\xa9", "café"},
		{"", "\xef\xbb\xbfx", "x"},
		{"iso-8859-1", "caf\xe9", "café"},
		{"\"ISO-8859-15\"", "\xa4", "€"},
		{"windows-1252", "\x93q\x94 \x80", "\u201cq\u201d €"},
		{"koi8-r", "plain ascii", "plain ascii"},
		{"koi8-r", "\xc1", "\u0430"}, // Cyrillic a, via go-message/charset
		{"x-unknown-charset", "caf\xe9", "caf\uFFFD"},
		{"utf-16be", "\x00h\x00i", "hi"},
	}
	for _, c := range cases {
		eq(t, c.cs+" "+c.in, string(toUTF8(c.cs, []byte(c.in))), c.want)
	}
}

func TestParseDate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Thu, 2 Jan 2025 10:00:00 +0000", "2025-01-02T10:00:00Z"},
		{"2 Jan 2025 10:00:00 +0100", "2025-01-02T09:00:00Z"},
		{"Thu, 02 Jan 2025 10:00:00 +0000 (UTC)", "2025-01-02T10:00:00Z"},
		{"Thursday, 2 Jan 2025 10:00:00 +0000", "2025-01-02T10:00:00Z"},
		{"Thu, 2 Jan 25 10:00:00 +0000", "2025-01-02T10:00:00Z"},
		{"Thu, 2 Jan 2025 10:00 +0000", "2025-01-02T10:00:00Z"},
		{"Thu, 2 Jan 2025 10:00:00 GMT", "2025-01-02T10:00:00Z"},
		{"Thu, 2 Jan 2025 10:00:00", "2025-01-02T10:00:00Z"},
		{"Thu Jan  2 10:00:00 2025", "2025-01-02T10:00:00Z"},
		{"2025-01-02T10:00:00+01:00", "2025-01-02T09:00:00Z"},
		{"Thu, 2 Jan 2025 10:00:00 +01:00", "2025-01-02T09:00:00Z"},
		{"Thu, 2 Jan 2025 10:00:00 GMT+0100", "2025-01-02T09:00:00Z"},
		{"Thu,  2 Jan 2025 10:00:00 +0000.", "2025-01-02T10:00:00Z"},
		{"", ""},
		{"yesterday", ""},
	}
	for _, c := range cases {
		got := parseDate(c.in)
		s := ""
		if !got.IsZero() {
			s = got.UTC().Format(time.RFC3339)
		}
		eq(t, c.in, s, c.want)
	}
}

func TestAddresses(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"Doe, John" <John@Example.COM>`, "john@example.com"},
		{`a@x.org, B <b@X.org>`, "a@x.org b@x.org"},
		{`undisclosed-recipients:;`, ""},
		{`John Doe <john@example.com> (broken`, "john@example.com"},
		{`<john@example.com>, <jane@example.com>,`, "john@example.com jane@example.com"},
		{`john@example.com; jane@example.com`, "john@example.com jane@example.com"},
		{`=?utf-8?q?J=C3=B6rg?= <jorg@example.com>`, "jorg@example.com"},
		{`nobody`, ""},
	}
	for _, c := range cases {
		var l []string
		for _, a := range addresses(c.in) {
			l = append(l, a.Address)
		}
		eq(t, c.in, strings.Join(l, " "), c.want)
	}
	a := addresses(`=?utf-8?q?J=C3=B6rg?= <jorg@example.com>`)
	eq(t, "name", a[0].Name, "Jörg")
}

// MayContainCalendar must agree with Parse: where it says no, Parse finds
// nothing, whatever the body.
func TestMayContainCalendar(t *testing.T) {
	body := "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	cases := []struct {
		ct, cd string
		want   bool
	}{
		{"", "", false},
		{"text/plain; charset=utf-8", "", false},
		{"text/html", "", false},
		{"text/calendar; method=REQUEST", "", true},
		{"TEXT/CALENDAR", "", true},
		{"application/ics", "", true},
		{"application/octet-stream", `attachment; filename="invite.ics"`, true},
		{`application/octet-stream; name="a.ICS"`, "", true},
		{"application/pdf", `attachment; filename="a.pdf"`, false},
		{`multipart/mixed; boundary="b"`, "", true},
		{"multipart/mixed", "", false}, // no boundary: Parse cannot walk it
		{"message/rfc822", "", false},
		{"text/calendar;;;", "", true},
	}
	for _, c := range cases {
		if got := MayContainCalendar(c.ct, c.cd); got != c.want {
			t.Errorf("MayContainCalendar(%q, %q) = %v, want %v", c.ct, c.cd, got, c.want)
		}
		raw := "From: a@b.test\r\n"
		if c.ct != "" {
			raw += "Content-Type: " + c.ct + "\r\n"
		}
		if c.cd != "" {
			raw += "Content-Disposition: " + c.cd + "\r\n"
		}
		raw += "\r\n" + body
		_, err := Parse(strings.NewReader(raw), Limits{})
		if !MayContainCalendar(c.ct, c.cd) && err != ErrNoCalendar {
			t.Errorf("%q: MayContainCalendar says no, Parse says %v", c.ct, err)
		}
	}
}

func TestIsMultipart(t *testing.T) {
	for ct, want := range map[string]bool{
		`multipart/alternative; boundary="b"`: true,
		` MULTIPART/Mixed;boundary=b`:         true,
		"multipart/mixed":                     true, // a multipart type, if one Parse cannot walk
		"text/calendar; method=REPLY":         false,
		"":                                    false,
		"multipart":                           false,
		"text/plain; x=multipart/mixed":       false,
		"application/ics":                     false,
	} {
		if got := IsMultipart(ct); got != want {
			t.Errorf("IsMultipart(%q) = %v, want %v", ct, got, want)
		}
	}
}
