package filter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/imip"
)

// Config is the part of imipd's configuration the processing call needs.
type Config struct {
	// Header is the outcome header's name (config header; "" =
	// DefaultHeader): the adapters write it and remove forged copies of
	// it (HeaderName).
	Header                     string
	LocalDomains               []string
	DefaultPolicy              itip.Policy
	Timeframe                  time.Duration
	TrustedAuthServIDs         []string
	RequireAuthenticatedSender bool
	LearnSentContacts          bool // people a user wrote to count as known (docs/rules.md "Policy")
	// AutoSendLimit is the budget of automatic mail (REFRESH answers, the
	// REFRESH an ADD asks with) per target address and autoSendWindow,
	// across all senders and local users; 0 = no automatic mail.
	AutoSendLimit int
	// RecipientDelimiter separates a subaddress from the user
	// (address.Base; recipient_delimiter, default "+"); "" = none.
	RecipientDelimiter string
	CreateUsers        string // CreateAuto or CreateListed ([users] create; "" = auto)
	// Caps (SECURITY.md "Limits"; 0 = none): new users per message and per
	// hour (user-limit), events and open pending items per user
	// (event-limit, pending-limit), calendar parts per message
	// (calendar-parts).
	NewUsersPerMessage, NewUsersPerHour int
	EventsPerUser, PendingPerUser       int
	CalendarParts                       int
	// DefaultZone is the time zone of descriptions for users without one
	// of their own (default_timezone); nil = UTC.
	DefaultZone *time.Location
	MIME        imip.Limits
	ICS         ics.Limits
	// Own says which deliveries are a local user's own outgoing mail, by
	// SASL login or, opted in, by the MTA service (ownMail; [milter]
	// logins and outgoing_daemons). Zero: a login must be one of its
	// user's addresses, and mail without a login is nobody's own.
	Own OwnMailRules
}

// DefaultConfig is the embedded default (docs/rules.md "Interfaces").
func DefaultConfig() Config {
	return Config{
		DefaultPolicy:     itip.Known,
		Timeframe:         28 * 24 * time.Hour,
		LearnSentContacts: true,
		AutoSendLimit:     3,
		MIME:              imip.DefaultLimits(),
		ICS:               ics.DefaultLimits(),

		RecipientDelimiter: address.DefaultDelimiter,
		CreateUsers:        CreateAuto,
		NewUsersPerMessage: DefaultNewUsersPerMessage,
		NewUsersPerHour:    DefaultNewUsersPerHour,
		EventsPerUser:      DefaultEventsPerUser,
		PendingPerUser:     defaultPendingPerUser,
		CalendarParts:      DefaultCalendarParts,
	}
}

// Defaults of the caps in [limits] (SECURITY.md "Limits").
const (
	DefaultNewUsersPerMessage = 10
	DefaultNewUsersPerHour    = 50
	DefaultEventsPerUser      = 10000
	defaultPendingPerUser     = 1000
	DefaultCalendarParts      = 10
)

// Processor is the one processing call every transport uses.
type Processor struct {
	Store   calstore.Store
	Cfg     Config
	Log     *slog.Logger
	Now     func() time.Time // the clock, time.Now when nil
	Metrics *Metrics         // nil: no metrics
	// OnEnqueue, when set, is called after a transaction that queued iTIP
	// messages committed (the daemon wakes its outbox sender).
	OnEnqueue func()

	calCache *calCache // decoded stored calendars (calcache.go), made on first use
}

// Delivery is one message as a transport hands it over: raw facts, never a
// decision. Whether the message is a local user's own outgoing mail, which
// recipients are users and what each one's header says, Process decides.
type Delivery struct {
	Transport string   // milter, lmtp, push: the metrics' and the log's label
	MailFrom  string   // envelope sender (MAIL FROM)
	Rcpts     []string // envelope recipients (RCPT TO)
	QueueID   string   // MTA queue id, for logs
	Received  time.Time
	// Login is the SASL login the MTA authenticated ({auth_authen}; ""
	// when none) and Daemon the MTA service that took the message
	// ({daemon_name}): with MailFrom, Config.Own decides from them
	// whether the message is the sender's own (ownMail).
	Login, Daemon string

	// PushUser is the push transport's calendar user: the mailbox owner
	// the push request names, as its primary address (the push adapter
	// resolved it; with push_resolve recipientOnly the message's header
	// recipients decided only whether this user is a recipient, never
	// another user). The message is processed for this user alone,
	// whatever Rcpts say, and the user is not counted against the new-user
	// caps: the mailbox exists.
	PushUser string

	// Message is the message as a stream, read once. Parsed, when set,
	// is the message already parsed while it streamed (Processor.Parse,
	// or a transport that saw the header rule out calendar data); Message
	// is then not read.
	Message io.Reader
	Parsed  *Parsed

	// MaxMessage, when above 0, lowers the MIME caps (Config.MIME: the
	// header block, one calendar part, all calendar data) to what the
	// transport lets processing hold of one message. A message that
	// passes such a lowered cap is not processed: Report.OverMax names
	// the cap and the report's header values are "".
	MaxMessage int64
}

