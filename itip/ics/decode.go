package ics

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-ical"
)

var utf8BOM = []byte("\xef\xbb\xbf")

// Decode parses the first VCALENDAR object in data. It never panics. Errors
// are ErrSyntax (wrapped, with detail) or *LimitError. Zero fields of lim
// mean the defaults of DefaultLimits.
func Decode(data []byte, lim Limits) (cal *ical.Calendar, err error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, &LimitError{ReasonCalendarSize}
	}
	defer func() {
		// Belt and braces: the scanner below is written not to panic, but a
		// decoder of untrusted input must never take the daemon down.
		if r := recover(); r != nil {
			cal, err = nil, fmt.Errorf("%w: internal decoder error: %v", ErrSyntax, r)
		}
	}()
	data = bytes.TrimPrefix(data, utf8BOM)
	// The decoder and its scratch (the stack and the properties of the
	// open components) come from a pool; what the calendar keeps is
	// allocated for it.
	d := decoders.Get().(*decoder)
	// One copy of the input: every name and value that needs no change is
	// a substring of it, so a line costs no allocation of its own.
	d.lines = lineReader{data: string(data), max: lim.MaxLineBytes, buf: d.lines.buf[:0]}
	d.lim, d.nlines = lim, bytes.Count(data, []byte{'\n'})+1
	// Every line is a property but those of BEGIN and END: the first
	// BEGIN:VCALENDAR, the BEGINs at a line start and their ENDs (a hint
	// only: take and append grow past it). One array holds a small
	// calendar's properties (take), one its components (newComp).
	begins := bytes.Count(data, []byte("\nBEGIN:"))
	nprops := max(d.nlines-2-2*begins, 1)
	if begins+1 <= len(smallCal{}.comps) {
		d.small = new(smallCal)
		d.comps = d.small.comps[:0]
	} else {
		d.comps = make([]ical.Component, 0, min(begins+1, 64))
	}
	d.arena = make([]ical.Prop, 0, min(nprops, 1024))
	if cap(d.props) < min(nprops, 64) {
		d.props = make([]ical.Prop, 0, min(nprops, 64))
	}
	d.stack = d.stack0[:0]
	cal, err = d.decode()
	d.release()
	return cal, err
}

// smallCal is the storage of the most common calendar, a VCALENDAR with one
// VEVENT: one allocation for the Calendar, its components and the root's
// list of children (an append past it copies).
type smallCal struct {
	cal      ical.Calendar
	comps    [2]ical.Component
	children [1]*ical.Component
}

// decoders keep a decoder's scratch from one Decode to the next (a
// decoder that panicked is not returned).
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// release returns d to decoders without anything of the calendar it read.
func (d *decoder) release() {
	if cap(d.props) > 256 || cap(d.lines.buf) > 64<<10 {
		return
	}
	clear(d.props[:cap(d.props)])
	clear(d.stack0[:])
	clear(d.count)
	*d = decoder{props: d.props[:0], count: d.count, lines: lineReader{buf: d.lines.buf[:0]}}
	decoders.Put(d)
}

// lineReader returns unfolded content lines (RFC 5545 3.1).
type lineReader struct {
	data string
	pos  int
	max  int
	buf  []byte
	line int // number of the physical line last read, for messages
}

// next returns the next unfolded line, or ok=false at the end of data: a
// substring of data, or a new string when the line was folded.
func (r *lineReader) next() (line string, ok bool, err error) {
	if r.pos >= len(r.data) {
		return "", false, nil
	}
	r.buf = r.buf[:0]
	for first := true; ; first = false {
		var phys string
		r.line++
		if i := strings.IndexByte(r.data[r.pos:], '\n'); i < 0 {
			phys = r.data[r.pos:]
			r.pos = len(r.data)
		} else {
			phys = r.data[r.pos : r.pos+i]
			r.pos += i + 1
		}
		phys = strings.TrimSuffix(phys, "\r")
		if len(r.buf)+len(phys) > r.max {
			return "", false, &LimitError{ReasonLineLength}
		}
		// A line break followed by a space or tab is a fold.
		folded := r.pos < len(r.data) && (r.data[r.pos] == ' ' || r.data[r.pos] == '\t')
		if first && !folded {
			return phys, true, nil
		}
		r.buf = append(r.buf, phys...)
		if folded {
			r.pos++
			continue
		}
		return string(r.buf), true, nil
	}
}

