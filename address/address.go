// Package address is imipd's one vocabulary for mail and calendar
// addresses (docs/rules.md "Users and addresses"): the canonical form every layer
// compares (Normalize), the domain (Domain) and the subaddress rule that
// maps bob+detail@example.test to bob@example.test (Base), and the one
// lenient parser of address-list header values (ParseList).
//
// It is pure and a leaf: itip, calstore and filter all import it, so an
// address is spelled one way wherever it is stored, looked up or compared.
package address

import "strings"

// DefaultDelimiter is the default recipient delimiter, as Dovecot's and
// Postfix's recipient_delimiter: bob+detail@example.test is bob's.
const DefaultDelimiter = "+"

// Normalize returns the canonical form of a mail or calendar address:
// surrounding space, enclosing angle brackets (an SMTP path, also as a
// client wrapped it once more than its library strips, STYLE "Known
// limits") and a "mailto:" prefix of any case (RFC 5545 §3.3.3
// CAL-ADDRESS) removed, as often as they nest, and lower-cased. Local parts
// are compared without case too: no mail system in use tells Bob from bob.
// Normalize(Normalize(a)) is Normalize(a), so layers may normalise again.
func Normalize(s string) string {
	for {
		prev := s
		s = strings.TrimSpace(s)
		if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
			s = s[1 : len(s)-1]
		}
		if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
			s = s[7:]
		}
		if s == prev {
			return strings.ToLower(s)
		}
	}
}

// Domain returns the lower-cased domain of an address ("" without '@').
func Domain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// Base returns a normalised address without its subaddress: the local part
// cut at the first character that is in delimiters, as Postfix's and
// Dovecot's recipient_delimiter do (several characters: each one is a
// delimiter, the first found counts). It returns the address unchanged
// when delimiters is empty, when there is no '@', or when the local part
// starts with a delimiter (there is no user to cut back to).
//
// A caller looks the whole address up first and Base second, as Postfix
// does: a user may have a delimiter in its own name (first-last@).
func Base(addr, delimiters string) string {
	at := strings.LastIndexByte(addr, '@')
	if delimiters == "" || at <= 0 {
		return addr
	}
	i := strings.IndexAny(addr[:at], delimiters)
	if i <= 0 {
		return addr
	}
	return addr[:i] + addr[at:]
}