// Parsed is a message a transport parsed while it streamed, with the
// limits Processor.Parse applies, from Start on.
type Parsed struct {
	msg   *imip.Message
	Err   error // imip.Parse's: imip.ErrNoCalendar for mail without calendar data
	start time.Time
}

// CheckRequest is an administrator's message (imipctl check, process,
// scan and catchup): no envelope, the user named by the administrator.
type CheckRequest struct {
	Message   io.Reader
	Transport string // cli, scan, catchup: the log's label
	Received  time.Time
	// User applies the message for this user, whatever its recipients;
	// "" takes the recipients from To and Cc (imipctl check on a file,
	// where there is no envelope).
	User string
	// Outgoing: the message is User's own outgoing mail (imipctl process
	// -outgoing); the administrator vouches for it.
	Outgoing bool
	// DryRun decides and changes nothing (imipctl check): nothing is
	// stored, logged as processed or counted, and the report carries a
	// description of each iTIP object.
	DryRun bool
}

// envelope is what processing knows besides the message: a Delivery's
// facts and what was decided from them, or a CheckRequest's modes.
type envelope struct {
	MailFrom   string
	Rcpts      []string
	Transport  string
	QueueID    string
	Received   time.Time
	Outgoing   bool   // the envelope sender is a local user sending (ownMail, or an administrator)
	DryRun     bool   // decide, change nothing (imipctl check)
	ForcedUser string // apply for this user whatever the recipients (PushUser, CheckRequest.User)
	// RcptsFromHeaders takes the recipients from To and Cc (imipctl check
	// on a file, where there is no envelope).
	RcptsFromHeaders bool
}

// Result is the outcome for one recipient and one iTIP object.
type Result struct {
	Recipient string       `json:"-"`
	User      string       `json:"user"`
	Outcome   itip.Outcome `json:"outcome"`
	Method    string       `json:"method,omitempty"`
	UID       string       `json:"uid,omitempty"`
	Reason    itip.Reason  `json:"reason,omitempty"`
	// Repeat: the message was processed for this user before (a retried
	// delivery, a second scan); Outcome and Reason are the earlier ones
	// and nothing was done again. Metrics count it as outcome "repeat".
	Repeat  bool   `json:"repeat"`
	Summary string `json:"-"`
	Sends   int    `json:"-"`
	Pending int    `json:"-"`
	// Own: the sender's own copy of their outgoing mail (their calendar,
	// not a recipient's): left out of Report.Header.
	Own bool `json:"-"`
}

// Report is the answer of Process and Check for one message.
type Report struct {
	MessageID, From, Sender string
	Calendar                bool     // the message carries calendar data
	Results                 []Result // one per (recipient user, iTIP object)
	// Outgoing: Process found the message a local user's own outgoing
	// mail (docs/rules.md "Outgoing mail teaches the calendar").
	Outgoing bool
	// OverMax is the reason word of a cap lowered to
	// Delivery.MaxMessage that the message passed: it was not processed,
	// and Header and HeaderFor give "".
	OverMax itip.Reason
	// For a dry run only (imipctl check): a person's description of each
	// iTIP object, and one technical line per calendar part.
	Description, Objects []string

	users map[string]string // envelope recipient -> the user it resolved to (recipients)
}

// Header is the header value of the message's one copy for all its
// recipients (the milter's: Bcc-safe, HeaderValue of the results): "" for
// mail without calendar data or over a cap lowered by MaxMessage. The
// sender's own result of outgoing mail is left out (Result.Own).
func (r *Report) Header() string {
	if r == nil || !r.Calendar || r.OverMax != "" {
		return ""
	}
	var shown []Result
	for _, res := range r.Results {
		if !res.Own {
			shown = append(shown, res)
		}
	}
	return HeaderValue(shown)
}

// HeaderFor is the header value of envelope recipient rcpt's own copy (the
// LMTP proxy's): HeaderValue of the results of the user rcpt resolved to,
// whichever of that user's addresses or subaddresses it is; "" for a
// recipient that is no user, for mail without calendar data or over a cap
// lowered by MaxMessage.
func (r *Report) HeaderFor(rcpt string) string {
	if r == nil || !r.Calendar || r.OverMax != "" {
		return ""
	}
	user, ok := r.users[rcpt]
	if !ok {
		return ""
	}
	var res []Result
	for _, x := range r.Results {
		if x.User == user {
			res = append(res, x)
		}
	}
	return HeaderValue(res)
}

