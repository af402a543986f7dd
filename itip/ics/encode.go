package ics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-ical"
)

// propOrder gives the properties written first, in this order; the rest
// follow sorted by name. Several properties of one name keep their stored
// order. PRODID, VERSION, CALSCALE, METHOD (VCALENDAR) and TZID (VTIMEZONE)
// lead so that the output reads conventionally; they never occur together
// with the event properties.
var propOrder = func() map[string]int {
	names := []string{
		ical.PropProductID, ical.PropVersion, ical.PropCalendarScale, ical.PropMethod,
		ical.PropTimezoneID,
		ical.PropUID, ical.PropSequence, ical.PropDateTimeStamp,
		ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration, ical.PropRecurrenceID,
		ical.PropRecurrenceRule, ical.PropRecurrenceDates, "EXRULE", ical.PropExceptionDates,
		ical.PropOrganizer, ical.PropAttendee,
	}
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}()

const maxEncodeDepth = 10000

// Encode writes cal as RFC 5545 text: CRLF line ends; lines folded at 75
// octets without splitting a UTF-8 sequence; parameter values quoted when
// they contain ':' ';' or ','; '^', '"' and line breaks in parameter values
// escaped per RFC 6868; a raw line break in a property value written as the
// TEXT escape "\n". The output is deterministic: BEGIN, then PRODID,
// VERSION, CALSCALE, METHOD, TZID, UID, SEQUENCE, DTSTAMP, DTSTART, DTEND,
// DURATION, RECURRENCE-ID, RRULE, RDATE, EXRULE, EXDATE, ORGANIZER, ATTENDEE,
// then the other properties sorted by name (several properties of one name
// keep their stored order), parameters sorted by name, then the
// sub-components in stored order, then END. Encode does not check iCalendar
// semantics (required properties and the like); it fails only on names that
// cannot be written, on a nil calendar and on write errors.
func Encode(w io.Writer, cal *ical.Calendar) error {
	if cal == nil || cal.Component == nil {
		return errors.New("ics: encode: nil calendar")
	}
	if b, ok := w.(*bytes.Buffer); ok {
		e := encoder{w: b} // Marshal: no second buffer
		return e.component(cal.Component, 0)
	}
	bw := bufio.NewWriter(w)
	e := encoder{w: bw}
	if err := e.component(cal.Component, 0); err != nil {
		return err
	}
	return bw.Flush()
}

// Marshal returns Encode's output, or nil if Encode fails (see Encode; this
// happens only for calendars with unwritable names, never for the result of
// Decode).
func Marshal(cal *ical.Calendar) []byte {
	b := marshalBufs.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= 1<<20 {
			b.Reset()
			marshalBufs.Put(b)
		}
	}()
	if err := Encode(b, cal); err != nil {
		return nil
	}
	return bytes.Clone(b.Bytes()) // one allocation of the final size
}

// marshalBufs are Marshal's scratch buffers: a big meeting is written again
// with every reply, and growing a buffer to its size each time cost more
// than the copy out.
var marshalBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type encoder struct {
	w interface {
		Write([]byte) (int, error)
		WriteString(string) (int, error)
	}
	line   bytes.Buffer
	pnames []string // scratch for prop
}

func (e *encoder) component(c *ical.Component, depth int) error {
	if c == nil {
		return errors.New("ics: encode: nil component")
	}
	if depth > maxEncodeDepth {
		return errors.New("ics: encode: components nested too deeply")
	}
	if !isName(c.Name) {
		return fmt.Errorf("ics: encode: bad component name %q", c.Name)
	}
	name := strings.ToUpper(c.Name)
	if err := e.simple("BEGIN", name); err != nil {
		return err
	}
	names := make([]rankedName, 0, len(c.Props))
	for n := range c.Props {
		r, ok := propOrder[strings.ToUpper(n)]
		if !ok {
			r = len(propOrder)
		}
		names = append(names, rankedName{n, r})
	}
	sort.Slice(names, func(i, j int) bool {
		if names[i].rank != names[j].rank {
			return names[i].rank < names[j].rank
		}
		return names[i].name < names[j].name
	})
	for _, rn := range names {
		n := rn.name
		for i := range c.Props[n] {
			if err := e.prop(n, &c.Props[n][i]); err != nil {
				return err
			}
		}
	}
	for _, child := range c.Children {
		if err := e.component(child, depth+1); err != nil {
			return err
		}
	}
	return e.simple("END", name)
}

