package itip

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// The methods below read a stored copy (readStored) through its
// Instances. A calendar imipd builds is changed through them (replace,
// ownAttendees, makeOverride), which keep the Instances current; a
// property changed in place (a parameter set on an ATTENDEE) is read from
// the component, not from the Instance's Party values.

// events returns the VEVENT components, in the order of Instances.
func (e *Event) events() []*ical.Component {
	out := make([]*ical.Component, len(e.Instances))
	for i, in := range e.Instances {
		out[i] = in.Comp
	}
	return out
}

// instance returns the instance with RECURRENCE-ID key rid ("" = master),
// or nil.
func (e *Event) instance(rid string) *Instance {
	for _, in := range e.Instances {
		if in.RecurrenceID == rid {
			return in
		}
	}
	return nil
}

// find returns the component for a RECURRENCE-ID key ("" = master), or nil.
func (e *Event) find(rid string) *ical.Component {
	if in := e.instance(rid); in != nil {
		return in.Comp
	}
	return nil
}

// instanceOf returns the instance of component c, or nil.
func (e *Event) instanceOf(c *ical.Component) *Instance {
	for _, in := range e.Instances {
		if in.Comp == c {
			return in
		}
	}
	return nil
}

// rid returns the RECURRENCE-ID key of component c of e.
func (e *Event) rid(c *ical.Component) string {
	if in := e.instanceOf(c); in != nil {
		return in.RecurrenceID
	}
	in, _ := readInstance(c, e.Zones, false)
	return in.RecurrenceID
}

// master returns the master component or nil.
func (e *Event) master() *ical.Component { return e.find("") }

// targetInstance returns the instance a message instance is compared
// against: the override with that RECURRENCE-ID, else the master (RFC 5546
// §2.1.5).
func (e *Event) targetInstance(rid string) *Instance {
	if in := e.instance(rid); in != nil {
		return in
	}
	return e.instance("")
}

// target is targetInstance's component.
func (e *Event) target(rid string) *ical.Component {
	if in := e.targetInstance(rid); in != nil {
		return in.Comp
	}
	return nil
}

// replace puts c in place of the component with the same RECURRENCE-ID or
// appends it.
func (e *Event) replace(rid string, c *ical.Component) {
	in, _ := readInstance(c, e.Zones, false)
	in.RecurrenceID = rid
	for k, old := range e.Instances {
		if old.RecurrenceID != rid {
			continue
		}
		for i, x := range e.Cal.Children {
			if x == old.Comp {
				e.Cal.Children[i] = c
			}
		}
		e.Instances[k] = in
		return
	}
	e.Cal.Children = append(e.Cal.Children, c)
	e.Instances = append(e.Instances, in)
}

// organizer returns the stored organizer (first component naming one).
func (e *Event) organizer() Party { return e.Organizer() }

// hasParty reports whether addr is organizer or attendee in any component.
func (e *Event) hasParty(addr string) bool {
	for _, in := range e.Instances {
		if in.Organizer.Address == addr || in.attendeeIndex(addr) >= 0 {
			return true
		}
	}
	return false
}

// version returns SEQUENCE and DTSTAMP of component c of e.
func (e *Event) version(c *ical.Component) (int, time.Time) {
	in := e.instanceOf(c)
	if in == nil {
		in, _ = readInstance(c, e.Zones, false)
	}
	return in.Sequence, in.DTStamp
}

// attendeeProp returns the ATTENDEE property of addr in c, or nil.
func attendeeProp(c *ical.Component, addr string) *ical.Prop {
	for i := range c.Props[ical.PropAttendee] {
		if address.Normalize(c.Props[ical.PropAttendee][i].Value) == addr {
			return &c.Props[ical.PropAttendee][i]
		}
	}
	return nil
}

// userAttendee returns the ATTENDEE property of any of the user's addresses.
func userAttendee(c *ical.Component, u *User) *ical.Prop {
	for i := range c.Props[ical.PropAttendee] {
		if u.Is(address.Normalize(c.Props[ical.PropAttendee][i].Value)) {
			return &c.Props[ical.PropAttendee][i]
		}
	}
	return nil
}

// cloneCal deep-copies a calendar.
func cloneCal(cal *ical.Calendar) *ical.Calendar {
	return &ical.Calendar{Component: cloneComp(cal.Component)}
}

// cloneComp deep-copies a component.
func cloneComp(c *ical.Component) *ical.Component {
	n := &ical.Component{Name: c.Name, Props: make(ical.Props, len(c.Props))}
	for k, ps := range c.Props {
		cp := make([]ical.Prop, len(ps))
		for i, p := range ps {
			cp[i] = cloneProp(p)
		}
		n.Props[k] = cp
	}
	for _, ch := range c.Children {
		n.Children = append(n.Children, cloneComp(ch))
	}
	return n
}