// Process is the one processing call every transport makes: it extracts
// iMIP from the delivered message, decides whether it is the sender's own
// outgoing mail (ownMail), applies it for every local recipient, and counts
// it in the metrics. It never returns an error for bad mail (that is an
// outcome); an error means the store failed, and the transport applies its
// error policy.
func (p *Processor) Process(ctx context.Context, d Delivery) (rep *Report, err error) {
	lim, capped := p.mimeLimits(d.MaxMessage)
	pm := d.Parsed
	if pm == nil {
		pm = &Parsed{start: time.Now()}
		pm.msg, pm.Err = imip.Parse(d.Message, lim)
	}
	start := pm.start
	if start.IsZero() {
		start = time.Now()
	}
	defer func() { p.Metrics.observe(d.Transport, rep, time.Since(start), err) }()
	env := envelope{MailFrom: d.MailFrom, Rcpts: d.Rcpts, Transport: d.Transport, QueueID: d.QueueID,
		Received: d.Received, ForcedUser: d.PushUser}
	if env.Outgoing, err = p.ownMail(ctx, d.MailFrom, d.Login, d.Daemon); err != nil {
		return nil, err
	}
	if errors.Is(pm.Err, imip.ErrNoCalendar) && !env.Outgoing {
		// Most mail: nothing to decide and nothing to learn.
		return newReport(pm.msg), nil
	}
	rep, err = p.process(ctx, pm.msg, pm.Err, env)
	if rep != nil {
		rep.Outgoing = env.Outgoing
		for i := range rep.Results {
			r := &rep.Results[i]
			r.Own = env.Outgoing && address.Normalize(r.Recipient) == address.Normalize(env.MailFrom)
			if r.Outcome == itip.Rejected && capped[r.Reason] && rep.OverMax == "" {
				rep.OverMax = r.Reason
			}
		}
	}
	return rep, err
}

// Check is the administrator's processing call (imipctl check, process,
// scan, catchup): the message applied for the user the administrator
// names, or with DryRun only decided. A message applied for real is
// counted in the metrics, a dry run is not (it is no message seen).
func (p *Processor) Check(ctx context.Context, c CheckRequest) (rep *Report, err error) {
	start := time.Now()
	msg, perr := imip.Parse(c.Message, p.Cfg.MIME)
	env := envelope{Transport: c.Transport, Received: c.Received, ForcedUser: c.User, DryRun: c.DryRun,
		RcptsFromHeaders: c.User == "", Outgoing: c.Outgoing}
	if c.Outgoing {
		env.MailFrom = c.User
	}
	if !c.DryRun {
		defer func() { p.Metrics.observe(c.Transport, rep, time.Since(start), err) }()
	}
	return p.process(ctx, msg, perr, env)
}

// Parse parses a message a transport holds whole, with the MIME caps
// Process applies for the same maxMessage (Delivery.MaxMessage), for
// Delivery.Parsed: the message is parsed once.
func (p *Processor) Parse(r io.Reader, maxMessage int64) *Parsed {
	start := time.Now()
	lim, _ := p.mimeLimits(maxMessage)
	msg, err := imip.Parse(r, lim)
	return &Parsed{msg: msg, Err: err, start: start}
}

// mimeLimits returns Config.MIME's caps lowered to maxMessage (Delivery),
// and the reasons of the caps lowered (nil: none).
func (p *Processor) mimeLimits(maxMessage int64) (imip.Limits, map[itip.Reason]bool) {
	lim := p.Cfg.MIME
	if maxMessage <= 0 {
		return lim, nil
	}
	d := imip.DefaultLimits()
	var capped map[itip.Reason]bool
	lower := func(v *int64, def int64, reason itip.Reason) {
		if *v <= 0 {
			*v = def
		}
		if *v > maxMessage {
			*v = maxMessage
			if capped == nil {
				capped = map[itip.Reason]bool{}
			}
			capped[reason] = true
		}
	}
	hb := int64(lim.MaxHeaderBytes)
	lower(&hb, int64(d.MaxHeaderBytes), imip.ReasonHeaderSize)
	lower(&lim.MaxCalendarBytes, d.MaxCalendarBytes, imip.ReasonCalendarSize)
	lower(&lim.MaxDecodedBytes, d.MaxDecodedBytes, imip.ReasonDecodedSize)
	if capped == nil {
		return p.Cfg.MIME, nil
	}
	lim.MaxHeaderBytes = int(hb)
	return lim, capped
}

