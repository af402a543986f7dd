package filter

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"

	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// What a CalDAV client may write: in an event the user attends, the user's
// own PARTSTAT (an answer: decided like `imipctl respond`, the REPLY goes
// through the outbox, RFC 6638 implicit scheduling from the attendee's
// side), VALARMs, TRANSP and CLASS (personal, stored, nothing sent).
// Deleting such an event declines it (the event stays, DECLINED). Anything
// else is 403 with a body that says what was refused. Events the user
// organizes are read-only over CalDAV in this version.

// personalProps are stored from the client and never sent.
var personalProps = map[string]bool{ical.PropTransparency: true, ical.PropClass: true}

// ignoredProps may differ in what a client sends back without meaning a
// change (clients restamp, bump SEQUENCE on any save as python-caldav does,
// add their own X- properties); they are not stored either: the stored
// copy is only changed by the allowed edits.
var ignoredProps = map[string]bool{ical.PropDateTimeStamp: true, ical.PropLastModified: true, ical.PropCreated: true, ical.PropSequence: true}

var dateProps = map[string]bool{ical.PropDateTimeStart: true, ical.PropRecurrenceID: true, ical.PropExceptionDates: true,
	ical.PropRecurrenceDates: true, ical.PropDue: true}

var actionOf = map[string]string{"ACCEPTED": "accept", "TENTATIVE": "tentative", "DECLINED": "decline"}

func forbidden(format string, a ...any) error {
	return httpError(http.StatusForbidden, fmt.Errorf(format, a...))
}

// checkPrecondition applies If-Match / If-None-Match to the current ETag
// ("" = no resource).
func checkPrecondition(etag string, ifMatch, ifNoneMatch webdav.ConditionalMatch) error {
	if ifMatch.IsSet() {
		if etag == "" {
			return httpError(http.StatusPreconditionFailed, errors.New("If-Match: no such resource"))
		}
		if !ifMatch.IsWildcard() {
			want, err := ifMatch.ETag()
			if err != nil {
				return httpError(http.StatusBadRequest, fmt.Errorf("If-Match: %v", err))
			}
			if want != etag {
				return httpError(http.StatusPreconditionFailed, errors.New("If-Match: the event changed meanwhile; reload it"))
			}
		}
	}
	if ifNoneMatch.IsSet() && etag != "" {
		if ifNoneMatch.IsWildcard() {
			return httpError(http.StatusPreconditionFailed, errors.New("If-None-Match: the event exists"))
		}
		if want, err := ifNoneMatch.ETag(); err == nil && want == etag {
			return httpError(http.StatusPreconditionFailed, errors.New("If-None-Match: the event is unchanged"))
		}
	}
	return nil
}

// loadForWrite reads the user's record and stored event (the event's data
// decoded) for a client write.
func (s *CalDAVServer) loadForWrite(ctx context.Context, user, uid string) (itip.User, calstore.Event, *ical.Calendar, error) {
	var u calstore.User
	var ev calstore.Event
	err := s.proc.Store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if u, err = tx.User(user); err != nil {
			return err
		}
		ev, err = tx.Event(user, uid)
		return err
	})
	if errors.Is(err, calstore.ErrNotFound) {
		return itip.User{}, ev, nil, nil
	}
	if err != nil {
		return itip.User{}, ev, nil, err
	}
	cal, err := ics.Decode(ev.Data, storedLimits)
	if err != nil {
		return itip.User{}, ev, nil, fmt.Errorf("stored event %s of %s: %w", uid, user, err)
	}
	return itip.User{Address: u.Address, Aliases: u.Aliases, Delegates: u.Delegates}, ev, cal, nil
}

// organizedBy reports whether the user organizes the stored event.
func organizedBy(cal *ical.Calendar, u *itip.User) bool {
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			if p := c.Props.Get(ical.PropOrganizer); p != nil && u.Is(itip.NormAddr(p.Value)) {
				return true
			}
		}
	}
	return false
}

const organizerRefusal = "this is your own event (you are its organizer): imipd does not take organizer changes from calendar apps yet; change the event where you created it and send the update by mail"

// compKey is a component's RECURRENCE-ID in the canonical form itip uses
// ("" for the master).
func compKey(c *ical.Component, z *ics.Zones) string {
	p := c.Props.Get(ical.PropRecurrenceID)
	if p == nil {
		return ""
	}
	if t, err := z.PropTime(p); err == nil {
		return timeKey(t)
	}
	return strings.TrimSpace(p.Value)
}

