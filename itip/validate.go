package itip

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

// validate checks a VEVENT object against the restriction tables of RFC 5546
// §3.2 (one per method) and the value rules of RFC 5545 that imipd relies
// on. It is the one place where an incoming object is judged well-formed;
// ParseMessage calls it, so an object that fails never reaches a rule, the
// store or a pending item. The reason words (ParseError.Reason):
//
//   - missing-dtstamp: DTSTAMP is "1" in every table; one that is not a
//     valid date-time counts as missing (Deutsche Bahn writes
//     "2023-07-01T122600Z").
//   - missing-organizer: ORGANIZER is "1" for PUBLISH (§3.2.1), REQUEST
//     (§3.2.2), ADD (§3.2.4), CANCEL (§3.2.5) and DECLINECOUNTER (§3.2.8).
//     REPLY, REFRESH and COUNTER need it too, but Outlook omits it in
//     REPLY; the event is then found by UID (docs/rules.md "Bad input").
//   - missing-attendee: ATTENDEE is "1" for REPLY (§3.2.3), REFRESH
//     (§3.2.6) and "1+" for COUNTER (§3.2.7).
//   - missing-dtstart: DTSTART is "1" for PUBLISH, REQUEST, ADD and COUNTER:
//     an event without a start cannot be shown or answered.
//   - bad-date: a DATE, DATE-TIME, PERIOD or DURATION value that is not one
//     (RFC 5545 §3.3.4–§3.3.6, §3.3.9: month 13, day 32, 30 February, 24:60),
//     in DTSTART, DTEND, DURATION, EXDATE, RDATE, CREATED,
//     LAST-MODIFIED or an RRULE's UNTIL; a DTEND before DTSTART or of
//     another value type (DATE against DATE-TIME, RFC 5545 §3.8.2.2).
//   - malformed: a property the tables allow once ("1" or "0 or 1": UID,
//     DTSTAMP, DTSTART, DTEND, DURATION, ORGANIZER, SEQUENCE, RECURRENCE-ID,
//     RRULE) given twice with different values or parameters, so that
//     imipd and a calendar app could read different ones (the same line
//     twice, as sabre/vobject's fixtures have it, is harmless); a
//     component other than VALARM inside a VEVENT (RFC 5545 §3.6.1), any
//     inside a VALARM (§3.6.6); an
//     RRULE without a known FREQ (RFC 5545 §3.3.10); a VTIMEZONE without
//     TZID, without STANDARD or DAYLIGHT, or with one of those lacking
//     DTSTART, TZOFFSETTO or TZOFFSETFROM (RFC 5545 §3.6.5), or with an
//     RRULE that is not yearly or gives no onset in eight years (February
//     30: the zone has no transition, and python-icalendar fails on it).
//   - rrule-frequency: an RRULE or EXRULE with FREQ=SECONDLY or MINUTELY in
//     an object that defines an event (PUBLISH, REQUEST, ADD, CANCEL,
//     COUNTER). No calendar program invites to such a series; stored, one
//     would make every calendar app that expands it (and a CalDAV
//     time-range query) walk millions of instances (SECURITY.md,
//     "Recurrence"). HOURLY stays allowed: shift plans use it.
//
// Leniencies, because real senders do it: SUMMARY missing (a "1" in
// several tables), SEQUENCE missing (CANCEL's "1"; absent means 0, RFC 5545
// §3.8.7.4), ORGANIZER missing in REPLY, REFRESH and COUNTER, and DTEND
// together with DURATION (RFC 5545 §3.6.1 forbids it; Thunderbird's
// fixtures have it; DTEND counts). A TZID is not resolved here
// (unknown zones are handled where times are compared).
func validate(m *Message) error {
	for _, in := range m.Instances {
		if in.DTStamp.IsZero() {
			return parseErr(ReasonMissingDTStamp, "UID %q", m.UID)
		}
		if err := validateInstance(m.Method, m.UID, in.Comp); err != nil {
			return err
		}
		if err := checkSpan(m.UID, in.Comp, m.Zones); err != nil {
			return err
		}
	}
	for _, c := range m.Cal.Children {
		if c.Name == ical.CompTimezone {
			if err := checkZone(c); err != nil {
				return err
			}
		}
	}
	switch m.Method {
	case Publish, Request, Add, Cancel, DeclineCounter:
		if m.Organizer().Address == "" {
			return parseErr(ReasonMissingOrganizer, "%s without ORGANIZER", m.Method)
		}
	case Reply, Refresh, Counter:
		for _, in := range m.Instances {
			if len(in.Attendees) == 0 {
				return parseErr(ReasonMissingAttendee, "%s without ATTENDEE", m.Method)
			}
		}
	}
	return nil
}

