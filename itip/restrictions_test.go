package itip_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip"
	"imipd/itip/ics"
)

// RFC 5546 §3.2 describes each method for VEVENT with a restriction table:
// every component and property with its presence ("1", "1+", "0 or 1", "0+",
// "0"). The tables below encode the four methods imipd generates. Properties
// a table does not name fall under its "IANA-PROPERTY 0+" and "X-PROPERTY
// 0+" rows; the VCALENDAR's PRODID and VERSION are not in the §3.2 tables
// but are required by RFC 5545 §3.6 (calprops), so they are checked here
// too.

// card is a presence: at least min, at most max (-1: no limit).
type card struct{ min, max int }

var (
	c1     = card{1, 1}  // "1"
	c1more = card{1, -1} // "1+"
	c01    = card{0, 1}  // "0 or 1"
	c0more = card{0, -1} // "0+"
	c0     = card{0, 0}  // "0"
)

func (c card) String() string {
	switch c {
	case c1:
		return "1"
	case c1more:
		return "1+"
	case c01:
		return "0 or 1"
	case c0more:
		return "0+"
	case c0:
		return "0"
	}
	return "?"
}

func (c card) allows(n int) bool { return n >= c.min && (c.max < 0 || n <= c.max) }

// restriction is one method's table for VEVENT.
type restriction struct {
	section  string
	calendar map[string]card // VCALENDAR properties and components
	event    map[string]card // VEVENT properties and components
	status   []string        // allowed STATUS values, nil: any
	// oneAttendee: the only ATTENDEE is the one attendee who sends the
	// message, the same in every component (§3.2.3 "MUST be the address of
	// the Attendee replying", §3.2.6 "MUST be the address of requester").
	oneAttendee bool
}

// calprops are required in every iCalendar object (RFC 5545 §3.6).
func calendarRows(vevent, vtimezone card) map[string]card {
	return map[string]card{
		"PRODID":    c1,
		"VERSION":   c1, // MUST be "2.0"
		"CALSCALE":  c01,
		"METHOD":    c1, // MUST be method
		"VEVENT":    vevent,
		"VTIMEZONE": vtimezone, // MUST be present if any date/time refers to a timezone
		"VFREEBUSY": c0,
		"VJOURNAL":  c0,
		"VTODO":     c0,
	}
}

// every names the VEVENT properties of RFC 5545 §3.6.1 and VALARM, so a table
// built from it says something about each of them.
func every(c card) map[string]card {
	m := map[string]card{}
	for _, p := range []string{
		"ATTACH", "ATTENDEE", "CATEGORIES", "CLASS", "COMMENT", "CONTACT", "CREATED",
		"DESCRIPTION", "DTEND", "DTSTAMP", "DTSTART", "DURATION", "EXDATE", "GEO",
		"LAST-MODIFIED", "LOCATION", "ORGANIZER", "PRIORITY", "RDATE", "RECURRENCE-ID",
		"RELATED-TO", "REQUEST-STATUS", "RESOURCES", "RRULE", "SEQUENCE", "STATUS",
		"SUMMARY", "TRANSP", "UID", "URL", "VALARM",
	} {
		m[p] = c
	}
	return m
}

func with(m map[string]card, rows map[string]card) map[string]card {
	for k, v := range rows {
		m[k] = v
	}
	return m
}

// optional is what most tables allow of the descriptive properties.
var optional = map[string]card{
	"ATTACH": c0more, "CATEGORIES": c0more, "CLASS": c01, "COMMENT": c0more,
	"CONTACT": c0more, "CREATED": c01, "DESCRIPTION": c01, "DTEND": c01,
	"DTSTART": c01, "DURATION": c01, "EXDATE": c0more, "GEO": c01,
	"LAST-MODIFIED": c01, "LOCATION": c01, "PRIORITY": c01, "RDATE": c0more,
	"RECURRENCE-ID": c01, "RELATED-TO": c0more, "RESOURCES": c0more, "RRULE": c01,
	"SEQUENCE": c01, "STATUS": c01, "SUMMARY": c01, "TRANSP": c01, "URL": c01,
}