// process is Process after the parse: msg and err are imip.Parse's.
func (p *Processor) process(ctx context.Context, msg *imip.Message, err error, env envelope) (*Report, error) {
	now := p.now()
	log := p.logger().With("transport", env.Transport)
	if env.DryRun {
		log = log.With("dry_run", true) // imipctl check: what is logged did not happen
	}
	if env.QueueID != "" {
		log = log.With("queue_id", env.QueueID)
	}
	rep := newReport(msg)
	if msg != nil {
		log = log.With("message_id", msg.MessageID)
		if env.RcptsFromHeaders {
			env.Rcpts = append(append([]string{}, msg.To...), msg.Cc...)
		}
	}
	if env.Outgoing && p.Cfg.LearnSentContacts && !env.DryRun {
		// docs/rules.md "Policy": someone the user has written to counts as known.
		if lerr := p.learnSent(ctx, env.MailFrom, env.Rcpts, now); lerr != nil {
			log.Warn("learning contacts from outgoing mail", "sender", env.MailFrom, "err", lerr)
		}
	}
	if errors.Is(err, imip.ErrNoCalendar) {
		return rep, nil
	}
	users, byRcpt, err2 := p.recipients(ctx, env)
	if err2 != nil {
		return rep, err2
	}
	rep.users = byRcpt
	var lim *imip.LimitError
	if errors.As(err, &lim) {
		rep.Calendar = true
		for _, u := range users {
			rep.Results = append(rep.Results, Result{Recipient: u.rcpt, User: u.addr, Outcome: itip.Rejected, Reason: itip.Reason(lim.Reason)})
		}
		log.Warn("message over limit", "reason", lim.Reason, "err", err)
		return rep, nil
	}
	if err != nil {
		rep.Calendar = true
		for _, u := range users {
			rep.Results = append(rep.Results, Result{Recipient: u.rcpt, User: u.addr, Outcome: itip.Rejected, Reason: reasonMalformedMIME})
		}
		log.Warn("unreadable message", "err", err)
		return rep, nil
	}
	rep.Calendar = true
	if n := len(msg.Parts); p.Cfg.CalendarParts > 0 && n > p.Cfg.CalendarParts {
		for _, u := range users {
			rep.Results = append(rep.Results, Result{Recipient: u.rcpt, User: u.addr, Outcome: itip.Rejected, Reason: reasonCalendarParts})
		}
		log.Warn("message over limit", "reason", reasonCalendarParts, "parts", n, "max", p.Cfg.CalendarParts)
		return rep, nil
	}
	objs := p.decodeParts(msg, log)
	if env.DryRun {
		rep.Description, rep.Objects = describe(objs, p.Cfg.DefaultZone)
	}
	if env.Outgoing {
		more, err := p.delegators(ctx, env.MailFrom, objs, users)
		if err != nil {
			return rep, err
		}
		users = append(users, more...)
	}
	sent := msg.Date
	if sent.IsZero() {
		sent = env.Received
	}
	auth := parseAuthResults(msg.AuthResults, p.Cfg.TrustedAuthServIDs)
	authFail := auth.fail(address.Domain(msg.From), p.Cfg.RequireAuthenticatedSender)
	p.admitUsers(users, env)
	for _, u := range users {
		if u.refuse != "" {
			log.Info("recipient is not a user", "user", u.addr, "reason", u.refuse)
		}
		for _, o := range objs {
			r := Result{Recipient: u.rcpt, User: u.addr}
			if u.refuse != "" {
				// docs/rules.md "Users and addresses": nobody is made a user here,
				// nothing is stored.
				r.Outcome, r.Reason = itip.Ignored, u.refuse
				if o.msg != nil {
					r.Method, r.UID = string(o.msg.Method), o.msg.UID
				}
				rep.Results = append(rep.Results, r)
				continue
			}
			if o.msg == nil {
				r.Outcome, r.Reason = itip.Rejected, o.reason
				rep.Results = append(rep.Results, r)
				log.Info("calendar part rejected", "user", u.addr, "reason", o.reason, "err", o.err)
				continue
			}
			r.Method, r.UID = string(o.msg.Method), o.msg.UID
			in := itip.Input{
				Msg:            o.msg,
				From:           msg.From,
				Sender:         msg.Sender,
				AuthFail:       authFail,
				MethodMismatch: o.methodParam != "" && o.methodParam != string(o.msg.Method),
				AutoSubmitted:  msg.AutoSubmitted != "" && msg.AutoSubmitted != "no",
				LocalAddress:   p.IsLocal,
				Now:            now,
				Sent:           sent,
				Timeframe:      p.Cfg.Timeframe,
				Outgoing:       u.outgoing,
			}
			key := onceKey(msg.MessageID, o.data)
			res, drops, seen, err := p.applyOne(ctx, u, in, key, o.data, msg, env, now)
			if errors.Is(err, errStoredUnreadable) {
				// One user's damaged copy: nothing changes for that user,
				// the other recipients are processed, and the message is
				// not refused for ever (on_error = tempfail would).
				r.Outcome, r.Reason = itip.Error, reasonStoredUnreadable
				rep.Results = append(rep.Results, r)
				log.Error("stored event unreadable; message not applied for this user", "user", u.addr, "uid", r.UID, "err", err)
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("message %s for %s: %w", msg.MessageID, u.addr, err)
			}
			for _, d := range drops {
				log.Warn("automatic mail not sent", "user", u.addr, "uid", r.UID, "method", d.method, "target", d.target, "reason", d.reason)
			}
			r.Outcome, r.Reason, r.Summary = res.Outcome, res.Reason, res.Note
			r.Sends, r.Pending, r.Repeat = len(res.Send), len(res.Pending), seen
			rep.Results = append(rep.Results, r)
			switch {
			case env.DryRun:
				// imipctl check: nothing happened, so not "processed".
				log.Info("dry run", "user", u.addr, "uid", r.UID, "method", r.Method, "would_be", r.Outcome, "reason", r.Reason)
			case seen:
				// A retried delivery, a second scan: nothing done again.
				log.Info("already processed", "user", u.addr, "uid", r.UID, "method", r.Method, "earlier", r.Outcome, "reason", r.Reason)
			default:
				log.Info("processed", "user", u.addr, "uid", r.UID, "method", r.Method, "outcome", r.Outcome, "reason", r.Reason)
			}
		}
	}
	return rep, nil
}