// once are the VEVENT properties a restriction table allows at most once.
var once = []string{
	ical.PropUID, ical.PropDateTimeStamp, ical.PropDateTimeStart, ical.PropDateTimeEnd,
	ical.PropDuration, ical.PropOrganizer, ical.PropSequence, ical.PropRecurrenceID,
	ical.PropRecurrenceRule,
}

// dateProps are the VEVENT properties whose values are DATE, DATE-TIME or
// PERIOD (RECURRENCE-ID is checked by InstanceKey, DTSTAMP by parseInstance).
var dateProps = []string{
	ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropExceptionDates, ical.PropRecurrenceDates, ical.PropCreated, ical.PropLastModified,
}

// CheckEventComponents is RFC 5545's rule for what a VEVENT may hold: a
// VALARM and no other component (§3.6.1), and a VALARM holds none (§3.6.6).
// Mail intake (validate) and a CalDAV PUT (filter) both ask it.
func CheckEventComponents(c *ical.Component) error {
	for _, ch := range c.Children {
		if ch.Name != ical.CompAlarm {
			return fmt.Errorf("%s inside VEVENT (RFC 5545 §3.6.1)", ch.Name)
		}
		if len(ch.Children) > 0 {
			return fmt.Errorf("%s inside VALARM (RFC 5545 §3.6.6)", ch.Children[0].Name)
		}
	}
	return nil
}

func validateInstance(method Method, uid string, c *ical.Component) error {
	for _, name := range once {
		ps := c.Props[name]
		for i := 1; i < len(ps); i++ {
			if !sameProp(&ps[0], &ps[i]) {
				return parseErr(ReasonMalformed, "UID %q: %s %d times with different values, RFC 5546 §3.2 allows one", uid, name, len(ps))
			}
		}
	}
	if err := CheckEventComponents(c); err != nil {
		return parseErr(ReasonMalformed, "UID %q: %v", uid, err)
	}
	for _, name := range dateProps {
		for i := range c.Props[name] {
			if err := ics.CheckTimes(&c.Props[name][i]); err != nil {
				return parseErr(ReasonBadDate, "UID %q: %v", uid, err)
			}
		}
	}
	if p := first(c, ical.PropDuration); p != nil {
		if _, err := ics.ParseDuration(p.Value); err != nil {
			return parseErr(ReasonBadDate, "UID %q: DURATION: %v", uid, err)
		}
	}
	for _, name := range []string{ical.PropRecurrenceRule, "EXRULE"} {
		for _, p := range c.Props[name] {
			if err := checkRule(method, uid, p.Value); err != nil {
				return err
			}
		}
	}
	switch method {
	case Publish, Request, Add, Counter:
		if first(c, ical.PropDateTimeStart) == nil {
			return parseErr(ReasonMissingDTStart, "UID %q: %s without DTSTART (RFC 5546 §3.2)", uid, method)
		}
	}
	return nil
}