var restrictions = map[itip.Method]restriction{
	// RFC 5546 §3.2.2 REQUEST. RECURRENCE-ID only for an instance; SEQUENCE
	// MUST be present if greater than 0; SUMMARY "can be null";
	// STATUS MAY be one of TENTATIVE/CONFIRMED; REQUEST-STATUS 0.
	itip.Request: {
		section:  "RFC 5546 §3.2.2",
		calendar: calendarRows(c1more, c0more),
		event: with(with(every(c0), optional), map[string]card{
			"ATTENDEE":       c1more,
			"DTSTAMP":        c1,
			"DTSTART":        c1,
			"ORGANIZER":      c1,
			"SUMMARY":        c1,
			"UID":            c1,
			"REQUEST-STATUS": c0,
			"VALARM":         c0more,
		}),
		status: []string{"TENTATIVE", "CONFIRMED"},
	},
	// RFC 5546 §3.2.3 REPLY. ATTENDEE "MUST be the address of the Attendee
	// replying"; UID of the original REQUEST; SEQUENCE, if non-zero, MUST
	// be the sequence number of the original REQUEST; RECURRENCE-ID only
	// for an instance; VALARM 0; VTIMEZONE 0 or 1.
	itip.Reply: {
		section:  "RFC 5546 §3.2.3",
		calendar: calendarRows(c1more, c01),
		event: with(with(every(c0), optional), map[string]card{
			"ATTENDEE":       c1,
			"DTSTAMP":        c1,
			"ORGANIZER":      c1,
			"UID":            c1,
			"REQUEST-STATUS": c0more,
			"VALARM":         c0,
		}),
		oneAttendee: true,
	},
	// RFC 5546 §3.2.6 REFRESH: exactly one VEVENT with ATTENDEE ("MUST be
	// the address of requester"), DTSTAMP, ORGANIZER, UID; COMMENT 0+,
	// RECURRENCE-ID 0 or 1; every other property and VALARM 0.
	itip.Refresh: {
		section:  "RFC 5546 §3.2.6",
		calendar: calendarRows(c1, c01),
		event: with(every(c0), map[string]card{
			"ATTENDEE":      c1,
			"DTSTAMP":       c1,
			"ORGANIZER":     c1,
			"UID":           c1,
			"COMMENT":       c0more,
			"RECURRENCE-ID": c01,
		}),
		oneAttendee: true,
	},
	// RFC 5546 §3.2.8 DECLINECOUNTER: ATTENDEE 1+, DTSTAMP, ORGANIZER,
	// SEQUENCE ("MUST echo the original SEQUENCE number"), UID ("MUST echo
	// original UID"); RECURRENCE-ID only for an instance; REQUEST-STATUS
	// 0+; STATUS MAY be one of TENTATIVE/CONFIRMED; VALARM 0.
	itip.DeclineCounter: {
		section:  "RFC 5546 §3.2.8",
		calendar: calendarRows(c1more, c01),
		event: with(with(every(c0), optional), map[string]card{
			"ATTENDEE":       c1more,
			"DTSTAMP":        c1,
			"ORGANIZER":      c1,
			"SEQUENCE":       c1,
			"UID":            c1,
			"REQUEST-STATUS": c0more,
			"VALARM":         c0,
		}),
		status: []string{"TENTATIVE", "CONFIRMED"},
	},
}

// count returns how often a property or component occurs in c.
func count(c *ical.Component, name string) int {
	n := len(c.Props[name])
	for _, ch := range c.Children {
		if ch.Name == name {
			n++
		}
	}
	return n
}

