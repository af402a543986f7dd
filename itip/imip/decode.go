package imip

import (
	"io"

	"github.com/emersion/go-message/charset"

	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// b64 maps a base64 character (standard and URL alphabets) to its value, -1 otherwise.
var b64 = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = int8(i)
	}
	t['-'], t['_'] = 62, 63
	return t
}()

// decodeBase64 decodes leniently: characters outside the alphabet (line breaks,
// spaces) are ignored, missing padding is tolerated, a truncated last group
// yields the bytes it holds, and padding in the middle (concatenated encodings)
// restarts decoding.
func decodeBase64(src []byte) []byte {
	dst := make([]byte, 0, len(src)*3/4+3)
	var q [4]byte
	n := 0
	flush := func() {
		switch n {
		case 2:
			dst = append(dst, q[0]<<2|q[1]>>4)
		case 3:
			dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
		}
		n = 0
	}
	for _, c := range src {
		if c == '=' {
			flush()
			continue
		}
		v := b64[c]
		if v < 0 {
			continue
		}
		q[n] = byte(v)
		n++
		if n == 4 {
			dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
			n = 0
		}
	}
	flush()
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeQP decodes quoted-printable leniently (RFC 2045 6.7): trailing white
// space is removed, "=" at the end of a line is a soft line break, "=XY" is a
// byte (either hex case), and any other "=" is kept as is. Line endings are
// kept as they are.
func decodeQP(src []byte) []byte {
	dst := make([]byte, 0, len(src))
	for len(src) > 0 {
		var line, eol []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i+1], src[i+1:]
		} else {
			line, src = src, nil
		}
		body := trimEOL(line)
		eol = line[len(body):]
		body = bytes.TrimRight(body, " \t")
		if len(body) > 0 && body[len(body)-1] == '=' {
			body = body[:len(body)-1]
			eol = nil
		}
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c == '=' && i+2 < len(body) {
				h, ok1 := unhex(body[i+1])
				l, ok2 := unhex(body[i+2])
				if ok1 && ok2 {
					dst = append(dst, h<<4|l)
					i += 2
					continue
				}
			}
			dst = append(dst, c)
		}
		dst = append(dst, eol...)
	}
	return dst
}

// cp1252 holds the characters of windows-1252 at 0x80..0x9f (0 where undefined,
// which maps to the C1 control as in ISO-8859-1).
var cp1252 = [32]rune{
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
}

// latin9 holds the characters where ISO-8859-15 differs from ISO-8859-1.
var latin9 = map[byte]rune{
	0xa4: 0x20ac, 0xa6: 0x0160, 0xa8: 0x0161, 0xb4: 0x017d,
	0xb8: 0x017e, 0xbc: 0x0152, 0xbd: 0x0153, 0xbe: 0x0178,
}

// toUTF8 converts b from the charset label to UTF-8 and removes a UTF-8 byte
// order mark. Supported without tables of the golang.org/x/text module: UTF-8,
// US-ASCII, ISO-8859-1, ISO-8859-15, windows-1252, UTF-16 (LE/BE, BOM). Any other
// charset is kept as is when it is valid UTF-8; otherwise invalid bytes are
// replaced by U+FFFD.
func toUTF8(label string, b []byte) []byte {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}):
		if cs == "" || strings.HasPrefix(cs, "utf-16") || cs == "utf16" || cs == "unicode" {
			return fromUTF16(b, false)
		}
	case cs == "utf-16le" || cs == "utf-16be" || cs == "utf-16":
		return fromUTF16(b, cs == "utf-16be" || cs == "utf-16")
	}
	switch cs {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819", "iso-ir-100", "iso_8859-1:1987":
		return fromSingleByte(b, nil, nil)
	case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9", "l9":
		return fromSingleByte(b, nil, latin9)
	case "windows-1252", "cp1252", "x-cp1252", "ms-ansi":
		return fromSingleByte(b, &cp1252, nil)
	}
	if cs != "" && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" && cs != "ascii" {
		// Every other charset go-message knows (golang.org/x/text tables):
		// Shift_JIS, GB18030, KOI8-R, ISO-2022-JP, windows-125x, ...
		if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(r, int64(4*len(b)+4))); err == nil {
				b = out
			}
		}
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	return b
}

func fromSingleByte(b []byte, c1 *[32]rune, over map[byte]rune) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	dst := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range b {
		r := rune(c)
		if c1 != nil && c >= 0x80 && c < 0xa0 && c1[c-0x80] != 0 {
			r = c1[c-0x80]
		} else if o, ok := over[c]; ok {
			r = o
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// fromUTF16 decodes UTF-16; a byte order mark decides the byte order, else be.
func fromUTF16(b []byte, be bool) []byte {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		be, b = false, b[2:]
	case bytes.HasPrefix(b, []byte{0xfe, 0xff}):
		be, b = true, b[2:]
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if be {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			u = append(u, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	dst := make([]byte, 0, len(u))
	for _, r := range utf16.Decode(u) {
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// crlf puts text in canonical form (RFC 2046 4.1.1, RFC 5545 3.1): a line
// feed not preceded by a carriage return becomes CRLF, and non-empty text ends
// in CRLF (the line break before a MIME delimiter belongs to the delimiter, so
// a part often lacks the last one). Parts that differ only in line endings (an
// LF-only text/calendar next to its base64 application/ics twin) then compare
// equal.
func crlf(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	end := len(b) > 0 && b[len(b)-1] != '\n'
	if n == 0 && !end {
		return b
	}
	dst := make([]byte, 0, len(b)+n+2)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			dst = append(dst, '\r')
		}
		dst = append(dst, c)
	}
	if end {
		dst = append(dst, '\r', '\n')
	}
	return dst
}