// checkSpan checks DTEND against DTSTART (RFC 5545 §3.8.2.2): the same
// value type (DATE or DATE-TIME), and not before the start. Equal is
// accepted (zero-length events are common); a TZID that does not resolve
// skips the comparison.
func checkSpan(uid string, c *ical.Component, z *ics.Zones) error {
	ps, pe := first(c, ical.PropDateTimeStart), first(c, ical.PropDateTimeEnd)
	if ps == nil || pe == nil {
		return nil
	}
	start, err1 := z.PropTime(ps)
	end, err2 := z.PropTime(pe)
	if err1 != nil || err2 != nil {
		return nil
	}
	if start.AllDay != end.AllDay {
		return parseErr(ReasonBadDate, "UID %q: DTSTART %s and DTEND %s are not of one value type (RFC 5545 §3.8.2.2)", uid, ps.Value, pe.Value)
	}
	if end.T.Before(start.T) {
		return parseErr(ReasonBadDate, "UID %q: DTEND %s before DTSTART %s (RFC 5545 §3.8.2.2)", uid, pe.Value, ps.Value)
	}
	return nil
}

// checkZone checks a VTIMEZONE's structure (RFC 5545 §3.6.5): a TZID,
// at least one STANDARD or DAYLIGHT, each with DTSTART, TZOFFSETTO and
// TZOFFSETFROM. Stored without them, a zone is of no use to a calendar app
// and go-ical's encoder (CalDAV) refuses the whole object.
func checkZone(c *ical.Component) error {
	tzid := propValue(c, ical.PropTimezoneID)
	if tzid == "" {
		return parseErr(ReasonMalformed, "VTIMEZONE without TZID (RFC 5545 §3.6.5)")
	}
	n := 0
	for _, o := range c.Children {
		if o.Name != ical.CompTimezoneStandard && o.Name != ical.CompTimezoneDaylight {
			continue
		}
		n++
		for _, name := range []string{ical.PropDateTimeStart, ical.PropTimezoneOffsetTo, ical.PropTimezoneOffsetFrom} {
			if o.Props.Get(name) == nil {
				return parseErr(ReasonMalformed, "VTIMEZONE %q: %s without %s (RFC 5545 §3.6.5)", tzid, o.Name, name)
			}
		}
		if rr := first(o, ical.PropRecurrenceRule); rr != nil && ics.ZoneRuleNever(propValue(o, ical.PropDateTimeStart), rr.Value) {
			return parseErr(ReasonMalformed, "VTIMEZONE %q: %s RRULE %q gives no yearly onset (RFC 5545 §3.6.5)", tzid, o.Name, rr.Value)
		}
	}
	if n == 0 {
		return parseErr(ReasonMalformed, "VTIMEZONE %q without STANDARD or DAYLIGHT (RFC 5545 §3.6.5)", tzid)
	}
	return nil
}

// sameProp reports whether a and b have the same value and parameters.
func sameProp(a, b *ical.Prop) bool {
	return a.Value == b.Value && maps.EqualFunc(a.Params, b.Params, slices.Equal)
}

// checkRule checks an RRULE or EXRULE value (RFC 5545 §3.3.10): FREQ is
// one of the seven frequencies, UNTIL is a date, and objects that define an
// event carry no SECONDLY or MINUTELY rule.
func checkRule(method Method, uid, rule string) error {
	freq := ""
	for _, part := range strings.Split(rule, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "FREQ":
			freq = strings.ToUpper(strings.TrimSpace(v))
		case "UNTIL":
			if err := ics.CheckTimes(&ical.Prop{Name: "UNTIL", Value: v}); err != nil {
				return parseErr(ReasonBadDate, "UID %q: RRULE: %v", uid, err)
			}
		}
	}
	switch freq {
	case "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY":
		return nil
	case "SECONDLY", "MINUTELY":
		switch method {
		case Publish, Request, Add, Cancel, Counter:
			return parseErr(ReasonRRuleFrequency, "UID %q: FREQ=%s", uid, freq)
		}
		return nil
	}
	return parseErr(ReasonMalformed, "UID %q: RRULE %q without a known FREQ (RFC 5545 §3.3.10)", uid, rule)
}
