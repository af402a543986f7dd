package address

import (
	"mime"
	"net/mail"
	"regexp"
	"strings"
)

// angleAddr and bareAddr find addresses in values net/mail refuses.
var (
	angleAddr = regexp.MustCompile(`<\s*([^<>\s@]+@[^<>\s]+?)\s*>`)
	bareAddr  = regexp.MustCompile(`[^\s<>,;:"()\[\]]+@[^\s<>,;:"()\[\]]+`)
)

// ParseList parses an address list header value (From, To, Cc, …)
// leniently, the one parser of address lists in imipd: RFC 5322 through
// net/mail first; when net/mail refuses the value (a missing comma, a
// semicolon list, an unclosed comment, a trailing comma), every <addr> in
// angle brackets with the display name before it, or else every bare word
// with an "@". Addresses come back in Normalize form; display names are
// decoded with dec (RFC 2047 encoded words; nil: the standard decoder,
// UTF-8 and the charsets it knows). A value with no address gives nil.
func ParseList(v string, dec *mime.WordDecoder) []mail.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	if dec == nil {
		dec = new(mime.WordDecoder)
	}
	p := mail.AddressParser{WordDecoder: dec}
	if l, err := p.ParseList(v); err == nil {
		r := make([]mail.Address, 0, len(l))
		for _, a := range l {
			r = append(r, mail.Address{Name: a.Name, Address: Normalize(a.Address)})
		}
		return r
	}
	var r []mail.Address
	if ms := angleAddr.FindAllStringSubmatchIndex(v, -1); len(ms) > 0 {
		prev := 0
		for _, m := range ms {
			name := strings.TrimSpace(v[prev:m[0]])
			name = strings.TrimLeft(name, ",; ")
			name = strings.Trim(strings.TrimSpace(name), `"`)
			if d, err := dec.DecodeHeader(name); err == nil {
				name = d
			}
			r = append(r, mail.Address{Name: name, Address: Normalize(v[m[2]:m[3]])})
			prev = m[1]
		}
		return r
	}
	for _, a := range bareAddr.FindAllString(v, -1) {
		r = append(r, mail.Address{Address: Normalize(a)})
	}
	return r
}
