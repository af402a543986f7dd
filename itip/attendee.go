package itip

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// An attendee's write of an event over CalDAV (RFC 6638 §3.2.2.1, "Allowed
// Attendee Changes"). A calendar app stores the whole event back after the
// user answers or sets an alarm; imipd takes from it:
//
//   - the user's own PARTSTAT, per component: an answer, decided like
//     `imipctl respond` (RFC 6638 §3.2.2.1 item 1);
//   - VALARMs and TRANSP (items 2, 5), and CLASS (imipd's addition: how the
//     user's own calendar shows the event); personalProps, never sent;
//   - a new override for an occurrence of the series whose only change is
//     the user's PARTSTAT or personal data (item 11): an answer for that
//     occurrence.
//
// What clients rewrite on every save does not count: DTSTAMP, CREATED,
// LAST-MODIFIED (item 9), SEQUENCE (python-caldav bumps it), X- properties
// and parameters, SCHEDULE-STATUS (item 10), the VCALENDAR's PRODID and
// CALSCALE (items 6, 7), the VTIMEZONEs (times compare as instants), and
// every rewrite compare.go reads as the same meaning. Other attendees'
// parameters other than PARTSTAT are not compared (nothing of them is
// stored from a client). Everything else is the organizer's and refused.
// Unlike item 8, an EXDATE added or an override removed by the attendee is
// refused too: imipd keeps one copy the organizer's updates apply to, and
// a hidden occurrence would be a silent non-answer; declining it sends the
// organizer the REPLY instead.

// ErrAttendeeEdit is wrapped by AttendeeEdit's refusals: the write changes
// what only the organizer may change (RFC 6638 §3.2.2.1).
var ErrAttendeeEdit = errors.New("this event belongs to its organizer")

// personalProps are the properties an attendee may set on its own copy;
// they are stored, never sent.
var personalProps = []string{ical.PropTransparency, ical.PropClass}

// ignoredProps may differ in what a client writes back without meaning a
// change; they are not stored from the client either.
var ignoredProps = map[string]bool{ical.PropDateTimeStamp: true, ical.PropLastModified: true, ical.PropCreated: true, ical.PropSequence: true}

// MaxNewOverrides is how many overrides one write may add: each is an
// answer of its own (a write transaction and a REPLY to the organizer), and
// apps add one at a time.
const MaxNewOverrides = 20

// Answer is one PARTSTAT change an attendee's write makes.
type Answer struct {
	RecurrenceID string // "" for the whole series, else the instance's key (Instance.RecurrenceID)
	Action       string // accept, tentative or decline (Decision.Action)
}

var actionOf = map[string]string{"ACCEPTED": "accept", "TENTATIVE": "tentative", "DECLINED": "decline"}