// newReport is the report of a message: its identity, when msg is not nil.
func newReport(msg *imip.Message) *Report {
	rep := &Report{}
	if msg != nil {
		rep.MessageID, rep.From, rep.Sender = msg.MessageID, msg.From, msg.Sender
	}
	return rep
}

// Time is the Processor's clock: Now(), or time.Now when Now is nil. Every
// decision that depends on the time reads it (or a clock passed down from
// it), so that a test sets Now and controls them; I/O deadlines
// (SetReadDeadline, dial and command timeouts) stay on the wall clock.
func (p *Processor) Time() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Processor) now() time.Time { return p.Time() }

func (p *Processor) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Reason words filter gives a message itself, beside the rules' words
// (itip) and the parsers' limits (imip, ics); README "The header" lists them.
const (
	reasonMalformedMIME     itip.Reason = "malformed-mime"     // the MIME structure cannot be read
	reasonMalformedCalendar itip.Reason = "malformed-calendar" // a calendar part is not iCalendar
	reasonInvalidITIP       itip.Reason = "invalid-itip"       // a calendar part is not valid iTIP (no more precise word)
	reasonConflictingParts  itip.Reason = "conflicting-parts"  // two calendar parts disagree about one UID
	reasonStoredUnreadable  itip.Reason = "stored-unreadable"  // the user's stored copy cannot be read
)

// object is one distinct iTIP object of a message, or why a part was refused.
type object struct {
	msg         *itip.Message
	data        []byte
	methodParam string
	reason      itip.Reason
	err         error
}

// decodeParts decodes every calendar part and drops those that carry the
// same object as an earlier one (Outlook and Google send the invitation as
// text/calendar and again as an .ics attachment: docs/rules.md "iMIP detection").
func (p *Processor) decodeParts(msg *imip.Message, log *slog.Logger) []object {
	var out []object
	seen := map[string]bool{}
	zb := ics.NewBudget() // one time-zone budget for all parts
	for _, part := range msg.Parts {
		o := object{data: part.Data, methodParam: part.Method}
		cal, err := ics.Decode(part.Data, p.Cfg.ICS)
		if err != nil {
			o.err, o.reason = err, reasonMalformedCalendar
			var le *ics.LimitError
			if errors.As(err, &le) {
				o.reason = itip.Reason(le.Reason)
			}
		} else if m, err := itip.ParseMessageShared(cal, zb); err != nil {
			o.err, o.reason = err, reasonInvalidITIP
			var pe *itip.ParseError
			if errors.As(err, &pe) {
				o.reason = pe.Reason
			}
		} else {
			o.msg = m
		}
		id := identity(o)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, o)
	}
	// A refused twin of an accepted object adds nothing.
	if len(out) > 1 {
		kept := out[:0]
		anyOK := false
		for _, o := range out {
			anyOK = anyOK || o.msg != nil
		}
		for _, o := range out {
			if o.msg != nil || !anyOK {
				kept = append(kept, o)
			}
		}
		out = kept
	}
	return conflicts(out)
}

// conflicts applies the rule for calendar parts that disagree (docs/rules.md "iMIP
// detection"; README "The header"): one message says one thing about an
// event. Parts that carry the same object are one object (decodeParts);
// parts that carry different objects for one UID (a text/calendar REQUEST
// and an attached .ics CANCEL with the same SEQUENCE, two SEQUENCEs, two
// answers) make that UID's objects one `rejected; reason=conflicting-parts`:
// nothing of them is applied, since a mail program shows one part and imipd
// would apply another, and a sender has no reason to send both in one
// message. Objects for other UIDs are not affected.
func conflicts(objs []object) []object {
	if len(objs) < 2 {
		return objs
	}
	n := map[string]int{}
	for _, o := range objs {
		if o.msg != nil {
			n[o.msg.UID]++
		}
	}
	out := make([]object, 0, len(objs))
	done := map[string]bool{}
	for _, o := range objs {
		if o.msg == nil || n[o.msg.UID] < 2 {
			out = append(out, o)
			continue
		}
		uid := o.msg.UID
		if done[uid] {
			continue
		}
		done[uid] = true
		var methods []string
		for _, c := range objs {
			if c.msg != nil && c.msg.UID == uid {
				methods = append(methods, fmt.Sprintf("%s/%d", c.msg.Method, c.msg.Sequence()))
			}
		}
		out = append(out, object{data: o.data, methodParam: o.methodParam, reason: reasonConflictingParts,
			err: fmt.Errorf("%d calendar parts disagree about UID %q (%s)", n[uid], uid, strings.Join(methods, ", "))})
	}
	return out
}