func timeKey(t ics.Time) string {
	switch {
	case t.AllDay:
		return t.T.Format("20060102")
	case t.Floating:
		return t.T.Format("20060102T150405")
	}
	return t.T.UTC().Format("20060102T150405Z")
}

func eventComps(cal *ical.Calendar, z *ics.Zones) (map[string]*ical.Component, []string) {
	m := map[string]*ical.Component{}
	var keys []string
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			k := compKey(c, z)
			m[k] = c
			keys = append(keys, k)
		}
	}
	return m, keys
}

// propValues is a property's values in a form that compares meaningfully.
func propValues(c *ical.Component, name string, z *ics.Zones) []string {
	var out []string
	for i := range c.Props[name] {
		p := &c.Props[name][i]
		if dateProps[name] {
			if ts, err := z.PropTimes(p); err == nil {
				for _, t := range ts {
					out = append(out, timeKey(t))
				}
				continue
			}
		}
		v := p.Value
		if t, err := p.Text(); err == nil {
			v = t
		}
		v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
		if name == ical.PropOrganizer {
			v = itip.NormAddr(v)
		}
		out = append(out, v)
	}
	if name == ical.PropSequence && len(out) == 0 {
		out = []string{"0"}
	}
	sort.Strings(out)
	return out
}

// endKey is the effective end of a component (DTEND, or DTSTART+DURATION).
func endKey(c *ical.Component, z *ics.Zones) string {
	if p := c.Props.Get(ical.PropDateTimeEnd); p != nil {
		if t, err := z.PropTime(p); err == nil {
			return timeKey(t)
		}
		return p.Value
	}
	d := c.Props.Get(ical.PropDuration)
	st := c.Props.Get(ical.PropDateTimeStart)
	if d == nil || st == nil {
		return ""
	}
	t, err := z.PropTime(st)
	dur, err2 := ics.ParseDuration(strings.TrimSpace(d.Value))
	if err != nil || err2 != nil {
		return d.Value
	}
	t.T = dur.AddTo(t.T)
	return timeKey(t)
}

// attendees maps each attendee to its PARTSTAT.
func attendees(c *ical.Component) map[string]string {
	m := map[string]string{}
	for _, p := range c.Props[ical.PropAttendee] {
		ps := strings.ToUpper(p.Params.Get(ical.ParamParticipationStatus))
		if ps == "" {
			ps = "NEEDS-ACTION"
		}
		m[itip.NormAddr(p.Value)] = ps
	}
	return m
}

// diffComp returns what changed between a stored component and the
// client's, other than the allowed edits, and the user's PARTSTAT before
// and after ("" when the user is not an attendee).
func diffComp(sc, nc *ical.Component, sz, nz *ics.Zones, u *itip.User) (bad []string, oldPS, newPS string) {
	names := map[string]bool{}
	for n := range sc.Props {
		names[n] = true
	}
	for n := range nc.Props {
		names[n] = true
	}
	for n := range names {
		if ignoredProps[n] || personalProps[n] || strings.HasPrefix(n, "X-") || n == ical.PropAttendee ||
			n == ical.PropDateTimeEnd || n == ical.PropDuration {
			continue
		}
		if !slices.Equal(propValues(sc, n, sz), propValues(nc, n, nz)) {
			bad = append(bad, n)
		}
	}
	if endKey(sc, sz) != endKey(nc, nz) {
		bad = append(bad, "DTEND")
	}
	sa, na := attendees(sc), attendees(nc)
	attOK := len(sa) == len(na)
	for a, ps := range sa {
		nps, ok := na[a]
		switch {
		case !ok:
			attOK = false
		case u.Is(a):
			oldPS, newPS = ps, nps
		case nps != ps:
			attOK = false
		}
	}
	if !attOK {
		bad = append(bad, "ATTENDEE (other than your own PARTSTAT)")
	}
	sort.Strings(bad)
	return bad, oldPS, newPS
}

// Preconditions of RFC 4791 §5.3.2.1 a refused PUT names.
const (
	preValidData     = "valid-calendar-data"
	preSupportedData = "supported-calendar-data"
	preMaxSize       = "max-resource-size"
	preMaxAttendees  = "max-attendees-per-instance"
	caldavNS         = "urn:ietf:params:xml:ns:caldav"
	imipdNS          = "urn:imipd"
)

// davError is a refused client write: its HTTP status and, where RFC 4791
// §5.3.2.1 names one, the CalDAV precondition it violates.
type davError struct {
	code int
	cond string
	err  error
}

func (e *davError) Error() string { return e.err.Error() }
func (e *davError) Unwrap() error { return e.err }

func httpError(code int, err error) error { return &davError{code: code, err: err} }

