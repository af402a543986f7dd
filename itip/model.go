package itip

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// Method is an iTIP method (RFC 5546 §1.4).
type Method string

// The eight iTIP methods.
const (
	Publish        Method = "PUBLISH"
	Request        Method = "REQUEST"
	Reply          Method = "REPLY"
	Add            Method = "ADD"
	Cancel         Method = "CANCEL"
	Refresh        Method = "REFRESH"
	Counter        Method = "COUNTER"
	DeclineCounter Method = "DECLINECOUNTER"
)

// Valid reports whether m is one of the eight methods.
func (m Method) Valid() bool {
	switch m {
	case Publish, Request, Reply, Add, Cancel, Refresh, Counter, DeclineCounter:
		return true
	}
	return false
}

// ToOrganizer reports whether m travels from an attendee to the organizer.
func (m Method) ToOrganizer() bool { return m == Reply || m == Refresh || m == Counter }

// Outcome is what was done with a message for one user (docs/rules.md "Methods").
type Outcome string

// Outcomes, as written into the header.
const (
	Applied     Outcome = "applied"
	NeedsAction Outcome = "needs-action"
	Ignored     Outcome = "ignored"
	Outdated    Outcome = "outdated"
	Duplicate   Outcome = "duplicate"
	Rejected    Outcome = "rejected"
	Error       Outcome = "error"
)

// ErrInvalid is wrapped by every error Parse returns; the Reason of a
// *ParseError is the word used in headers and logs.
var ErrInvalid = errors.New("itip: invalid iTIP object")

// ParseError says why an object is not acceptable iTIP.
type ParseError struct {
	Reason string // missing-method, bad-method, missing-uid, mixed-uid, no-component, bad-sequence, bad-recurrence-id, and validate's words
	Detail string
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return "itip: " + e.Reason
	}
	return "itip: " + e.Reason + ": " + e.Detail
}

// Unwrap lets errors.Is(err, ErrInvalid) work.
func (e *ParseError) Unwrap() error { return ErrInvalid }