// names lists the property and component names that occur in c.
func names(c *ical.Component) []string {
	var out []string
	for k, ps := range c.Props {
		if len(ps) > 0 {
			out = append(out, k)
		}
	}
	for _, ch := range c.Children {
		if !slices.Contains(out, ch.Name) {
			out = append(out, ch.Name)
		}
	}
	slices.Sort(out)
	return out
}

// reporter is the part of testing.T the checker uses, so its own test can
// record what it reports.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// recorder collects errors instead of failing.
type recorder struct{ errs []string }

func (r *recorder) Helper()                      {}
func (r *recorder) Logf(string, ...any)          {}
func (r *recorder) Errorf(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }

func checkRows(t reporter, where string, c *ical.Component, rows map[string]card, section string) {
	t.Helper()
	for name, want := range rows {
		if n := count(c, name); !want.allows(n) {
			t.Errorf("%s: %s occurs %d times, %s says %s", where, name, n, section, want)
		}
	}
	for _, name := range names(c) {
		if _, listed := rows[name]; !listed && !strings.HasPrefix(name, "X-") {
			// IANA-PROPERTY / IANA-COMPONENT 0+: allowed, but imipd never
			// writes one of its own, so it must have come from a stored copy.
			t.Logf("%s: %s not in the %s table (IANA-PROPERTY 0+)", where, name, section)
		}
	}
}

// checkRestrictions checks cal against RFC 5546's restriction table for
// method (VEVENT), and the rules the tables state in words: the METHOD
// value, VERSION 2.0, one UID for all components, DTEND and DURATION not
// both, STATUS values, at most one component per RECURRENCE-ID, one
// answering attendee for REPLY and REFRESH, and a VTIMEZONE for every TZID
// used.
func checkRestrictions(t reporter, method itip.Method, cal *ical.Calendar) {
	t.Helper()
	r, ok := restrictions[method]
	if !ok {
		t.Errorf("no restriction table for %s", method)
		return
	}
	if cal == nil || cal.Component == nil {
		t.Errorf("%s: nil calendar", method)
		return
	}
	if cal.Name != ical.CompCalendar {
		t.Errorf("%s: top component %s, want VCALENDAR", method, cal.Name)
	}
	checkRows(t, "VCALENDAR", cal.Component, r.calendar, r.section)
	// What imipd sends must pass its own intake (validate.go): a peer
	// running imipd would otherwise refuse it.
	if _, err := itip.ParseMessage(cal); err != nil {
		t.Errorf("%s: imipd's own intake refuses it: %v", method, err)
	}
	if p := cal.Props.Get(ical.PropMethod); p == nil || p.Value != string(method) {
		t.Errorf("VCALENDAR: METHOD %v, %s says MUST be %q", p, r.section, method)
	}
	if p := cal.Props.Get(ical.PropVersion); p == nil || p.Value != "2.0" {
		t.Errorf("VCALENDAR: VERSION %v, MUST be \"2.0\" (RFC 5545 §3.7.4)", p)
	}
	zones := map[string]bool{}
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			zones[c.Props.Get(ical.PropTimezoneID).Value] = true
		}
	}
	uid := ""
	attendee := ""
	rids := map[string]bool{}
	for i, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		where := "VEVENT " + strconv.Itoa(i)
		checkRows(t, where, c, r.event, r.section)
		if u := c.Props.Get(ical.PropUID); u != nil {
			if uid == "" {
				uid = u.Value
			} else if u.Value != uid {
				t.Errorf("%s: UID %q, %s: all components MUST have the same UID (%q)", where, u.Value, r.section, uid)
			}
		}
		if count(c, ical.PropDateTimeEnd) > 0 && count(c, ical.PropDuration) > 0 {
			t.Errorf("%s: DTEND and DURATION, %s: if one is present the other MUST NOT be", where, r.section)
		}
		if s := c.Props.Get(ical.PropStatus); s != nil && r.status != nil && !slices.Contains(r.status, strings.ToUpper(s.Value)) {
			t.Errorf("%s: STATUS %s, %s allows %v", where, s.Value, r.section, r.status)
		}
		rid := ""
		if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
			rid = p.Value
		}
		if rids[rid] {
			t.Errorf("%s: second component for RECURRENCE-ID %q", where, rid)
		}
		rids[rid] = true
		if r.oneAttendee {
			for _, a := range c.Props[ical.PropAttendee] {
				if attendee == "" {
					attendee = address.Normalize(a.Value)
				} else if address.Normalize(a.Value) != attendee {
					t.Errorf("%s: ATTENDEE %s, %s: only the attendee sending it (%s)", where, a.Value, r.section, attendee)
				}
			}
		}
		for name, ps := range c.Props {
			for _, p := range ps {
				if tz := p.Params.Get(ical.ParamTimezoneID); tz != "" && !zones[tz] {
					t.Errorf("%s: %s;TZID=%s without its VTIMEZONE, %s: MUST be present if any date/time refers to a timezone", where, name, tz, r.section)
				}
			}
		}
		for _, ch := range c.Children {
			if ch.Name != ical.CompAlarm {
				t.Errorf("%s: component %s inside VEVENT", where, ch.Name)
			}
		}
	}
}