// precondition is a refused write naming a CalDAV precondition: 413 for
// max-resource-size, 403 for the others.
func precondition(cond string, err error) error {
	code := http.StatusForbidden
	if cond == preMaxSize {
		code = http.StatusRequestEntityTooLarge
	}
	return &davError{code: code, cond: cond, err: err}
}

// toWebDAV converts a davError for go-webdav's handler, which knows only
// its own error type.
func toWebDAV(err error) error {
	var de *davError
	if errors.As(err, &de) {
		return webdav.NewHTTPError(de.code, err)
	}
	return err
}

// limitPrecondition maps a decoding error of a client's calendar data to
// the precondition it violates.
func limitPrecondition(err error) error {
	var le *ics.LimitError
	if errors.As(err, &le) {
		switch le.Reason {
		case ics.ReasonCalendarSize:
			return precondition(preMaxSize, err)
		case ics.ReasonAttendees:
			return precondition(preMaxAttendees, err)
		}
	}
	return precondition(preValidData, err)
}

// servePut takes a client's PUT of one calendar object. The body is decoded
// by imipd's bounded decoder with the limits of mail ([limits]), never by
// go-ical's (which has no limits and panics on some input), and every check
// happens before anything is written: a refused PUT changes nothing.
func (s *CalDAVServer) servePut(w http.ResponseWriter, r *http.Request, user string) {
	uid, err := uidOfPath(user, r.URL.Path)
	if err != nil {
		writeDAVError(w, forbidden("%s is not in your calendar %s", r.URL.Path, calendarPath(user)))
		return
	}
	refuse := func(err error) {
		s.log.Info("caldav: write refused", "user", user, "uid", uid, "err", err)
		writeDAVError(w, err)
	}
	if t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || t != ical.MIMEType {
		refuse(precondition(preSupportedData, errors.New("the body must be text/calendar")))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(precondition(preMaxSize, fmt.Errorf("more than %d bytes", mbe.Limit)))
			return
		}
		refuse(httpError(http.StatusBadRequest, fmt.Errorf("request body: %w", err)))
		return
	}
	cal, err := ics.Decode(body, s.proc.Cfg.ICS)
	if err != nil {
		refuse(limitPrecondition(err))
		return
	}
	dr := davReq(r.Context())
	ev, err := s.attendeePut(r.Context(), user, uid, cal, dr.ifMatch, dr.ifNoneMatch)
	if err != nil {
		refuse(err)
		return
	}
	w.Header().Set("ETag", `"`+ETag(ev.Data)+`"`)
	if !ev.Updated.IsZero() {
		w.Header().Set("Last-Modified", ev.Updated.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeDAVError answers a refused request: a precondition as a DAV:error
// body (RFC 4918 §16) with imipd's explanation beside it, another davError
// with its status and text, anything else 500.
func writeDAVError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var de *davError
	if errors.As(err, &de) {
		code = de.code
	}
	if de == nil || de.cond == "" {
		http.Error(w, err.Error(), code)
		return
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	fmt.Fprintf(&b, `<D:error xmlns:D="DAV:" xmlns:C="%s" xmlns:I="%s"><C:%s/><I:detail>`, caldavNS, imipdNS, de.cond)
	xml.EscapeText(&b, []byte(err.Error()))
	b.WriteString("</I:detail></D:error>\n")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, b.String())
}

// answerChange is one PARTSTAT change to apply.
type answerChange struct{ rid, action string }

// attendeePut applies a client's PUT of an existing event.
func (s *CalDAVServer) attendeePut(ctx context.Context, user, uid string, cal *ical.Calendar, ifMatch, ifNoneMatch webdav.ConditionalMatch) (calstore.Event, error) {
	u, ev, stored, err := s.loadForWrite(ctx, user, uid)
	if err != nil {
		return ev, err
	}
	if stored == nil {
		if err := checkPrecondition("", ifMatch, ifNoneMatch); err != nil {
			return ev, err
		}
		return ev, forbidden("imipd's calendar holds the invitations that arrive by mail; creating events from a calendar app is not supported")
	}
	if err := checkPrecondition(ETag(ev.Data), ifMatch, ifNoneMatch); err != nil {
		return ev, err
	}
	// go-webdav decoded the body with go-ical, which leaves RFC 6868
	// escapes in parameter values: read them as Decode does.
	ics.Unescape(cal)
	typ, newUID, err := caldav.ValidateCalendarObject(cal)
	if err != nil {
		return ev, httpError(http.StatusBadRequest, err)
	}
	if typ != ical.CompEvent {
		return ev, forbidden("only VEVENT objects are supported, not %s", typ)
	}
	if newUID != uid {
		return ev, forbidden("the UID %q does not match the resource's UID %q", newUID, uid)
	}
	if organizedBy(stored, &u) {
		return ev, forbidden(organizerRefusal)
	}
	sz, nz := ics.NewZones(stored), ics.NewZones(cal)
	sm, skeys := eventComps(stored, sz)
	nm, nkeys := eventComps(cal, nz)
	for _, k := range nkeys {
		if sm[k] == nil {
			return ev, forbidden("adding an occurrence (RECURRENCE-ID %s) is not allowed: you may change only your own PARTSTAT, alarms, TRANSP and CLASS; answer the whole series or an occurrence the organizer sent", k)
		}
	}
	var changes []answerChange
	var refused []string
	for _, k := range skeys {
		nc := nm[k]
		if nc == nil {
			return ev, forbidden("removing an occurrence (RECURRENCE-ID %s) is not allowed: decline it instead", k)
		}
		bad, oldPS, newPS := diffComp(sm[k], nc, sz, nz, &u)
		for _, b := range bad {
			if !slices.Contains(refused, b) {
				refused = append(refused, b)
			}
		}
		if oldPS != newPS {
			a, ok := actionOf[newPS]
			if !ok {
				return ev, forbidden("PARTSTAT %s cannot be set from a calendar app: answer ACCEPTED, TENTATIVE or DECLINED", newPS)
			}
			changes = append(changes, answerChange{rid: k, action: a})
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return ev, forbidden("this event belongs to its organizer: you may change only your own PARTSTAT, alarms (VALARM), TRANSP and CLASS; refused changes: %s", strings.Join(refused, ", "))
	}
	// A whole-series answer sets every instance; instances answered the
	// same way need no answer of their own.
	if len(changes) > 0 && changes[0].rid == "" {
		master := changes[0]
		rest := changes[:1]
		for _, c := range changes[1:] {
			if c.action != master.action {
				rest = append(rest, c)
			}
		}
		changes = rest
	}
	// The personal part must fit before any answer is committed: a refused
	// write changes nothing.
	if _, err := mergePersonal(stored, cal); err != nil {
		return ev, err
	}
	for _, c := range changes {
		if _, err := s.proc.Answer(ctx, user, uid, c.rid, c.action); err != nil {
			return ev, fmt.Errorf("answer %s of %s: %w", uid, user, err)
		}
	}
	return s.storePersonal(ctx, user, uid, cal)
}

// storePersonal copies TRANSP, CLASS and the VALARMs of the client's
// components into the stored ones and returns the stored event.
func (s *CalDAVServer) storePersonal(ctx context.Context, user, uid string, cal *ical.Calendar) (calstore.Event, error) {
	var out calstore.Event
	err := s.proc.Store.Write(ctx, func(tx calstore.Tx) error {
		ev, stored, err := loadEvent(tx, user, uid, nil)
		if err != nil {
			return err
		}
		if stored == nil {
			return httpError(http.StatusNotFound, fmt.Errorf("event %s is gone", uid))
		}
		out = ev
		data, err := mergePersonal(stored, cal)
		if err != nil || bytes.Equal(data, ev.Data) {
			return err
		}
		now := s.proc.now()
		ev.Data = data
		ev.Updated = now
		ev.History = append(ev.History, calstore.HistoryEntry{Time: now, Method: "caldav", Outcome: string(itip.Applied), Reason: "personal",
			Summary: "alarms, TRANSP and CLASS from the user's calendar app"})
		if err := tx.PutEvent(user, ev); err != nil {
			return err
		}
		out, err = tx.Event(user, uid)
		return err
	})
	return out, err
}

// mergePersonal copies TRANSP, CLASS and the VALARMs of the client's
// components into stored (a copy of its own: it is changed) and returns
// the encoded result, refused unless it decodes again within the limits of
// stored objects: what is stored must stay readable by every view (CalDAV,
// feed, export, the next message).
func mergePersonal(stored, cal *ical.Calendar) ([]byte, error) {
	nm, _ := eventComps(cal, ics.NewZones(cal))
	sz := ics.NewZones(stored)
	for _, c := range stored.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		nc := nm[compKey(c, sz)]
		if nc == nil {
			continue
		}
		for name := range personalProps {
			if ps := nc.Props[name]; len(ps) > 0 {
				c.Props[name] = slices.Clone(ps[:1])
			} else {
				delete(c.Props, name)
			}
		}
		var kids []*ical.Component
		for _, k := range c.Children {
			if k.Name != ical.CompAlarm {
				kids = append(kids, k)
			}
		}
		for _, k := range nc.Children {
			if k.Name == ical.CompAlarm {
				kids = append(kids, k)
			}
		}
		c.Children = kids
	}
	data := ics.Marshal(stored)
	if data == nil {
		return nil, precondition(preValidData, errors.New("the event with your changes cannot be encoded"))
	}
	if _, err := ics.Decode(data, storedLimits); err != nil {
		return nil, limitPrecondition(fmt.Errorf("the event with your changes: %w", err))
	}
	return data, nil
}

// attendeeDelete declines an event the user attends; the event stays in
// the calendar with the user's PARTSTAT DECLINED.
func (s *CalDAVServer) attendeeDelete(ctx context.Context, user, uid string, ifMatch webdav.ConditionalMatch) error {
	u, ev, stored, err := s.loadForWrite(ctx, user, uid)
	if err != nil {
		return err
	}
	if stored == nil {
		return httpError(http.StatusNotFound, fmt.Errorf("no event %s", uid))
	}
	if err := checkPrecondition(ETag(ev.Data), ifMatch, ""); err != nil {
		return err
	}
	if organizedBy(stored, &u) {
		return forbidden(organizerRefusal)
	}
	sz := ics.NewZones(stored)
	sm, _ := eventComps(stored, sz)
	master := sm[""]
	if master == nil {
		for _, c := range sm {
			master = c
			break
		}
	}
	ps, attends := "", false
	for a, p := range attendees(master) {
		if u.Is(a) {
			ps, attends = p, true
		}
	}
	if !attends {
		return forbidden("you are not an attendee of this event, so it cannot be declined; imipd keeps the events it received")
	}
	if ps == "DECLINED" {
		return nil
	}
	_, err = s.proc.Answer(ctx, user, uid, "", "decline")
	return err
}

// Answer sets the user's PARTSTAT on a stored event (whole event, or the
// instance rid in itip's RECURRENCE-ID form) with action accept, tentative
// or decline. It reuses the decision of `imipctl respond`: the open
// invitation or rescheduled item of the UID and instance is decided with
// Respond; when none is open (the user answered before and changes their
// mind), the same itip.Respond decision is taken on the stored copy. Either
// way the REPLY goes to the outbox and OnEnqueue wakes the sender.
func (p *Processor) Answer(ctx context.Context, user, uid, rid, action string) (itip.Result, error) {
	if _, ok := map[string]bool{"accept": true, "tentative": true, "decline": true}[action]; !ok {
		return itip.Result{}, fmt.Errorf("%w: %q", itip.ErrAction, action)
	}
	var id uint64
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		open, err := tx.PendingForUID(user, uid)
		for _, pi := range open {
			if (pi.Kind == itip.KindInvitation || pi.Kind == itip.KindRescheduled) && pi.RecurrenceID == rid {
				id = pi.ID
			}
		}
		return err
	})
	if err != nil {
		return itip.Result{}, err
	}
	if id != 0 {
		res, err := p.Respond(ctx, user, id, action, "")
		if !errors.Is(err, ErrNotOpen) {
			return res, err
		}
		// Decided meanwhile: answer on the stored copy.
	}
	now := p.now()
	var res itip.Result
	err = p.Store.Write(ctx, func(tx calstore.Tx) error {
		u, err := p.ensureUser(tx, user, now)
		if err != nil {
			return err
		}
		ev, stored, err := loadEvent(tx, u.Address, uid, nil)
		if err != nil {
			return err
		}
		if stored == nil {
			return fmt.Errorf("event %s of %s: %w", uid, u.Address, calstore.ErrNotFound)
		}
		req, err := ics.Decode(ev.Data, storedLimits)
		if err != nil {
			return err
		}
		req.Props.SetText(ical.PropMethod, string(itip.Request))
		msg, err := itip.ParseMessage(req)
		if err != nil {
			return fmt.Errorf("event %s of %s: %w", uid, u.Address, err)
		}
		res, err = itip.Respond(itip.Decision{Kind: itip.KindInvitation, Action: action, RecurrenceID: rid, Msg: msg, Stored: stored, User: u, Now: now})
		if err != nil {
			return err
		}
		h := calstore.HistoryEntry{Method: "respond", Outcome: string(res.Outcome), Reason: action, Summary: "answered from a calendar app: " + action}
		return commit(tx, u.Address, ev, stored, res, h, origin{}, 0, now, nil)
	})
	if err == nil && len(res.Send) > 0 && p.OnEnqueue != nil {
		p.OnEnqueue()
	}
	return res, err
}