// identity names an object by what the ordering rules look at.
func identity(o object) string {
	if o.msg == nil {
		return "bad:" + string(o.reason)
	}
	var b strings.Builder
	b.WriteString(string(o.msg.Method) + "\x00" + o.msg.UID)
	for _, in := range o.msg.Instances {
		fmt.Fprintf(&b, "\x00%s/%d/%d", in.RecurrenceID, in.Sequence, in.DTStamp.Unix())
		for _, a := range in.Attendees {
			b.WriteString("/" + a.Address + "=" + a.PartStat)
		}
	}
	return b.String()
}

// onceKey is the once-only key of a message for a user: its Message-ID and
// the calendar data, so a resent copy of the same message matches and a new
// message reusing a Message-ID does not.
func onceKey(messageID string, data []byte) string {
	h := sha256.New()
	io.WriteString(h, strings.TrimSpace(messageID))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

type rcptUser struct {
	rcpt     string
	addr     string
	outgoing bool
	exists   bool        // a stored user (else one to create, admitUsers)
	refuse   itip.Reason // why this recipient is not made a user (admitUsers); "" = go on
}

// recipients resolves the envelope to local users (resolveUser): each user
// once, in envelope order, however many of its addresses and subaddresses
// the envelope names. Recipients at local domains without a user record
// are users to be created (admitUsers decides). byRcpt maps each address
// that resolved to its user (Report.HeaderFor).
func (p *Processor) recipients(ctx context.Context, env envelope) (users []rcptUser, byRcpt map[string]string, err error) {
	var out []rcptUser
	seen := map[string]bool{}
	byRcpt = map[string]string{}
	err = p.Store.Read(ctx, func(tx calstore.Tx) error {
		add := func(rcpt string, outgoing bool) error {
			primary, exists, ok, err := p.resolveUser(tx, rcpt)
			if err != nil {
				return err
			}
			if !ok && env.ForcedUser != "" {
				primary, ok = address.Normalize(rcpt), true
			}
			if ok {
				byRcpt[rcpt] = primary
			}
			if !ok || seen[primary] {
				return nil
			}
			seen[primary] = true
			out = append(out, rcptUser{rcpt: rcpt, addr: primary, outgoing: outgoing, exists: exists})
			return nil
		}
		if env.ForcedUser != "" {
			return add(env.ForcedUser, env.Outgoing)
		}
		if env.Outgoing {
			// docs/rules.md "Outgoing mail teaches the calendar": the sender's own copy
			// learns what the sender sent. Local recipients of the same
			// message get it as incoming mail for their own calendars below:
			// on a milter, this pass is the only one the message makes.
			if err := add(env.MailFrom, true); err != nil {
				return err
			}
		}
		for _, r := range env.Rcpts {
			if err := add(r, false); err != nil {
				return err
			}
		}
		return nil
	})
	return out, byRcpt, err
}

// userBatcher is a store with Batch per user (calstore/pgstore).
type userBatcher interface {
	BatchUser(ctx context.Context, user string, fn func(calstore.Tx) error) error
}

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// applyOne runs the rules for one user inside one write transaction
// (applyInTx): the once-only check, the evaluation and every write are
// atomic. A message already processed for the user is answered from a read
// transaction (seenBefore; not on PostgreSQL), or from the write
// transaction's own check:
// seen is true and res the earlier outcome. drops are the automatic mail
// the budgets stopped (budgetSends), for the log.
func (p *Processor) applyOne(ctx context.Context, u rcptUser, in itip.Input, key string, data []byte, msg *imip.Message, env envelope, now time.Time) (res itip.Result, drops []unsent, seen bool, err error) {
	// A store that batches per user (PostgreSQL) skips the read: there
	// every transaction costs round trips and work on the server, and the
	// write transaction's own check answers a repeat (rare) as well, at the
	// price of the user's lock.
	ub, perUser := p.Store.(userBatcher)
	if !env.DryRun && !perUser {
		res, seen, err = p.seenBefore(ctx, u.addr, key)
	}
	if !seen && err == nil {
		// Deliveries share transactions (group commit, calstore.Store.Batch);
		// the once-only check is inside, so a re-run sees its own group's
		// writes. A dry run must roll back, so it takes a transaction alone.
		write := p.Store.Batch
		if perUser {
			// A store that batches per user (PostgreSQL): the user's
			// deliveries share a transaction and its lock.
			write = func(ctx context.Context, fn func(calstore.Tx) error) error { return ub.BatchUser(ctx, u.addr, fn) }
		}
		if env.DryRun {
			write = p.Store.Write
		}
		err = write(ctx, func(tx calstore.Tx) error {
			var err error
			drops = nil
			if res, seen, err = logged(tx, u.addr, key); seen || err != nil {
				return err
			}
			res, drops, err = p.applyInTx(tx, u, in, key, data, msg, env, now)
			return err
		})
		if errors.Is(err, errDryRun) {
			return res, drops, seen, nil
		}
	}
	if err == nil && len(res.Send) > 0 && p.OnEnqueue != nil {
		p.OnEnqueue()
	}
	return res, drops, seen, err
}

// applyInTx is the whole decision for one user inside tx, after the
// once-only check (applyOne): the user, the stored event, the rules, the
// budgets of automatic mail, the writes and the log.
func (p *Processor) applyInTx(tx calstore.Tx, u rcptUser, in itip.Input, key string, data []byte, msg *imip.Message, env envelope, now time.Time) (itip.Result, []unsent, error) {
	if ok, err := p.admitNewUser(tx, u, env, now); err != nil || !ok {
		// Over new_users_per_hour: nothing is stored.
		return itip.Result{Outcome: itip.Ignored, Reason: reasonUserLimit}, nil, err
	}
	user, err := p.ensureUser(tx, u.addr, now)
	if err != nil {
		return itip.Result{}, nil, err
	}
	in.User = user
	ev, cal, err := loadEvent(tx, u.addr, in.Msg.UID, p.cals())
	if err != nil {
		return itip.Result{}, nil, err
	}
	in.Stored, in.ReplyStamps = cal, ev.ReplyStamps
	if in.From != "" {
		if in.Known, err = tx.IsContact(u.addr, in.From); err != nil {
			return itip.Result{}, nil, err
		}
	}
	if in.DelegateFor, err = delegateFor(tx, in.Msg, in.From); err != nil {
		return itip.Result{}, nil, err
	}
	res := itip.Apply(in)
	if reason, err := p.overCap(tx, u.addr, cal != nil, res); err != nil {
		return itip.Result{}, nil, err
	} else if reason != "" {
		// Over a per-user cap: nothing is stored, sent, counted or logged.
		res = itip.Result{Outcome: itip.Ignored, Reason: itip.Reason(reason)}
		if env.DryRun {
			return res, nil, errDryRun
		}
		return res, nil, nil
	}
	drops, err := p.budgetSends(tx, u.addr, in.Msg.UID, &res, now)
	if err != nil {
		return itip.Result{}, nil, err
	}
	if env.DryRun {
		return res, drops, errDryRun
	}
	if err := p.record(tx, u, in, key, data, msg, env, now, ev, cal, res); err != nil {
		return itip.Result{}, nil, err
	}
	return res, drops, nil
}

// record writes a decision for one user: commit and the once-only log
// entry. The calendar it writes goes into the decoded-calendar cache.
func (p *Processor) record(tx calstore.Tx, u rcptUser, in itip.Input, key string, data []byte, msg *imip.Message, env envelope, now time.Time,
	ev calstore.Event, cal *ical.Calendar, res itip.Result) error {
	method := string(in.Msg.Method)
	h := calstore.HistoryEntry{MessageID: msg.MessageID, Method: method, Outcome: string(res.Outcome), Reason: string(res.Reason), From: msg.From, Summary: res.Note}
	o := origin{From: msg.From, Method: method, MessageID: msg.MessageID, Data: data, Outgoing: in.Outgoing}
	var encoded []byte
	if res.Cal != nil {
		encoded = ics.Marshal(res.Cal)
	}
	if err := commit(tx, u.addr, ev, cal, res, h, o, 0, now, encoded); err != nil {
		return err
	}
	if res.Cal != nil {
		// Keyed by the bytes written: if this transaction rolls back, the
		// stored bytes differ and the entry is never used.
		p.cals().put(u.addr, in.Msg.UID, encoded, res.Cal)
	}
	return tx.AddLog(calstore.LogEntry{User: u.addr, Key: key, Time: now, MessageID: msg.MessageID, From: msg.From,
		Method: method, UID: in.Msg.UID, Outcome: string(res.Outcome), Reason: string(res.Reason), Transport: env.Transport})
}

// learnSent records the recipients of a user's outgoing message as people
// the user has written to (contact source "sent"). A read transaction
// checks first, so mail to known people costs no write.
func (p *Processor) learnSent(ctx context.Context, sender string, rcpts []string, now time.Time) error {
	var fresh []string
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		primary, exists, ok, err := p.resolveUser(tx, sender)
		switch {
		case err != nil || !ok:
			return err
		case !exists && p.Cfg.CreateUsers == CreateListed:
			return nil
		case !exists:
			// A local sender the MTA authenticated (ownMail): the
			// user's record is created below.
			sender, fresh = primary, append(fresh, rcpts...)
			return nil
		}
		sender = primary
		for _, r := range rcpts {
			known, err := tx.IsContact(sender, r)
			if err != nil {
				return err
			}
			if !known {
				fresh = append(fresh, r)
			}
		}
		return nil
	})
	if err != nil || len(fresh) == 0 {
		return err
	}
	return p.Store.Write(ctx, func(tx calstore.Tx) error {
		if _, err := p.ensureUser(tx, sender, now); err != nil {
			return err
		}
		for _, r := range fresh {
			a := address.Normalize(r)
			if a == sender || !strings.Contains(a, "@") {
				continue
			}
			if err := tx.AddContact(calstore.Contact{User: sender, Address: a, Source: calstore.SourceSent}); err != nil {
				return err
			}
		}
		return nil
	})
}