// frame is a component being read; its properties are props[start:] of
// the decoder until its END.
type frame struct {
	comp                       *ical.Component
	start                      int
	props, attendees, recDates int
}

type decoder struct {
	lines  lineReader
	lim    Limits
	stack  []frame
	ncomp  int
	props  []ical.Prop      // properties of the open components, innermost last
	arena  []ical.Prop      // backing store setProps hands out, len = used
	nlines int              // physical lines in the input, to size arena
	count  map[string]int   // scratch of setProps for many properties
	comps  []ical.Component // backing store newComp hands out
	small  *smallCal        // the calendar's storage when it is small
	stack0 [4]frame         // the first stack
}

// newComp returns a new component: the next element of one array sized by
// the BEGIN lines of the input, so a small calendar's components are one
// allocation.
func (d *decoder) newComp(name string) *ical.Component {
	if len(d.comps) == cap(d.comps) {
		return &ical.Component{Name: name}
	}
	d.comps = append(d.comps, ical.Component{Name: name})
	return &d.comps[len(d.comps)-1]
}

// smallProps is the number of properties up to which setProps counts names
// by scanning instead of with a map.
const smallProps = 32

// take returns n unused elements of the arena as a slice of length 0 and
// capacity n; a new arena is sized by the lines of the input, so a small
// calendar's properties share one array.
func (d *decoder) take(n int) []ical.Prop {
	if cap(d.arena)-len(d.arena) < n {
		size := max(n, min(d.nlines, 1024))
		d.arena = make([]ical.Prop, 0, size)
	}
	start := len(d.arena)
	d.arena = d.arena[:start+n]
	return d.arena[start : start : start+n]
}

// setProps gives c its properties ps (in the order read): one backing
// array for all of them, each name's lines a slice of it whose capacity
// ends where the next name's begin, so an append by a caller copies
// instead of overwriting a neighbour.
func (d *decoder) setProps(c *ical.Component, ps []ical.Prop) {
	if len(ps) <= smallProps {
		// Few properties: group them by scanning, one map write per name.
		names := 0
		for i := range ps {
			if !seenBefore(ps, i) {
				names++
			}
		}
		c.Props = make(ical.Props, names)
		for i := range ps {
			if seenBefore(ps, i) {
				continue
			}
			n := 1
			for j := i + 1; j < len(ps); j++ {
				if ps[j].Name == ps[i].Name {
					n++
				}
			}
			group := d.take(n)
			for j := i; j < len(ps); j++ {
				if ps[j].Name == ps[i].Name {
					group = append(group, ps[j])
				}
			}
			c.Props[ps[i].Name] = group
		}
		return
	}
	if d.count == nil {
		d.count = make(map[string]int)
	}
	clear(d.count)
	for i := range ps {
		d.count[ps[i].Name]++
	}
	c.Props = make(ical.Props, len(d.count))
	for i := range ps {
		name := ps[i].Name
		group, ok := c.Props[name]
		if !ok {
			group = d.take(d.count[name])
		}
		c.Props[name] = append(group, ps[i])
	}
}

// seenBefore reports whether ps[i]'s name occurs in ps[:i].
func seenBefore(ps []ical.Prop, i int) bool {
	for j := 0; j < i; j++ {
		if ps[j].Name == ps[i].Name {
			return true
		}
	}
	return false
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, d.lines.line, fmt.Sprintf(format, args...))
}