// AttendeeEdit checks a calendar app's write (edited) of an event the user
// attends (stored) by RFC 6638 §3.2.2.1 and returns the answers it makes,
// the whole series first. A refusal wraps ErrAttendeeEdit and says what was
// refused. Neither calendar is changed.
func AttendeeEdit(stored, edited *ical.Calendar, u *User) ([]Answer, error) {
	so, eo := readStored(stored), readStored(edited)
	var keys []string
	for _, c := range so.events() {
		keys = append(keys, so.rid(c))
	}
	added := 0
	for _, c := range eo.events() {
		if k := eo.rid(c); so.find(k) == nil {
			if added++; added > MaxNewOverrides {
				return nil, fmt.Errorf("%w: one write may add at most %d occurrences (overrides); answer the series instead", ErrAttendeeEdit, MaxNewOverrides)
			}
			if err := so.addableOverride(k); err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	var answers []Answer
	var refused []string
	for _, k := range keys {
		ec := eo.find(k)
		if ec == nil {
			return nil, fmt.Errorf("%w: removing an occurrence (RECURRENCE-ID %s) is not allowed: decline it instead", ErrAttendeeEdit, k)
		}
		sc, sz := so.find(k), so.Zones
		if sc == nil {
			// A new override compares with the occurrence the series
			// makes (RFC 5545 §3.8.4.4).
			tmp := readStored(shallowCal(stored))
			if sc = tmp.makeOverride(&Instance{Comp: ec, zones: eo.Zones}); sc == nil {
				return nil, fmt.Errorf("%w: adding an occurrence (RECURRENCE-ID %s) is not allowed: it is not an occurrence of the series", ErrAttendeeEdit, k)
			}
		}
		bad, oldPS, newPS := attendeeDiff(sc, ec, sz, eo.Zones, u)
		for _, b := range bad {
			if !slices.Contains(refused, b) {
				refused = append(refused, b)
			}
		}
		if oldPS != newPS {
			a, ok := actionOf[newPS]
			if !ok {
				return nil, fmt.Errorf("%w: PARTSTAT %s cannot be set from a calendar app: answer ACCEPTED, TENTATIVE or DECLINED", ErrAttendeeEdit, newPS)
			}
			answers = append(answers, Answer{RecurrenceID: k, Action: a})
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, fmt.Errorf("%w: you may change only your own PARTSTAT, alarms (VALARM), TRANSP and CLASS; refused changes: %s", ErrAttendeeEdit, strings.Join(refused, ", "))
	}
	sort.SliceStable(answers, func(i, j int) bool { return answers[i].RecurrenceID == "" && answers[j].RecurrenceID != "" })
	// A whole-series answer sets every instance; instances answered the
	// same way need no answer of their own.
	if len(answers) > 0 && answers[0].RecurrenceID == "" {
		rest := answers[:1]
		for _, a := range answers[1:] {
			if a.Action != answers[0].Action {
				rest = append(rest, a)
			}
		}
		answers = rest
	}
	return answers, nil
}

// addableOverride reports whether an attendee may add an override for
// the instance key (RFC 6638 §3.2.2.1 item 11): the series must make
// that occurrence.
func (o *Event) addableOverride(key string) error {
	if key == "" || o.master() == nil || !o.isOccurrence(key) {
		return fmt.Errorf("%w: adding an occurrence (RECURRENCE-ID %s) is not allowed: it is not an occurrence of the series; you may change only your own PARTSTAT, alarms, TRANSP and CLASS", ErrAttendeeEdit, key)
	}
	return nil
}

// attendeeDiff returns what changed between a stored component and the
// client's other than the allowed edits (property names), and the user's
// PARTSTAT before and after ("" when the user is not an attendee).
func attendeeDiff(sc, ec *ical.Component, sz, ez *ics.Zones, u *User) (bad []string, oldPS, newPS string) {
	bad = changedProps(sc, ec, sz, ez, func(n string) bool {
		return ignoredProps[n] || slices.Contains(personalProps, n) || strings.HasPrefix(n, "X-")
	})
	sa, ea := partstats(sc), partstats(ec)
	same := len(sa) == len(ea)
	for a, ps := range sa {
		eps, ok := ea[a]
		switch {
		case !ok:
			same = false
		case u.Is(a):
			oldPS, newPS = ps, eps
		case eps != ps:
			same = false
		}
	}
	if !same {
		bad = append(bad, "ATTENDEE (other than your own PARTSTAT)")
	}
	return bad, oldPS, newPS
}

// partstats maps each attendee of c to its PARTSTAT.
func partstats(c *ical.Component) map[string]string {
	m := map[string]string{}
	for i := range c.Props[ical.PropAttendee] {
		pt := partyOf(&c.Props[ical.PropAttendee][i])
		m[pt.Address] = pt.PartStat
	}
	return m
}

// WithPersonal returns a copy of stored with the personal data of edited's
// components (TRANSP, CLASS, VALARMs) in the components of the same
// RECURRENCE-ID; components stored has no copy of are left out.
func WithPersonal(stored, edited *ical.Calendar) *ical.Calendar {
	out := cloneCal(stored)
	so, eo := readStored(out), readStored(edited)
	for _, c := range so.events() {
		ec := eo.find(so.rid(c))
		if ec == nil {
			continue
		}
		for _, name := range personalProps {
			if ps := ec.Props[name]; len(ps) > 0 {
				c.Props[name] = []ical.Prop{cloneProp(ps[0])}
			} else {
				delete(c.Props, name)
			}
		}
		kids := c.Children[:0]
		for _, k := range c.Children {
			if k.Name != ical.CompAlarm {
				kids = append(kids, k)
			}
		}
		for _, k := range ec.Children {
			if k.Name == ical.CompAlarm {
				kids = append(kids, cloneComp(k))
			}
		}
		c.Children = kids
	}
	return out
}

// AttendeeStatus returns the user's PARTSTAT in the event's master (or its
// first component) and whether the user attends it.
func AttendeeStatus(cal *ical.Calendar, u *User) (string, bool) {
	o := readStored(cal)
	c := o.master()
	if evs := o.events(); c == nil && len(evs) > 0 {
		c = evs[0]
	}
	if c == nil {
		return "", false
	}
	p := userAttendee(c, u)
	if p == nil {
		return "", false
	}
	return partyOf(p).PartStat, true
}

// OrganizedBy reports whether the user organizes the stored event: one of
// its VEVENTs names one of the user's addresses as ORGANIZER. Such an event
// is not the user's to answer, nor to change as an attendee (RFC 6638
// §3.2.2.1 is about attendees' copies).
func OrganizedBy(cal *ical.Calendar, u *User) bool {
	for _, c := range cal.Children {
		if p := first(c, ical.PropOrganizer); c.Name == ical.CompEvent && p != nil && u.Is(address.Normalize(p.Value)) {
			return true
		}
	}
	return false
}
