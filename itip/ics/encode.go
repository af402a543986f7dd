package ics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-ical"
)

// propRank is a property's place among the properties written first, in
// this order; the rest (rank 18) follow sorted by name. Several properties
// of one name keep their stored order. PRODID, VERSION, CALSCALE, METHOD
// (VCALENDAR) and TZID (VTIMEZONE) lead so that the output reads
// conventionally; they never occur together with the event properties. (A
// switch: cheaper than hashing the name for a map.)
func propRank(name string) int {
	switch name {
	case ical.PropProductID:
		return 0
	case ical.PropVersion:
		return 1
	case ical.PropCalendarScale:
		return 2
	case ical.PropMethod:
		return 3
	case ical.PropTimezoneID:
		return 4
	case ical.PropUID:
		return 5
	case ical.PropSequence:
		return 6
	case ical.PropDateTimeStamp:
		return 7
	case ical.PropDateTimeStart:
		return 8
	case ical.PropDateTimeEnd:
		return 9
	case ical.PropDuration:
		return 10
	case ical.PropRecurrenceID:
		return 11
	case ical.PropRecurrenceRule:
		return 12
	case ical.PropRecurrenceDates:
		return 13
	case "EXRULE":
		return 14
	case ical.PropExceptionDates:
		return 15
	case ical.PropOrganizer:
		return 16
	case ical.PropAttendee:
		return 17
	}
	return 18
}

const maxEncodeDepth = 10000

// Encode writes cal as RFC 5545 text: CRLF line ends; lines folded at 75
// octets without splitting a UTF-8 sequence; every value written so that it
// stays one value (paramWire, valueWire: parameter values quoted when they
// contain ':' ';' or ','; '^', '"' and line breaks in parameter values
// escaped per RFC 6868; a line break in a property value written as the
// TEXT escape "\n"; control characters removed). It is the one iCalendar
// writer of imipd: the store, the outbox, export and the feed use it, and
// CalDAV writes Escaped's copy with go-ical's encoder. The output is deterministic: BEGIN, then PRODID,
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
	e := encoders.Get().(*encoder)
	defer e.release()
	if b, ok := w.(*bytes.Buffer); ok {
		e.w = b // Marshal: no second buffer
		return e.component(cal.Component, 0)
	}
	bw := bufio.NewWriter(w)
	e.w = bw
	if err := e.component(cal.Component, 0); err != nil {
		return err
	}
	return bw.Flush()
}

// encoders keep an encoder's scratch (its line and name lists) from one
// Encode to the next.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// release returns e to encoders, unless a huge line grew its scratch.
func (e *encoder) release() {
	e.w = nil
	if e.line.Cap() > 64<<10 {
		return
	}
	e.line.Reset()
	clear(e.ranked[:cap(e.ranked)])
	e.ranked = e.ranked[:0]
	clear(e.pnames[:cap(e.pnames)])
	e.pnames = e.pnames[:0]
	encoders.Put(e)
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
	pnames []string     // scratch for prop
	ranked []rankedName // scratch for component, a stack: nested components use the part after their parent's
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
	name := upperName(c.Name)
	if err := e.simple("BEGIN", name); err != nil {
		return err
	}
	base := len(e.ranked)
	for n := range c.Props {
		e.ranked = append(e.ranked, rankedName{n, propRank(upperName(n))})
	}
	names := e.ranked[base:]
	defer func() { e.ranked = e.ranked[:base] }()
	slices.SortFunc(names, func(a, b rankedName) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.name, b.name)
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

// rankedName is a property name with its propRank.
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
	name = upperName(name)
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
		e.line.WriteString(upperName(pn))
		e.line.WriteByte('=')
		for i, v := range p.Params[pn] {
			if i > 0 {
				e.line.WriteByte(',')
			}
			v, quote := paramWire(v)
			if quote {
				e.line.WriteByte('"')
				e.line.WriteString(v)
				e.line.WriteByte('"')
			} else {
				e.line.WriteString(v)
			}
		}
	}
	e.line.WriteByte(':')
	e.line.WriteString(valueWire(p.Value))
	return e.flushLine()
}