// delegators finds the local users a delegate acts for in an outgoing
// message (docs/rules.md "Working on behalf of"): the organizer of a REQUEST, ADD,
// CANCEL or PUBLISH, or the answering attendee of a REPLY or COUNTER, when
// that user names the envelope sender as a delegate. Their own copy learns
// from the message as if they had sent it. Only the envelope sender counts:
// ownMail tied it to the SASL login, while anyone writes any From.
func (p *Processor) delegators(ctx context.Context, sender string, objs []object, have []rcptUser) ([]rcptUser, error) {
	sender = address.Normalize(sender)
	seen := map[string]bool{}
	for _, u := range have {
		seen[u.addr] = true
	}
	var out []rcptUser
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		for _, o := range objs {
			if o.msg == nil {
				continue
			}
			var principals []string
			switch o.msg.Method {
			case itip.Reply, itip.Counter:
				for _, a := range o.msg.First().Attendees {
					principals = append(principals, a.Address)
				}
			default:
				principals = append(principals, o.msg.Organizer().Address)
			}
			for _, a := range principals {
				primary, exists, _, err := p.resolveUser(tx, a)
				if err != nil {
					return err
				}
				if !exists {
					continue
				}
				u, err := tx.User(primary)
				if err != nil {
					return err
				}
				if seen[u.Address] {
					continue
				}
				for _, d := range u.Delegates {
					if d == sender {
						seen[u.Address] = true
						out = append(out, rcptUser{rcpt: a, addr: u.Address, outgoing: true})
						break
					}
				}
			}
		}
		return nil
	})
	return out, err
}

