package filter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// Import loads calendar data into a user's calendar (docs/rules.md "Admin CLI":
// imipctl import): the VEVENTs of the file are grouped by UID into one stored
// object each, with the VTIMEZONEs they use. An existing object with the same
// UID is replaced. It returns the number of events stored.
func (p *Processor) Import(ctx context.Context, user string, r io.Reader) (int, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(storedLimits.MaxBytes)+1))
	if err != nil {
		return 0, err
	}
	cal, err := ics.Decode(data, storedLimits)
	if err != nil {
		return 0, fmt.Errorf("import for %s: %w", user, err)
	}
	byUID := map[string][]*ical.Component{}
	var order []string
	var tzs []*ical.Component
	for _, c := range cal.Children {
		switch c.Name {
		case ical.CompTimezone:
			tzs = append(tzs, c)
		case ical.CompEvent:
			uid := ""
			if p := c.Props.Get(ical.PropUID); p != nil {
				uid = strings.TrimSpace(p.Value)
			}
			if uid == "" {
				return 0, fmt.Errorf("import for %s: VEVENT without UID", user)
			}
			if byUID[uid] == nil {
				order = append(order, uid)
			}
			byUID[uid] = append(byUID[uid], c)
		}
	}
	now := p.now()
	err = p.Store.Write(ctx, func(tx calstore.Tx) error {
		addr := address.Normalize(user)
		if u, err := tx.User(addr); err == nil {
			addr = u.Address
		} else if errors.Is(err, calstore.ErrNotFound) {
			if err := tx.PutUser(calstore.User{Address: addr, Created: now}); err != nil {
				return err
			}
		} else {
			return err
		}
		for _, uid := range order {
			obj := ical.NewCalendar()
			obj.Props.SetText(ical.PropVersion, "2.0")
			obj.Props.SetText(ical.PropProductID, itip.ProdID)
			obj.Children = append(obj.Children, usedZones(tzs, byUID[uid])...)
			obj.Children = append(obj.Children, byUID[uid]...)
			ev, err := tx.Event(addr, uid)
			if err != nil && !errors.Is(err, calstore.ErrNotFound) {
				return err
			}
			ev.UID, ev.Data, ev.Updated = uid, ics.Marshal(obj), now
			ev.History = append(ev.History, calstore.HistoryEntry{Time: now, Method: "import", Outcome: string(itip.Applied), Summary: "imported"})
			if err := tx.PutEvent(addr, ev); err != nil {
				return err
			}
			if err := learnParties(tx, addr, obj, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return len(order), err
}

// usedZones returns the VTIMEZONEs whose TZID the components reference.
func usedZones(tzs, comps []*ical.Component) []*ical.Component {
	used := map[string]bool{}
	var walk func(c *ical.Component)
	walk = func(c *ical.Component) {
		for _, ps := range c.Props {
			for _, p := range ps {
				if id := p.Params.Get(ical.ParamTimezoneID); id != "" {
					used[id] = true
				}
			}
		}
		for _, ch := range c.Children {
			walk(ch)
		}
	}
	for _, c := range comps {
		walk(c)
	}
	var out []*ical.Component
	for _, tz := range tzs {
		if p := tz.Props.Get(ical.PropTimezoneID); p != nil && used[p.Value] {
			out = append(out, tz)
		}
	}
	return out
}

// servableZone is tz without the observances whose rule no zone has
// (ics.ZoneRuleNever: stored before intake refused them; python-icalendar
// fails on the whole file over one), nil when none is left. The events keep
// their TZID, which calendar apps then resolve by name, as for CalDAV
// (ics.Escaped).
func servableZone(tz *ical.Component) *ical.Component {
	var keep []*ical.Component
	for _, o := range tz.Children {
		rr, dt := o.Props.Get(ical.PropRecurrenceRule), o.Props.Get(ical.PropDateTimeStart)
		if rr != nil && dt != nil && ics.ZoneRuleNever(dt.Value, rr.Value) {
			continue
		}
		keep = append(keep, o)
	}
	if len(keep) == 0 {
		return nil
	}
	out := *tz
	out.Children = keep
	return &out
}

// Export writes one VCALENDAR with every event of the user, overrides included,
// each VTIMEZONE once (docs/rules.md "Admin CLI": imipctl export). An event
// whose stored copy does not decode is left out and logged.
func (p *Processor) Export(ctx context.Context, user string, w io.Writer) error {
	var events []calstore.Event
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		events, err = tx.Events(user)
		return err
	})
	if err != nil {
		return err
	}
	out := ical.NewCalendar()
	out.Props.SetText(ical.PropVersion, "2.0")
	out.Props.SetText(ical.PropProductID, itip.ProdID)
	tz := map[string]*ical.Component{}
	var comps []*ical.Component
	for _, ev := range events {
		cal, err := ics.Decode(ev.Data, storedLimits)
		if err != nil {
			// A damaged copy (written before calendar apps' writes were
			// checked) is left out with a log line, not the whole export
			// and feed with it.
			p.logger().Warn("export: stored event unreadable, left out", "user", user, "uid", ev.UID, "err", err)
			continue
		}
		for _, c := range cal.Children {
			switch c.Name {
			case ical.CompTimezone:
				if p := c.Props.Get(ical.PropTimezoneID); p != nil && tz[p.Value] == nil {
					if z := servableZone(c); z != nil {
						tz[p.Value] = z
					}
				}
			default:
				comps = append(comps, c)
			}
		}
	}
	var ids []string
	for id := range tz {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out.Children = append(out.Children, tz[id])
	}
	out.Children = append(out.Children, comps...)
	return ics.Encode(w, out)
}