func parseErr(reason, format string, a ...any) error {
	return &ParseError{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// Party is an ORGANIZER or ATTENDEE.
type Party struct {
	Address string // lower-case, without mailto:
	SentBy  string // SENT-BY address, lower-case, without mailto:
	CN      string
	// Attendee parameters (empty for the organizer).
	PartStat string
	Role     string
	RSVP     bool
}

// Instance is one VEVENT of the object: the master (RecurrenceID == "") or an
// override.
type Instance struct {
	RecurrenceID string // normalised key (see InstanceKey), "" for the master
	Range        string // RANGE parameter of RECURRENCE-ID ("THISANDFUTURE" or "")
	Sequence     int
	DTStamp      time.Time
	Organizer    Party
	Attendees    []Party
	Comp         *ical.Component
	zones        *ics.Zones
}

// Attendee returns the attendee with the given address, or nil.
func (in *Instance) Attendee(addr string) *Party {
	for i := range in.Attendees {
		if in.Attendees[i].Address == addr {
			return &in.Attendees[i]
		}
	}
	return nil
}

// Message is the normalised form of one iTIP object (RFC 5546 §1.4, §3).
type Message struct {
	Method    Method
	Kind      string // component type: VEVENT, VTODO, VJOURNAL, VFREEBUSY
	UID       string
	Instances []*Instance // master first when present, then overrides by RECURRENCE-ID
	Cal       *ical.Calendar
	Zones     *ics.Zones
}

// Master returns the master instance or nil.
func (m *Message) Master() *Instance {
	if len(m.Instances) > 0 && m.Instances[0].RecurrenceID == "" {
		return m.Instances[0]
	}
	return nil
}

// First returns the first instance (master if present).
func (m *Message) First() *Instance { return m.Instances[0] }

// Organizer returns the organizer of the first instance that names one.
func (m *Message) Organizer() Party {
	for _, in := range m.Instances {
		if in.Organizer.Address != "" {
			return in.Organizer
		}
	}
	return Party{}
}

// Sequence is the highest SEQUENCE of the message's instances.
func (m *Message) Sequence() int {
	s := 0
	for _, in := range m.Instances {
		if in.Sequence > s {
			s = in.Sequence
		}
	}
	return s
}

// DTStamp is the latest DTSTAMP of the message's instances.
func (m *Message) DTStamp() time.Time {
	var t time.Time
	for _, in := range m.Instances {
		if in.DTStamp.After(t) {
			t = in.DTStamp
		}
	}
	return t
}

// ParseMessage normalises a decoded calendar into an iTIP message. methodParam
// is the METHOD the transport claimed ("" if none); the object's own METHOD wins
// (docs/rules.md "iMIP detection").
func ParseMessage(cal *ical.Calendar) (*Message, error) {
	return ParseMessageShared(cal, nil)
}

// ParseMessageShared is ParseMessage with the calendar's VTIMEZONE
// conversions counted against zb, shared by the calendar parts of one mail
// message (nil: a budget of its own; SECURITY.md "Time zones").
func ParseMessageShared(cal *ical.Calendar, zb *ics.Budget) (*Message, error) {
	m := &Message{Cal: cal, Zones: ics.NewZonesShared(cal, zb)}
	mp := cal.Props.Get(ical.PropMethod)
	if mp == nil || strings.TrimSpace(mp.Value) == "" {
		return nil, parseErr("missing-method", "no METHOD property")
	}
	m.Method = Method(strings.ToUpper(strings.TrimSpace(mp.Value)))
	if !m.Method.Valid() {
		return nil, parseErr("bad-method", "%q", mp.Value)
	}
	for _, c := range cal.Children {
		switch c.Name {
		case ical.CompEvent, ical.CompToDo, ical.CompJournal, ical.CompFreeBusy:
		default:
			continue
		}
		if m.Kind == "" {
			m.Kind = c.Name
		} else if m.Kind != c.Name {
			return nil, parseErr("mixed-components", "%s and %s", m.Kind, c.Name)
		}
		in, err := parseInstance(c, m.Zones)
		if err != nil {
			return nil, err
		}
		uid := propValue(c, ical.PropUID)
		if uid == "" {
			return nil, parseErr("missing-uid", "%s without UID", c.Name)
		}
		if m.UID == "" {
			m.UID = uid
		} else if m.UID != uid {
			return nil, parseErr("mixed-uid", "%q and %q", m.UID, uid)
		}
		m.Instances = append(m.Instances, in)
	}
	if len(m.Instances) == 0 {
		return nil, parseErr("no-component", "no VEVENT, VTODO, VJOURNAL or VFREEBUSY")
	}
	if m.Kind != ical.CompEvent {
		// Recognised but not processed (docs/rules.md "iMIP detection": only
		// VEVENT); no further checks.
		return m, nil
	}
	sortInstances(m.Instances)
	for i := 1; i < len(m.Instances); i++ {
		if m.Instances[i].RecurrenceID == m.Instances[i-1].RecurrenceID {
			return nil, parseErr("bad-recurrence-id", "two components for %q", m.Instances[i].RecurrenceID)
		}
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

func sortInstances(ins []*Instance) {
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].RecurrenceID < ins[j].RecurrenceID })
}

func parseInstance(c *ical.Component, z *ics.Zones) (*Instance, error) {
	in := &Instance{Comp: c, zones: z}
	if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
		k, err := InstanceKey(p, z)
		if err != nil {
			return nil, parseErr("bad-recurrence-id", "%v", err)
		}
		in.RecurrenceID = k
		in.Range = strings.ToUpper(p.Params.Get("RANGE"))
	}
	if p := c.Props.Get(ical.PropSequence); p != nil {
		n, err := strconv.Atoi(strings.TrimSpace(p.Value))
		if err != nil || n < 0 {
			return nil, parseErr("bad-sequence", "%q", p.Value)
		}
		in.Sequence = n
	}
	if p := c.Props.Get(ical.PropDateTimeStamp); p != nil {
		t, err := z.PropTime(p)
		if err == nil {
			in.DTStamp = t.T
		}
	}
	if p := c.Props.Get(ical.PropOrganizer); p != nil {
		in.Organizer = partyOf(p)
	}
	for i := range c.Props[ical.PropAttendee] {
		in.Attendees = append(in.Attendees, partyOf(&c.Props[ical.PropAttendee][i]))
	}
	return in, nil
}

func partyOf(p *ical.Prop) Party {
	pt := Party{
		Address:  address.Normalize(p.Value),
		SentBy:   address.Normalize(strings.Trim(p.Params.Get("SENT-BY"), `"`)),
		CN:       p.Params.Get(ical.ParamCommonName),
		PartStat: strings.ToUpper(p.Params.Get(ical.ParamParticipationStatus)),
		Role:     strings.ToUpper(p.Params.Get(ical.ParamRole)),
		RSVP:     strings.EqualFold(p.Params.Get(ical.ParamRSVP), "TRUE"),
	}
	if pt.PartStat == "" {
		pt.PartStat = "NEEDS-ACTION" // RFC 5545 §3.2.12 default
	}
	if pt.Role == "" {
		pt.Role = "REQ-PARTICIPANT" // RFC 5545 §3.2.16 default
	}
	return pt
}

// InstanceKey is the key of the instance a RECURRENCE-ID names (RFC 5545
// §3.8.4.4), the one form every layer compares and stores (Instance.RecurrenceID,
// PendingItem.RecurrenceID, the REPLY order's keys): a date-time as UTC
// "20060102T150405Z" whatever zone it was written in, a DATE as "20060102",
// a floating time as its wall clock "20060102T150405". The master's key is
// "". Errors are ics.Zones.PropTime's (bad value, unknown TZID).
func InstanceKey(p *ical.Prop, z *ics.Zones) (string, error) {
	t, err := z.PropTime(p)
	if err != nil {
		return "", err
	}
	return timeKey(t), nil
}

func timeKey(t ics.Time) string {
	switch {
	case t.AllDay:
		return t.T.Format("20060102")
	case t.Floating:
		return t.T.Format("20060102T150405")
	default:
		return t.T.UTC().Format("20060102T150405Z")
	}
}

func propValue(c *ical.Component, name string) string {
	if p := c.Props.Get(name); p != nil {
		return strings.TrimSpace(p.Value)
	}
	return ""
}