// rankedName is a property name with its place in propOrder (after all of
// them when not listed).
type rankedName struct {
	name string
	rank int
}

func (e *encoder) simple(name, value string) error {
	e.line.Reset()
	e.line.WriteString(name)
	e.line.WriteByte(':')
	e.line.WriteString(value)
	return e.flushLine()
}

func (e *encoder) prop(key string, p *ical.Prop) error {
	name := p.Name
	if name == "" {
		name = key
	}
	name = strings.ToUpper(name)
	if !isName(name) {
		return fmt.Errorf("ics: encode: bad property name %q", name)
	}
	if name == "BEGIN" || name == "END" {
		return fmt.Errorf("ics: encode: %s stored as a property", name)
	}
	e.line.Reset()
	e.line.WriteString(name)
	pnames := e.pnames[:0]
	for n, vs := range p.Params {
		if len(vs) > 0 {
			pnames = append(pnames, n)
		}
	}
	e.pnames = pnames
	if len(pnames) > 1 {
		sort.Strings(pnames)
	}
	for _, pn := range pnames {
		if !isName(pn) {
			return fmt.Errorf("ics: encode: property %s: bad parameter name %q", name, pn)
		}
		e.line.WriteByte(';')
		e.line.WriteString(strings.ToUpper(pn))
		e.line.WriteByte('=')
		for i, v := range p.Params[pn] {
			if i > 0 {
				e.line.WriteByte(',')
			}
			cls := paramClass(v)
			if cls&classEscape != 0 {
				v = paramEscaper.Replace(v)
			}
			if cls&classQuote != 0 {
				e.line.WriteByte('"')
				e.line.WriteString(v)
				e.line.WriteByte('"')
			} else {
				e.line.WriteString(v)
			}
		}
	}
	e.line.WriteByte(':')
	e.line.WriteString(escapeLineBreaks(p.Value))
	return e.flushLine()
}

var paramEscaper = strings.NewReplacer("^", "^^", "\r\n", "^n", "\r", "^n", "\n", "^n", `"`, "^'")

// Character classes of parameter values: classEscape for what RFC 6868
// escapes (paramEscaper), classQuote for what needs a quoted value.
const (
	classEscape = 1 << iota
	classQuote
)

var paramClasses = func() (t [256]uint8) {
	for _, c := range "^\r\n\"" {
		t[c] |= classEscape
	}
	for _, c := range ":;," {
		t[c] |= classQuote
	}
	return t
}()

// paramClass is the union of the classes of v's bytes, in one pass (the
// escapes RFC 6868 adds never add a byte of classQuote).
func paramClass(v string) uint8 {
	var cls uint8
	for i := 0; i < len(v); i++ {
		cls |= paramClasses[v[i]]
	}
	return cls
}

var breakEscaper = strings.NewReplacer("\r\n", `\n`, "\r", `\n`, "\n", `\n`)

func escapeLineBreaks(v string) string {
	if strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, '\r') < 0 {
		return v
	}
	return breakEscaper.Replace(v)
}

// maxLineOctets is the longest line RFC 5545 3.1 allows, without the CRLF.
const maxLineOctets = 75

// flushLine writes e.line folded (RFC 5545 3.1): every physical line at most
// 75 octets, continuation lines start with a space, folds never split a
// UTF-8 sequence (unless the data is not UTF-8 and a run of continuation
// bytes is longer than a line).
func (e *encoder) flushLine() error {
	b := e.line.Bytes()
	limit := maxLineOctets
	for {
		if len(b) <= limit {
			e.w.Write(b)
			_, err := e.w.WriteString("\r\n")
			return err
		}
		n := limit
		for k := 0; k < 3 && n > 0 && b[n]&0xC0 == 0x80; k++ {
			n--
		}
		if b[n]&0xC0 == 0x80 {
			n = limit
		}
		e.w.Write(b[:n])
		if _, err := e.w.WriteString("\r\n "); err != nil {
			return err
		}
		b = b[n:]
		limit = maxLineOctets - 1
	}
}
