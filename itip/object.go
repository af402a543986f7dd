package itip

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// object wraps a stored calendar (master and overrides of one UID) with its
// zone cache, so RECURRENCE-IDs compare as instants.
type object struct {
	cal   *ical.Calendar
	zones *ics.Zones
}

func newObject(cal *ical.Calendar) *object {
	if cal == nil {
		return nil
	}
	return &object{cal: cal, zones: ics.NewZones(cal)}
}

// events returns the VEVENT children.
func (o *object) events() []*ical.Component {
	var out []*ical.Component
	for _, c := range o.cal.Children {
		if c.Name == ical.CompEvent {
			out = append(out, c)
		}
	}
	return out
}

// find returns the component for a RECURRENCE-ID key ("" = master), or nil.
func (o *object) find(rid string) *ical.Component {
	for _, c := range o.events() {
		if o.rid(c) == rid {
			return c
		}
	}
	return nil
}

func (o *object) rid(c *ical.Component) string {
	p := c.Props.Get(ical.PropRecurrenceID)
	if p == nil {
		return ""
	}
	k, err := InstanceKey(p, o.zones)
	if err != nil {
		return strings.TrimSpace(p.Value)
	}
	return k
}

// master returns the master component or nil.
func (o *object) master() *ical.Component { return o.find("") }

// target returns the component a message instance is compared against: the
// override with that RECURRENCE-ID, else the master (RFC 5546 §2.1.5).
func (o *object) target(rid string) *ical.Component {
	if c := o.find(rid); c != nil {
		return c
	}
	return o.master()
}

// replace puts c in place of the component with the same RECURRENCE-ID or
// appends it.
func (o *object) replace(rid string, c *ical.Component) {
	for i, x := range o.cal.Children {
		if x.Name == ical.CompEvent && o.rid(x) == rid {
			o.cal.Children[i] = c
			return
		}
	}
	o.cal.Children = append(o.cal.Children, c)
}

// organizer returns the stored organizer (first component naming one).
func (o *object) organizer() Party {
	for _, c := range o.events() {
		if p := c.Props.Get(ical.PropOrganizer); p != nil {
			return partyOf(p)
		}
	}
	return Party{}
}

// hasParty reports whether addr is organizer or attendee in any component.
func (o *object) hasParty(addr string) bool {
	for _, c := range o.events() {
		if p := c.Props.Get(ical.PropOrganizer); p != nil && address.Normalize(p.Value) == addr {
			return true
		}
		if attendeeProp(c, addr) != nil {
			return true
		}
	}
	return false
}

func (o *object) version(c *ical.Component) (int, time.Time) {
	seq := 0
	if p := c.Props.Get(ical.PropSequence); p != nil {
		seq = atoiLoose(p.Value)
	}
	var st time.Time
	if p := c.Props.Get(ical.PropDateTimeStamp); p != nil {
		if t, err := o.zones.PropTime(p); err == nil {
			st = t.T
		}
	}
	return seq, st
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
	n := &ical.Component{Name: c.Name, Props: make(ical.Props, len(c.Props)), Children: slices.Clone(c.Children)}
	maps.Copy(n.Props, c.Props)
	return n
}

// shallowCal copies a calendar's top component (shallowComp): for copy on
// write, with ownAttendees before a change.
func shallowCal(cal *ical.Calendar) *ical.Calendar {
	return &ical.Calendar{Component: shallowComp(cal.Component)}
}

// ownAttendees puts in place of the child c of o's calendar a copy with its
// own property map and its own ATTENDEE list (each attendee's parameters
// still shared: copy the one to change), and returns it.
func (o *object) ownAttendees(c *ical.Component) *ical.Component {
	n := shallowComp(c)
	n.Props[ical.PropAttendee] = append([]ical.Prop(nil), c.Props[ical.PropAttendee]...)
	for i, ch := range o.cal.Children {
		if ch == c {
			o.cal.Children[i] = n
		}
	}
	return n
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
func (o *object) uid() string {
	for _, c := range o.events() {
		if v := propValue(c, ical.PropUID); v != "" {
			return v
		}
	}
	return ""
}

// summary returns the SUMMARY of the master (or first component), its
// TEXT escapes read.
func (o *object) summary() string {
	c := o.master()
	if evs := o.events(); c == nil && len(evs) > 0 {
		c = evs[0]
	}
	if c == nil {
		return ""
	}
	return ics.UnescapeText(propValue(c, ical.PropSummary))
}