// Every parameter and property value goes through paramWire or valueWire
// on its way out, and through cleanParam or cleanValue on its way in
// (decode.go), so that a value stays one value wherever it is written: no
// value can end its line, open a parameter, a property or a component, or
// be split by a reader that breaks lines on more than CRLF (Python's
// str.splitlines, which python-icalendar, khal and vdirsyncer use, also
// breaks on VT, FF, FS, GS, RS, NEL, U+2028 and U+2029).
//
//   - Control characters (RFC 5545 §3.1 CONTROL: U+0000–U+0008,
//     U+000A–U+001F, U+007F) other than a line break are removed; HTAB
//     stays.
//   - A line break (CRLF, CR, LF, NEL, U+2028, U+2029) in a property value
//     becomes the TEXT escape "\n" (RFC 5545 §3.3.11); in a parameter value
//     it becomes LF, written as RFC 6868's "^n".
//   - In a parameter value RFC 6868 escapes '^' as "^^" and '"' as "^'"
//     (RFC 5545 has no way to write '"' in a parameter value); a value with
//     ':' ';' or ',' is quoted.

// paramWire returns v as written in a content line (without the quotes)
// and whether it must be quoted.
func paramWire(v string) (string, bool) {
	v = cleanParam(v)
	cls := paramClass(v)
	if cls&classEscape != 0 {
		v = paramEscaper.Replace(v)
	}
	return v, cls&classQuote != 0
}

// valueWire returns a property value as written in a content line.
func valueWire(v string) string { return cleanValue(v) }

var paramEscaper = strings.NewReplacer("^", "^^", "\n", "^n", `"`, "^'")

// Character classes of parameter values: classEscape for what RFC 6868
// escapes (paramEscaper), classQuote for what needs a quoted value.
const (
	classEscape = 1 << iota
	classQuote
)