func (d *decoder) decode() (*ical.Calendar, error) {
	var root *ical.Component
	for {
		raw, ok, err := d.lines.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if len(strings.TrimSpace(raw)) == 0 {
			continue
		}
		// Two byte searches are much cheaper than IndexAny's set.
		i := strings.IndexByte(raw, '\r')
		if i < 0 {
			i = strings.IndexByte(raw, 0)
		}
		if i >= 0 {
			return nil, d.errorf("control character %q in content line", raw[i])
		}
		s := raw
		if !utf8.ValidString(raw) {
			s = strings.ToValidUTF8(raw, "\uFFFD")
		}
		prop, err := parseContentLine(s)
		if err != nil {
			return nil, d.errorf("%s", err)
		}
		switch prop.Name {
		case "BEGIN":
			name := strings.ToUpper(strings.TrimSpace(prop.Value))
			if !isName(name) {
				return nil, d.errorf("bad component name %q", prop.Value)
			}
			if len(d.stack) == 0 && name != ical.CompCalendar {
				return nil, d.errorf("expected BEGIN:VCALENDAR, got BEGIN:%s", name)
			}
			d.ncomp++
			if d.ncomp > d.lim.MaxComponents {
				return nil, &LimitError{ReasonComponents}
			}
			if len(d.stack) >= d.lim.MaxDepth {
				return nil, &LimitError{ReasonDepth}
			}
			comp := d.newComp(name)
			if len(d.stack) == 0 {
				root = comp
			} else {
				parent := d.stack[len(d.stack)-1].comp
				if parent.Children == nil && d.small != nil && parent == &d.small.comps[0] {
					parent.Children = d.small.children[:0]
				}
				parent.Children = append(parent.Children, comp)
			}
			d.stack = append(d.stack, frame{comp: comp, start: len(d.props)})
		case "END":
			if len(d.stack) == 0 {
				return nil, d.errorf("END without BEGIN")
			}
			f := d.stack[len(d.stack)-1]
			if name := strings.TrimSpace(prop.Value); !strings.EqualFold(name, f.comp.Name) {
				return nil, d.errorf("END:%s inside %s", name, f.comp.Name)
			}
			d.setProps(f.comp, d.props[f.start:])
			clear(d.props[f.start:])
			d.props = d.props[:f.start]
			d.stack = d.stack[:len(d.stack)-1]
			if len(d.stack) == 0 {
				// The first VCALENDAR is complete; ignore what follows.
				if d.small != nil {
					d.small.cal.Component = root
					return &d.small.cal, nil
				}
				return &ical.Calendar{Component: root}, nil
			}
		default:
			if len(d.stack) == 0 {
				return nil, d.errorf("expected BEGIN:VCALENDAR, got %s", prop.Name)
			}
			f := &d.stack[len(d.stack)-1]
			f.props++
			if f.props > d.lim.MaxProperties {
				return nil, &LimitError{ReasonProperties}
			}
			switch prop.Name {
			case ical.PropAttendee:
				f.attendees++
				if f.attendees > d.lim.MaxAttendees {
					return nil, &LimitError{ReasonAttendees}
				}
			case ical.PropExceptionDates, ical.PropRecurrenceDates:
				f.recDates += strings.Count(prop.Value, ",") + 1
				if f.recDates > d.lim.MaxRecurrenceDates {
					return nil, &LimitError{ReasonRecurrenceDates}
				}
			}
			d.props = append(d.props, prop)
		}
	}
	if len(d.stack) > 0 {
		return nil, fmt.Errorf("%w: unexpected end of data inside %s", ErrSyntax, d.stack[len(d.stack)-1].comp.Name)
	}
	return nil, fmt.Errorf("%w: no VCALENDAR found", ErrSyntax)
}

