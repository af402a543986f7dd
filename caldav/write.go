package caldav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	gocaldav "github.com/emersion/go-webdav/caldav"

	"imipd/calstore"
	"imipd/filter"
	"imipd/itip"
	"imipd/itip/ics"
)

// What a CalDAV client may write in an event the user attends is itip's
// rule (itip.AttendeeEdit, RFC 6638 §3.2.2.1): the user's own PARTSTAT (an
// answer: decided like `imipctl respond`, the REPLY goes through the
// outbox), VALARMs, TRANSP and CLASS (personal, stored, nothing sent).
// Deleting such an event declines it (the event stays, DECLINED). Anything
// else is 403 with a body that says what was refused. Events the user
// organizes are read-only over CalDAV in this version.

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
// decoded) for a client write; the calendar is nil when either is missing.
func (s *Server) loadForWrite(ctx context.Context, user, uid string) (itip.User, calstore.Event, *ical.Calendar, error) {
	var u calstore.User
	var ev calstore.Event
	var cal *ical.Calendar
	err := s.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if u, err = tx.User(user); err != nil {
			return err
		}
		ev, cal, err = readEvent(tx, user, uid)
		return err
	})
	if errors.Is(err, calstore.ErrNotFound) {
		return itip.User{}, ev, nil, nil
	}
	if err != nil || cal == nil {
		return itip.User{}, ev, nil, err
	}
	return s.sched.UserView(u), ev, cal, nil
}

// readEvent reads and decodes the user's stored event uid; the calendar is
// nil when there is none.
func readEvent(tx calstore.EventTx, user, uid string) (calstore.Event, *ical.Calendar, error) {
	ev, err := tx.Event(user, uid)
	if errors.Is(err, calstore.ErrNotFound) {
		return calstore.Event{UID: uid}, nil, nil
	}
	if err != nil {
		return ev, nil, err
	}
	cal, err := decodeStored(user, ev)
	return ev, cal, err
}

const organizerRefusal = "this is your own event (you are its organizer): imipd does not take organizer changes from calendar apps yet; change the event where you created it and send the update by mail"

// reasonPersonal is the history's reason word for a calendar app's write
// of the personal part of an event (alarms, TRANSP, CLASS; README "The
// header" lists it among the words of the log only).
const reasonPersonal itip.Reason = "personal"

// Preconditions of RFC 4791 §5.3.2.1 and RFC 6638 a refused PUT names.
const (
	preValidData     = "valid-calendar-data"
	preSupportedData = "supported-calendar-data"
	preMaxSize       = "max-resource-size"
	preMaxAttendees  = "max-attendees-per-instance"
	// RFC 6638 §3.2.4.4 (listed in §3.2.2.1): an attendee changed what
	// only the organizer may.
	preAttendeeChange = "allowed-attendee-scheduling-object-change"
	caldavNS          = "urn:ietf:params:xml:ns:caldav"
	imipdNS           = "urn:imipd"
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
func (s *Server) servePut(w http.ResponseWriter, r *http.Request, user string) {
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
	cal, err := ics.Decode(body, s.opt.Limits)
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
	w.Header().Set("ETag", `"`+etag(ev.Data)+`"`)
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

// attendeePut applies a client's PUT of an existing event.
func (s *Server) attendeePut(ctx context.Context, user, uid string, cal *ical.Calendar, ifMatch, ifNoneMatch webdav.ConditionalMatch) (calstore.Event, error) {
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
	if err := checkPrecondition(etag(ev.Data), ifMatch, ifNoneMatch); err != nil {
		return ev, err
	}
	typ, newUID, err := gocaldav.ValidateCalendarObject(cal)
	if err != nil {
		return ev, httpError(http.StatusBadRequest, err)
	}
	if typ != ical.CompEvent {
		return ev, forbidden("only VEVENT objects are supported, not %s", typ)
	}
	if newUID != uid {
		return ev, forbidden("the UID %q does not match the resource's UID %q", newUID, uid)
	}
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		if err := itip.CheckEventComponents(c); err != nil {
			return ev, precondition(preValidData, err)
		}
	}
	if itip.OrganizedBy(stored, &u) {
		return ev, forbidden(organizerRefusal)
	}
	answers, err := itip.AttendeeEdit(stored, cal, &u)
	if err != nil {
		return ev, precondition(preAttendeeChange, err)
	}
	// The personal part must fit before any answer is committed: a refused
	// write changes nothing.
	if _, err := mergePersonal(stored, cal); err != nil {
		return ev, err
	}
	for _, a := range answers {
		if _, err := s.sched.Respond(ctx, filter.RespondRequest{User: user, UID: uid, RecurrenceID: a.RecurrenceID, Action: a.Action}); err != nil {
			return ev, fmt.Errorf("answer %s of %s: %w", uid, user, err)
		}
	}
	return s.storePersonal(ctx, user, uid, cal)
}

// storePersonal copies TRANSP, CLASS and the VALARMs of the client's
// components into the stored ones and returns the stored event.
func (s *Server) storePersonal(ctx context.Context, user, uid string, cal *ical.Calendar) (calstore.Event, error) {
	var out calstore.Event
	err := s.store.Write(ctx, func(tx calstore.Tx) error {
		ev, stored, err := readEvent(tx, user, uid)
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
		now := s.opt.Now()
		ev.Data = data
		ev.Updated = now
		ev.History = append(ev.History, calstore.HistoryEntry{Time: now, Method: "caldav", Outcome: string(itip.Applied), Reason: string(reasonPersonal),
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
// components into a copy of stored (itip.WithPersonal) and returns the
// encoded result, refused unless it decodes again within the limits of
// stored objects: what is stored must stay readable by every view (CalDAV,
// feed, export, the next message).
func mergePersonal(stored, cal *ical.Calendar) ([]byte, error) {
	stored = itip.WithPersonal(stored, cal)
	data := ics.Marshal(stored)
	if data == nil {
		return nil, precondition(preValidData, errors.New("the event with your changes cannot be encoded"))
	}
	if _, err := ics.Decode(data, ics.StoredLimits()); err != nil {
		return nil, limitPrecondition(fmt.Errorf("the event with your changes: %w", err))
	}
	return data, nil
}

// attendeeDelete declines an event the user attends; the event stays in
// the calendar with the user's PARTSTAT DECLINED.
func (s *Server) attendeeDelete(ctx context.Context, user, uid string, ifMatch webdav.ConditionalMatch) error {
	u, ev, stored, err := s.loadForWrite(ctx, user, uid)
	if err != nil {
		return err
	}
	if stored == nil {
		return httpError(http.StatusNotFound, fmt.Errorf("no event %s", uid))
	}
	if err := checkPrecondition(etag(ev.Data), ifMatch, ""); err != nil {
		return err
	}
	if itip.OrganizedBy(stored, &u) {
		return forbidden(organizerRefusal)
	}
	ps, attends := itip.AttendeeStatus(stored, &u)
	if !attends {
		return forbidden("you are not an attendee of this event, so it cannot be declined; imipd keeps the events it received")
	}
	if ps == "DECLINED" {
		return nil
	}
	_, err = s.sched.Respond(ctx, filter.RespondRequest{User: user, UID: uid, Action: "decline"})
	return err
}