func cloneProp(p ical.Prop) ical.Prop {
	return ical.Prop{Name: p.Name, Value: p.Value, Params: cloneParams(p.Params)}
}

func cloneParams(ps ical.Params) ical.Params {
	q := make(ical.Params, len(ps))
	for k, v := range ps {
		q[k] = append([]string(nil), v...)
	}
	return q
}

// shallowComp copies a component's property map and child list and shares
// everything below them: for copy on write.
func shallowComp(c *ical.Component) *ical.Component {
	// maps.Clone copies the map's groups as they are, without hashing every
	// name again as an insert would.
	props := maps.Clone(c.Props)
	if props == nil {
		props = ical.Props{}
	}
	return &ical.Component{Name: c.Name, Props: props, Children: slices.Clone(c.Children)}
}

// shallowCal copies a calendar's top component (shallowComp): for copy on
// write, with ownAttendees before a change.
func shallowCal(cal *ical.Calendar) *ical.Calendar {
	return &ical.Calendar{Component: shallowComp(cal.Component)}
}

// ownAttendees puts in place of the child c of e's calendar a copy with its
// own property map and its own ATTENDEE list (each attendee's parameters
// still shared: copy the one to change), and returns it.
func (e *Event) ownAttendees(c *ical.Component) *ical.Component {
	n := shallowComp(c)
	n.Props[ical.PropAttendee] = append([]ical.Prop(nil), c.Props[ical.PropAttendee]...)
	for i, ch := range e.Cal.Children {
		if ch == c {
			e.Cal.Children[i] = n
		}
	}
	for k, in := range e.Instances {
		if in.Comp == c {
			cp := e.spareInstance()
			*cp = *in
			cp.Comp = n
			e.Instances[k] = cp
		}
	}
	return n
}

// spareInstance returns e's own storage for an Instance (Event.inst0) when
// no Instance uses it, else a new Instance.
func (e *Event) spareInstance() *Instance {
	if e.inst0.Comp == nil {
		return &e.inst0
	}
	return new(Instance)
}

// shallowCopy is a copy of e for copy on write: its calendar's list of
// components and its list of Instances are its own; every component and
// Instance is shared until replace, ownAttendees or makeOverride puts a new
// one in its place (none changes one in place), and so are the calendar's
// own properties (VERSION, PRODID), which no rule changes.
func (e *Event) shallowCopy() *Event {
	n := *e
	// The storage of e's first Instance and Zones stays e's (its Instances
	// and Zones point there); n's is free for n (spareInstance).
	n.inst0, n.zones0 = Instance{}, ics.Zones{}
	// One allocation for the calendar and its top component.
	cal := &struct {
		cal ical.Calendar
		top ical.Component
	}{top: *e.Cal.Component}
	cal.top.Children = slices.Clone(cal.top.Children)
	cal.cal.Component = &cal.top
	n.Cal = &cal.cal
	n.Instances = append(n.insts0[:0:len(n.insts0)], e.Instances...)
	return &n
}

// newStoredCal makes the VCALENDAR a user's copy lives in: the message's
// VTIMEZONEs and the given components, without METHOD (RFC 4791 §4.1: a stored
// object carries no METHOD).
func newStoredCal(msg *ical.Calendar, comps ...*ical.Component) *ical.Calendar {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, ProdID)
	for _, c := range msg.Children {
		if c.Name == ical.CompTimezone {
			cal.Children = append(cal.Children, cloneComp(c))
		}
	}
	cal.Children = append(cal.Children, comps...)
	return cal
}

// ProdID is the PRODID of objects imipd writes.
const ProdID = "-//imipd//imipd 1//EN"

// mergeTimezones adds VTIMEZONEs of src missing in dst.
func mergeTimezones(dst, src *ical.Calendar) {
	have := map[string]bool{}
	for _, c := range dst.Children {
		if c.Name == ical.CompTimezone {
			have[propValue(c, ical.PropTimezoneID)] = true
		}
	}
	var tz []*ical.Component
	for _, c := range src.Children {
		if c.Name == ical.CompTimezone && !have[propValue(c, ical.PropTimezoneID)] {
			tz = append(tz, cloneComp(c))
		}
	}
	if len(tz) > 0 {
		dst.Children = append(tz, dst.Children...)
	}
}

func setInt(c *ical.Component, name string, v int) {
	p := ical.NewProp(name)
	p.Value = strconv.Itoa(v)
	c.Props.Set(p)
}

// uid returns the event's UID.
func (e *Event) uid() string { return e.UID }

// summary returns the SUMMARY of the master (or first component), its
// TEXT escapes read.
func (e *Event) summary() string {
	c := e.master()
	if c == nil && len(e.Instances) > 0 {
		c = e.Instances[0].Comp
	}
	if c == nil {
		return ""
	}
	return ics.UnescapeText(propValue(c, ical.PropSummary))
}
