package itip

import (
	"errors"
	"fmt"
	"slices"
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
	Reason Reason // one of the ParseError reasons (reason.go)
	Detail string
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return "itip: " + string(e.Reason)
	}
	return "itip: " + string(e.Reason) + ": " + e.Detail
}

// Unwrap lets errors.Is(err, ErrInvalid) work.
func (e *ParseError) Unwrap() error { return ErrInvalid }

func parseErr(reason Reason, format string, a ...any) error {
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

// Instance is one component of an Event, read once: the master
// (RecurrenceID == "") or an override. Its fields are what the rules compare;
// Comp is the component itself, whose properties hold the rest.
type Instance struct {
	RecurrenceID string // InstanceKey of RECURRENCE-ID, "" for the master
	Range        string // RANGE parameter of RECURRENCE-ID ("THISANDFUTURE" or "")
	Sequence     int
	DTStamp      time.Time
	Organizer    Party
	Attendees    []Party // in the order of Comp's ATTENDEE properties
	Comp         *ical.Component
	zones        *ics.Zones
}

// Attendee returns the attendee with the given address, or nil.
func (in *Instance) Attendee(addr string) *Party {
	if i := in.attendeeIndex(addr); i >= 0 {
		return &in.Attendees[i]
	}
	return nil
}

// attendeeIndex is the index of addr among the instance's attendees (and
// of its property in Comp's ATTENDEE list), -1 if absent.
func (in *Instance) attendeeIndex(addr string) int {
	for i := range in.Attendees {
		if in.Attendees[i].Address == addr {
			return i
		}
	}
	return -1
}

// Event is one UID's components read once (RFC 5545 §3.6.1, RFC 5546 §1.4):
// the one model of an event, for an incoming iTIP message (Message) and for
// the user's stored copy alike, so rules compare Instance with Instance
// instead of reading raw properties again.
type Event struct {
	Kind      string // component type: VEVENT, VTODO, VJOURNAL, VFREEBUSY
	UID       string
	Instances []*Instance // a message's: master first when present, then overrides by RECURRENCE-ID; a stored copy's: as written
	Cal       *ical.Calendar
	Zones     *ics.Zones
	// Storage for the first Instance, a list of one and the Zones, so
	// that an event without overrides costs no allocation of its own for
	// them.
	inst0  Instance
	insts0 [1]*Instance
	zones0 ics.Zones
}

// addInstance reads c (readInstanceTo) and appends it to e.Instances.
func (e *Event) addInstance(c *ical.Component, strict bool) error {
	in := &e.inst0
	if len(e.Instances) > 0 || e.inst0.Comp != nil {
		in = new(Instance)
	}
	if err := readInstanceTo(in, c, e.Zones, strict); err != nil {
		return err
	}
	if e.Instances == nil {
		e.Instances = e.insts0[:0]
	}
	e.Instances = append(e.Instances, in)
	return nil
}

// Message is an incoming iTIP object (RFC 5546 §1.4, §3): its METHOD and
// its Event.
type Message struct {
	Method Method
	Event
}

// Master returns the master instance or nil.
func (e *Event) Master() *Instance {
	for _, in := range e.Instances {
		if in.RecurrenceID == "" {
			return in
		}
	}
	return nil
}

// First returns the first instance (a message's master if present).
func (e *Event) First() *Instance { return e.Instances[0] }

// Organizer returns the organizer of the first instance that names one.
func (e *Event) Organizer() Party {
	for _, in := range e.Instances {
		if in.Organizer.Address != "" {
			return in.Organizer
		}
	}
	return Party{}
}

// Sequence is the highest SEQUENCE of the event's instances.
func (e *Event) Sequence() int {
	s := 0
	for _, in := range e.Instances {
		if in.Sequence > s {
			s = in.Sequence
		}
	}
	return s
}

// DTStamp is the latest DTSTAMP of the event's instances.
func (e *Event) DTStamp() time.Time {
	var t time.Time
	for _, in := range e.Instances {
		if in.DTStamp.After(t) {
			t = in.DTStamp
		}
	}
	return t
}

// ParseMessage normalises a decoded calendar into an iTIP message. The
// object's own METHOD counts (docs/rules.md "iMIP detection").
func ParseMessage(cal *ical.Calendar) (*Message, error) {
	return ParseMessageShared(cal, nil)
}

// ParseMessageShared is ParseMessage with the calendar's VTIMEZONE
// conversions counted against zb, shared by the calendar parts of one mail
// message (nil: a budget of its own; SECURITY.md "Time zones").
func ParseMessageShared(cal *ical.Calendar, zb *ics.Budget) (*Message, error) {
	mp := first(cal.Component, ical.PropMethod)
	if mp == nil || strings.TrimSpace(mp.Value) == "" {
		return nil, parseErr(ReasonMissingMethod, "no METHOD property")
	}
	m := &Message{Method: Method(strings.ToUpper(strings.TrimSpace(mp.Value)))}
	if !m.Method.Valid() {
		return nil, parseErr(ReasonBadMethod, "%q", mp.Value)
	}
	m.Cal, m.Zones = cal, &m.zones0
	m.zones0.Init(cal, zb)
	for _, c := range cal.Children {
		switch c.Name {
		case ical.CompEvent, ical.CompToDo, ical.CompJournal, ical.CompFreeBusy:
		default:
			continue
		}
		if m.Kind == "" {
			m.Kind = c.Name
		} else if m.Kind != c.Name {
			return nil, parseErr(ReasonMixedComponents, "%s and %s", m.Kind, c.Name)
		}
		if err := m.addInstance(c, true); err != nil {
			return nil, err
		}
		uid := propValue(c, ical.PropUID)
		if uid == "" {
			return nil, parseErr(ReasonMissingUID, "%s without UID", c.Name)
		}
		if m.UID == "" {
			m.UID = uid
		} else if m.UID != uid {
			return nil, parseErr(ReasonMixedUID, "%q and %q", m.UID, uid)
		}
	}
	if len(m.Instances) == 0 {
		return nil, parseErr(ReasonNoComponent, "no VEVENT, VTODO, VJOURNAL or VFREEBUSY")
	}
	if m.Kind != ical.CompEvent {
		// Recognised but not processed (docs/rules.md "iMIP detection": only
		// VEVENT); no further checks.
		return m, nil
	}
	sortInstances(m.Instances)
	for i := 1; i < len(m.Instances); i++ {
		if m.Instances[i].RecurrenceID == m.Instances[i-1].RecurrenceID {
			return nil, parseErr(ReasonBadRecurrenceID, "two components for %q", m.Instances[i].RecurrenceID)
		}
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// readStored reads a user's stored copy (nil: none) into an Event: its
// VEVENTs as written, leniently (what imipd or a calendar app stored is not
// judged again): a SEQUENCE is read up to its first non-digit, a
// RECURRENCE-ID that cannot be read keys by its written value.
func readStored(cal *ical.Calendar) *Event {
	if cal == nil {
		return nil
	}
	e := &Event{Kind: ical.CompEvent, Cal: cal}
	e.Zones = &e.zones0
	e.zones0.Init(cal, nil)
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		_ = e.addInstance(c, false) // never fails when not strict
		if e.UID == "" {
			e.UID = propValue(c, ical.PropUID)
		}
	}
	return e
}

func sortInstances(ins []*Instance) {
	slices.SortStableFunc(ins, func(a, b *Instance) int { return strings.Compare(a.RecurrenceID, b.RecurrenceID) })
}

// readInstance reads one component. strict (an incoming message) makes a
// RECURRENCE-ID or SEQUENCE that cannot be read an error; otherwise (a
// stored copy) they are read leniently and no error is returned.
func readInstance(c *ical.Component, z *ics.Zones, strict bool) (*Instance, error) {
	in := new(Instance)
	if err := readInstanceTo(in, c, z, strict); err != nil {
		return nil, err
	}
	return in, nil
}

// readInstanceTo is readInstance into in, which is zero.
func readInstanceTo(in *Instance, c *ical.Component, z *ics.Zones, strict bool) error {
	in.Comp, in.zones = c, z
	if p := first(c, ical.PropRecurrenceID); p != nil {
		k, err := InstanceKey(p, z)
		if err != nil {
			if strict {
				return parseErr(ReasonBadRecurrenceID, "%v", err)
			}
			k = strings.TrimSpace(p.Value)
		}
		in.RecurrenceID = k
		in.Range = strings.ToUpper(param(p.Params, "RANGE"))
	}
	if p := first(c, ical.PropSequence); p != nil {
		if !strict {
			in.Sequence = atoiLoose(p.Value)
		} else if n, err := strconv.Atoi(strings.TrimSpace(p.Value)); err != nil || n < 0 {
			return parseErr(ReasonBadSequence, "%q", p.Value)
		} else {
			in.Sequence = n
		}
	}
	if p := first(c, ical.PropDateTimeStamp); p != nil {
		t, err := z.PropTime(p)
		if err == nil {
			in.DTStamp = t.T
		}
	}
	if p := first(c, ical.PropOrganizer); p != nil {
		in.Organizer = partyOf(p)
	}
	if ps := c.Props[ical.PropAttendee]; len(ps) > 0 {
		in.Attendees = make([]Party, len(ps))
		for i := range ps {
			in.Attendees[i] = partyOf(&ps[i])
		}
	}
	return nil
}

func atoiLoose(s string) int {
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if r < '0' || r > '9' || n > 1<<30 {
			return n
		}
		n = n*10 + int(r-'0')
	}
	return n
}

func partyOf(p *ical.Prop) Party {
	pt := Party{Address: address.Normalize(p.Value)}
	// One pass over the parameters (usually one to three) instead of a
	// lookup for each name read.
	for name, vs := range p.Params {
		if len(vs) == 0 {
			continue
		}
		switch name {
		case "SENT-BY":
			pt.SentBy = address.Normalize(strings.Trim(vs[0], `"`))
		case ical.ParamCommonName:
			pt.CN = vs[0]
		case ical.ParamParticipationStatus:
			pt.PartStat = strings.ToUpper(vs[0])
		case ical.ParamRole:
			pt.Role = strings.ToUpper(vs[0])
		case ical.ParamRSVP:
			pt.RSVP = strings.EqualFold(vs[0], "TRUE")
		}
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
	if p := first(c, name); p != nil {
		return strings.TrimSpace(p.Value)
	}
	return ""
}

// first is c.Props.Get for an upper-case name (a constant such as
// ical.PropUID; Decode and go-ical's Set store names so) without the
// strings.ToUpper go-ical spends on every call.
func first(c *ical.Component, name string) *ical.Prop {
	if ps := c.Props[name]; len(ps) > 0 {
		return &ps[0]
	}
	return nil
}

// param is ps.Get for an upper-case name, as first is Props.Get.
func param(ps ical.Params, name string) string {
	if vs := ps[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
