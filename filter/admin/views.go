package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip/ics"
)

// EventView is the stable JSON form of an event (docs/rules.md "Interfaces":
// events -json): the master's fields, and the overrides as instances. As
// in all of imipctl's JSON (README "JSON output"), an empty string or list
// is left out; numbers are always there.
type EventView struct {
	UID string `json:"uid"`
	Fields
	Instances []InstanceView `json:"instances,omitempty"`
	// History is filled only for one event (imipctl event).
	History []calstore.HistoryEntry `json:"history,omitempty"`
}

// InstanceView is an override of a recurring event.
type InstanceView struct {
	RecurrenceID string `json:"recurrence_id"`
	Fields
}

// Fields are what the master and every override show.
type Fields struct {
	Summary   string         `json:"summary,omitempty"`
	Organizer string         `json:"organizer,omitempty"`
	Sequence  int            `json:"sequence"`
	Status    string         `json:"status,omitempty"`
	Start     string         `json:"start,omitempty"`
	End       string         `json:"end,omitempty"`
	RRule     string         `json:"rrule,omitempty"`
	Attendees []AttendeeView `json:"attendees,omitempty"`
}

// AttendeeView is one ATTENDEE.
type AttendeeView struct {
	Address  string `json:"address"`
	PartStat string `json:"partstat"`
	Role     string `json:"role"`
	CN       string `json:"cn,omitempty"`
}

// viewEvent decodes a stored event into its view.
func viewEvent(ev calstore.Event) (EventView, error) {
	cal, err := ics.Decode(ev.Data, ics.StoredLimits())
	if err != nil {
		return EventView{UID: ev.UID}, err
	}
	z := ics.NewZones(cal)
	v := EventView{UID: ev.UID, Fields: Fields{Attendees: []AttendeeView{}}, Instances: []InstanceView{}}
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		iv := instanceView(c, z)
		if iv.RecurrenceID == "" {
			v.Fields = iv.Fields
			continue
		}
		v.Instances = append(v.Instances, iv)
	}
	if v.Summary == "" && v.Organizer == "" && len(v.Instances) > 0 {
		// Only overrides are known (an instance that came before its master).
		first := v.Instances[0].Fields
		v.Summary, v.Organizer, v.Sequence, v.Status = first.Summary, first.Organizer, first.Sequence, first.Status
	}
	return v, nil
}

func instanceView(c *ical.Component, z *ics.Zones) InstanceView {
	get := func(name string) string {
		if p := c.Props.Get(name); p != nil {
			return strings.TrimSpace(p.Value)
		}
		return ""
	}
	format := func(t ics.Time) string {
		if t.AllDay {
			return t.T.Format("2006-01-02")
		}
		return t.T.Format(time.RFC3339)
	}
	tm := func(name string) string {
		p := c.Props.Get(name)
		if p == nil {
			return ""
		}
		t, err := z.PropTime(p)
		if err != nil {
			return p.Value
		}
		return format(t)
	}
	iv := InstanceView{Fields: Fields{Summary: ics.Line(c.Props.Get(ical.PropSummary)), Status: strings.ToUpper(get(ical.PropStatus)), RRule: get(ical.PropRecurrenceRule),
		Start: tm(ical.PropDateTimeStart), Attendees: []AttendeeView{}}}
	// The end is shown when the event names one (DTEND or DURATION), as
	// ics.Zones.End reads it (never before the start; an all-day event's
	// as a date); a DTEND that cannot be read as written, a DURATION that
	// cannot be read not at all. Without either, no end is shown, though
	// the event has one (its start, or a day).
	if de := c.Props.Get(ical.PropDateTimeEnd); de != nil || c.Props.Get(ical.PropDuration) != nil {
		if e, err := z.End(c); err == nil {
			iv.End = format(e)
		} else if de != nil {
			iv.End = de.Value
		}
	}
	iv.Sequence, _ = strconv.Atoi(get(ical.PropSequence))
	if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
		iv.RecurrenceID = tm(ical.PropRecurrenceID)
	}
	if p := c.Props.Get(ical.PropOrganizer); p != nil {
		iv.Organizer = address.Normalize(p.Value)
	}
	for _, p := range c.Props[ical.PropAttendee] {
		a := AttendeeView{Address: address.Normalize(p.Value), PartStat: strings.ToUpper(p.Params.Get(ical.ParamParticipationStatus)),
			Role: strings.ToUpper(p.Params.Get(ical.ParamRole)), CN: p.Params.Get(ical.ParamCommonName)}
		if a.PartStat == "" {
			a.PartStat = "NEEDS-ACTION"
		}
		if a.Role == "" {
			a.Role = "REQ-PARTICIPANT"
		}
		iv.Attendees = append(iv.Attendees, a)
	}
	return iv
}