// isNameByte reports whether c may appear in a property, parameter or
// component name. RFC 5545 allows ALPHA, DIGIT and '-'; '_' is accepted
// because some producers use it in X- names.
func isNameByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// parseContentLine parses one unfolded line (RFC 5545 3.1):
// name *(";" param) ":" value.
func parseContentLine(s string) (ical.Prop, error) {
	i := scanName(s, 0)
	if i == 0 {
		return ical.Prop{}, fmt.Errorf("bad or empty property name")
	}
	prop := ical.Prop{Name: upperName(s[:i])}
	if i < len(s) && s[i] == ';' {
		// Params stays nil on a line without parameters: go-ical reads a
		// nil map as empty, and imipd copies a property before it changes
		// one (cloneParams makes a map of its own).
		prop.Params = make(ical.Params, 1)
	}
	for i < len(s) && s[i] == ';' {
		i++
		j := i
		i = scanName(s, i)
		if i == j {
			return ical.Prop{}, fmt.Errorf("property %s: bad or empty parameter name", prop.Name)
		}
		pname := upperName(s[j:i])
		if i >= len(s) || s[i] != '=' {
			return ical.Prop{}, fmt.Errorf("property %s: parameter %s without '='", prop.Name, pname)
		}
		i++
		for {
			var v string
			if i < len(s) && s[i] == '"' {
				end := strings.IndexByte(s[i+1:], '"')
				if end < 0 {
					return ical.Prop{}, fmt.Errorf("property %s: parameter %s: unterminated quoted value", prop.Name, pname)
				}
				v = s[i+1 : i+1+end]
				i += end + 2
				// Exchange has been seen to write
				// DTSTART;TZID="W. Europe Standard Time:20200609T090000":
				// a quoted last parameter that swallowed the value.
				if i == len(s) {
					if k := strings.LastIndexByte(v, ':'); k >= 0 {
						prop.Params[pname] = append(prop.Params[pname], cleanParam(unescapeParam(v[:k])))
						prop.Value = cleanValue(v[k+1:])
						return prop, nil
					}
				}
			} else {
				end := indexSep(s[i:])
				if end < 0 {
					return ical.Prop{}, fmt.Errorf("property %s: no ':' after parameters", prop.Name)
				}
				v = s[i : i+end]
				i += end
				// Old Outlook writes SENT-BY=mailto:x@y unquoted; read the
				// whole URI when another separator follows it.
				if s[i] == ':' && strings.EqualFold(v, "mailto") {
					if end2 := indexSep(s[i+1:]); end2 >= 0 && s[i+1+end2] != ',' {
						v = s[i-len(v) : i+1+end2]
						i += 1 + end2
					}
				}
			}
			prop.Params[pname] = append(prop.Params[pname], cleanParam(unescapeParam(v)))
			if i >= len(s) {
				return ical.Prop{}, fmt.Errorf("property %s: no ':' after parameters", prop.Name)
			}
			if s[i] == ',' {
				i++
				continue
			}
			if s[i] != ';' && s[i] != ':' {
				return ical.Prop{}, fmt.Errorf("property %s: parameter %s: unexpected %q after value", prop.Name, pname, s[i])
			}
			break
		}
	}
	if i >= len(s) || s[i] != ':' {
		return ical.Prop{}, fmt.Errorf("property %s: missing ':'", prop.Name)
	}
	prop.Value = cleanValue(s[i+1:])
	return prop, nil
}

// indexSep is the index of the first ';', ':' or ',' in s, -1 if none: the
// end of an unquoted parameter value (strings.IndexAny builds its set on
// every call).
func indexSep(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ';' || c == ':' || c == ',' {
			return i
		}
	}
	return -1
}

// scanName returns the end of the name starting at s[i:].
func scanName(s string, i int) int {
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	return i
}

// upperName is name (made of name bytes) upper-cased; one that is already
// upper-case, as nearly every name is, is returned as it is without a call
// to strings.ToUpper.
func upperName(name string) string {
	for i := 0; i < len(name); i++ {
		if 'a' <= name[i] && name[i] <= 'z' {
			return strings.ToUpper(name)
		}
	}
	return name
}

// unescapeParam decodes RFC 6868 caret escapes: ^n and ^N newline, ^^ caret,
// ^' double quote. Other carets are kept as they are.
func unescapeParam(v string) string {
	if !strings.Contains(v, "^") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '^' && i+1 < len(v) {
			switch v[i+1] {
			case 'n', 'N':
				b.WriteByte('\n')
				i++
				continue
			case '^':
				b.WriteByte('^')
				i++
				continue
			case '\'':
				b.WriteByte('"')
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