var paramClasses = func() (t [256]uint8) {
	for _, c := range "^\n\"" {
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

// cleanParam returns a parameter value with every line break as LF and the
// other control characters removed.
func cleanParam(v string) string { return clean(v, "\n") }

// cleanValue returns a property value with every line break as the TEXT
// escape "\n" and the other control characters removed.
func cleanValue(v string) string { return clean(v, `\n`) }

// breakAt returns the length of the line break or control character that
// starts v[i:] (0 if none): 1 for a control character other than HTAB, 2
// for CRLF and NEL (C2 85), 3 for U+2028 and U+2029 (E2 80 A8 / A9).
func breakAt(v string, i int) int {
	switch c := v[i]; {
	case c == '\r' && i+1 < len(v) && v[i+1] == '\n':
		return 2
	case c < 0x20 && c != '\t' || c == 0x7f:
		return 1
	case c == 0xc2 && i+1 < len(v) && v[i+1] == 0x85:
		return 2
	case c == 0xe2 && i+2 < len(v) && v[i+1] == 0x80 && (v[i+2] == 0xa8 || v[i+2] == 0xa9):
		return 3
	}
	return 0
}

// clean replaces each line break of v by nl and removes the other control
// characters (see paramWire). It allocates only when it changes v.
func clean(v, nl string) string {
	i := 0
	for ; i < len(v); i++ {
		// Only these bytes may start what breakAt finds.
		if c := v[i]; c >= 0x20 && c != 0x7f && c != 0xc2 && c != 0xe2 {
			continue
		}
		if n := breakAt(v, i); n > 0 && (nl != "\n" || v[i] != '\n') {
			break
		}
	}
	if i == len(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 8)
	b.WriteString(v[:i])
	for i < len(v) {
		n := breakAt(v, i)
		switch {
		case n == 0:
			b.WriteByte(v[i])
			i++
			continue
		case n > 1 || v[i] == '\r' || v[i] == '\n':
			b.WriteString(nl)
		}
		i += n
	}
	return b.String()
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

// Escaped returns a copy of cal whose parameter and property values are
// already in their written form (paramWire, valueWire: RFC 6868 escapes,
// line breaks as the TEXT escape, no control characters), for code that
// writes a calendar with go-ical's encoder: go-webdav's CalDAV handler
// does for GET and REPORT. That encoder writes values verbatim (a line
// break in a parameter value would start a new property), and it refuses a
// whole calendar over one thing its checks dislike (a '"' in a parameter
// value, a VTIMEZONE without STANDARD or DAYLIGHT, a property it allows
// once given twice, DTEND with DURATION), which cut CalDAV responses off.
// So the copy also leaves out what those checks refuse and a calendar app
// could not use anyway: of a property allowed once only the first (the one
// imipd reads, Props.Get), DURATION beside DTEND (DTEND counts, as at
// intake), components that may not nest where they stand, and a VTIMEZONE
// observance without DTSTART, TZOFFSETTO or TZOFFSETFROM or with a rule no
// zone has (ZoneRuleNever: stored before intake refused it), then a VTIMEZONE
// without TZID or observances (the TZID stays on the times; clients
// resolve it by name). cal is not changed.
func Escaped(cal *ical.Calendar) *ical.Calendar {
	if cal == nil || cal.Component == nil {
		return cal
	}
	c, _ := escapedComp(cal.Component, 0)
	return &ical.Calendar{Component: c}
}

// goICalOnce are, per component, the properties go-ical's encoder allows
// at most once (its checkComponent; "exactly one" ones included).
var goICalOnce = map[string][]string{
	ical.CompCalendar: {ical.PropProductID, ical.PropVersion, ical.PropCalendarScale, ical.PropMethod, ical.PropUID,
		ical.PropLastModified, ical.PropURL, ical.PropRefreshInterval, ical.PropSource, ical.PropColor},
	ical.CompEvent: {ical.PropDateTimeStamp, ical.PropUID, ical.PropDateTimeStart, ical.PropClass, ical.PropCreated,
		ical.PropDescription, ical.PropGeo, ical.PropLastModified, ical.PropLocation, ical.PropOrganizer, ical.PropPriority,
		ical.PropRecurrenceRule, ical.PropSequence, ical.PropStatus, ical.PropSummary, ical.PropTransparency, ical.PropURL,
		ical.PropRecurrenceID, ical.PropDateTimeEnd, ical.PropDuration, ical.PropColor},
	ical.CompTimezone:         {ical.PropTimezoneID, ical.PropLastModified, ical.PropTimezoneURL},
	ical.CompTimezoneStandard: {ical.PropDateTimeStart, ical.PropTimezoneOffsetTo, ical.PropTimezoneOffsetFrom},
	ical.CompTimezoneDaylight: {ical.PropDateTimeStart, ical.PropTimezoneOffsetTo, ical.PropTimezoneOffsetFrom},
}

// goICalChildren are the components go-ical's encoder lets nest in a
// VEVENT or a VTIMEZONE.
var goICalChildren = map[string][]string{
	ical.CompEvent:    {ical.CompAlarm},
	ical.CompTimezone: {ical.CompTimezoneStandard, ical.CompTimezoneDaylight},
}

// escapedComp is Escaped for one component; ok is false when go-ical's
// encoder would refuse the component whatever its values.
func escapedComp(c *ical.Component, depth int) (out *ical.Component, ok bool) {
	out = &ical.Component{Name: c.Name, Props: make(ical.Props, len(c.Props))}
	once := goICalOnce[c.Name]
	for name, ps := range c.Props {
		if len(ps) > 1 && slices.Contains(once, name) {
			ps = ps[:1]
		}
		cp := make([]ical.Prop, len(ps))
		for i, p := range ps {
			cp[i] = ical.Prop{Name: p.Name, Value: valueWire(p.Value), Params: make(ical.Params, len(p.Params))}
			for pn, vs := range p.Params {
				ws := make([]string, len(vs))
				for j, v := range vs {
					ws[j], _ = paramWire(v)
				}
				cp[i].Params[pn] = ws
			}
		}
		out.Props[name] = cp
	}
	if c.Name == ical.CompEvent && len(out.Props[ical.PropDateTimeEnd]) > 0 {
		delete(out.Props, ical.PropDuration)
	}
	allowed, limited := goICalChildren[c.Name]
	if depth < maxEncodeDepth {
		for _, ch := range c.Children {
			if limited && !slices.Contains(allowed, ch.Name) {
				continue
			}
			if e, ok := escapedComp(ch, depth+1); ok {
				out.Children = append(out.Children, e)
			}
		}
	}
	switch c.Name {
	case ical.CompTimezoneStandard, ical.CompTimezoneDaylight:
		for _, name := range once {
			if len(out.Props[name]) == 0 {
				return out, false
			}
		}
		if rr := c.Props.Get(ical.PropRecurrenceRule); rr != nil &&
			ZoneRuleNever(c.Props.Get(ical.PropDateTimeStart).Value, rr.Value) {
			return out, false
		}
	case ical.CompTimezone:
		return out, len(out.Props[ical.PropTimezoneID]) > 0 && len(out.Children) > 0
	}
	return out, true
}