// learnParties records the organizer and attendees of a stored event as
// known to the user (docs/rules.md "Policy": organizer or attendee of an existing
// event), so the known-sender test is one lookup. Parties already in old
// (the copy being replaced, nil if none) were learned when it was stored:
// a REPLY to a meeting of 500 does not touch 500 contacts.
func learnParties(tx calstore.ContactTx, user string, cal, old *ical.Calendar) error {
	if old != nil && sameParties(cal, old) {
		return nil // a REPLY or a PARTSTAT change: nobody new (and no map of a big meeting)
	}
	known := map[string]bool{}
	if old != nil {
		eachParty(old, func(a, _ string) { known[a] = true })
	}
	var err error
	eachParty(cal, func(a, cn string) {
		if err != nil || known[a] || a == user || !strings.Contains(a, "@") {
			return
		}
		known[a] = true
		err = tx.AddContact(calstore.Contact{User: user, Address: a, Name: cn, Source: calstore.SourceEvent})
	})
	return err
}

// sameParties reports whether cal's events name exactly old's ORGANIZER and
// ATTENDEE values, in the same order: then learnParties has nobody to add.
func sameParties(cal, old *ical.Calendar) bool {
	if len(cal.Children) != len(old.Children) {
		return false
	}
	for i, c := range cal.Children {
		o := old.Children[i]
		if c.Name != o.Name {
			return false
		}
		if c.Name != ical.CompEvent {
			continue
		}
		for _, name := range []string{ical.PropOrganizer, ical.PropAttendee} {
			a, b := c.Props[name], o.Props[name]
			if len(a) != len(b) {
				return false
			}
			for j := range a {
				if a[j].Value != b[j].Value {
					return false
				}
			}
		}
	}
	return true
}

// eachParty calls fn with the address and CN of every ORGANIZER and ATTENDEE.
func eachParty(cal *ical.Calendar, fn func(addr, cn string)) {
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		for _, name := range []string{ical.PropOrganizer, ical.PropAttendee} {
			for _, pr := range c.Props[name] {
				if a := address.Normalize(pr.Value); a != "" {
					fn(a, pr.Params.Get(ical.ParamCommonName))
				}
			}
		}
	}
}

// enqueue puts the messages a decision sends into the outbox (drained by
// the daemon's sender, package outbox).
func enqueue(tx calstore.OutboxTx, user, uid string, send []itip.Outgoing, now time.Time) error {
	for _, s := range send {
		if _, err := tx.Enqueue(calstore.OutboxItem{
			User: user, From: s.From, SentBy: s.SentBy, To: s.To, Method: string(s.Method), UID: uid,
			Subject: outSubject(s), Body: ics.Marshal(s.Cal), Auto: s.Auto, Created: now, Updated: now, NextAttempt: now,
		}); err != nil {
			return err
		}
	}
	return nil
}

func outSubject(s itip.Outgoing) string {
	title := ""
	for _, c := range s.Cal.Children {
		if c.Name == ical.CompEvent {
			if p := c.Props.Get(ical.PropSummary); p != nil {
				title = ics.Line(p)
				break
			}
		}
	}
	verb := map[itip.Method]string{itip.Reply: "Reply", itip.Request: "Invitation", itip.Refresh: "Refresh", itip.DeclineCounter: "Proposal declined", itip.Cancel: "Cancelled"}[s.Method]
	if verb == "" {
		verb = string(s.Method)
	}
	if title == "" {
		return verb
	}
	return verb + ": " + title
}