// TestRestrictionTables checks the checker on hand-written objects, so a
// passing generator test means something.
func TestRestrictionTables(t *testing.T) {
	cases := []struct {
		method itip.Method
		ics    string
		bad    bool
	}{
		{itip.Reply, replyOK, false},
		{itip.Reply, strings.Replace(replyOK, "END:VEVENT", "ATTENDEE:mailto:other@example.net\r\nEND:VEVENT", 1), true},
		{itip.Reply, strings.Replace(replyOK, "END:VEVENT", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT", 1), true},
		{itip.Reply, strings.Replace(replyOK, "ORGANIZER:mailto:org@example.org\r\n", "", 1), true},
		{itip.Reply, strings.Replace(replyOK, "DTSTART:20260301T100000Z", "DTSTART;TZID=Europe/Berlin:20260301T100000", 1), true},
		{itip.Refresh, refreshOK, false},
		{itip.Refresh, strings.Replace(refreshOK, "END:VEVENT", "SUMMARY:x\r\nEND:VEVENT", 1), true},
		{itip.Refresh, strings.Replace(refreshOK, "END:VEVENT", "SEQUENCE:2\r\nEND:VEVENT", 1), true},
		{itip.DeclineCounter, declineOK, false},
		{itip.DeclineCounter, strings.Replace(declineOK, "SEQUENCE:1\r\n", "", 1), true},
		{itip.Request, strings.Replace(replyOK, "REPLY", "REQUEST", 1), true}, // no SUMMARY
		{itip.Request, strings.Replace(strings.Replace(replyOK, "REPLY", "REQUEST", 1), "END:VEVENT", "SUMMARY:s\r\nEND:VEVENT", 1), false},
	}
	for i, c := range cases {
		cal, err := ics.Decode([]byte(c.ics), ics.Limits{})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var rec recorder
		checkRestrictions(&rec, c.method, cal)
		if failed := len(rec.errs) > 0; failed != c.bad {
			t.Errorf("case %d (%s): checker reported %q, want failure %v", i, c.method, rec.errs, c.bad)
		}
	}
}

const replyOK = "BEGIN:VCALENDAR\r\nPRODID:-//x//y//EN\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nORGANIZER:mailto:org@example.org\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

const refreshOK = "BEGIN:VCALENDAR\r\nPRODID:-//x//y//EN\r\nVERSION:2.0\r\nMETHOD:REFRESH\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\nORGANIZER:mailto:org@example.org\r\nATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

const declineOK = "BEGIN:VCALENDAR\r\nPRODID:-//x//y//EN\r\nVERSION:2.0\r\nMETHOD:DECLINECOUNTER\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:1\r\nDTSTAMP:20260101T000000Z\r\nORGANIZER:mailto:org@example.org\r\nATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
