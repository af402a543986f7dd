package itip

import (
	"time"

	"github.com/emersion/go-ical"
)

// Input is everything Apply needs to decide. The caller fills it from the
// message, the store and the configuration; Apply reads nothing else.
type Input struct {
	Msg         *Message
	Stored      *ical.Calendar       // the user's copy of this UID, nil if none
	ReplyStamps map[string]time.Time // per-attendee DTSTAMP of the last applied REPLY (see replyStampKey)
	User        User

	From string // author (From header address), normalised
	// Sender is the Sender header address, normalised, "" if none. The
	// sender rule (sender.go) does not use it: a Sender header neither
	// vouches for anyone nor makes a mismatch.
	Sender string

	// AuthFail is "" when nothing speaks against the author, else the reason
	// word from the trusted Authentication-Results ("dmarc-fail",
	// "unauthenticated"): then nothing is auto-applied (docs/rules.md "Sender checks").
	AuthFail string
	// MethodMismatch is set when the MIME method= parameter disagreed with the
	// object's METHOD (docs/rules.md "iMIP detection"): the message is suspicious.
	MethodMismatch bool
	// Known is set when the caller found the author in the user's contacts,
	// among people the user wrote to, or in another event of the user. Apply
	// also counts the parties of the stored copy of this UID as known.
	Known bool
	// DelegateFor lists the parties of Msg (addresses as the message writes
	// them) that are local users who configured From as their delegate; the
	// sender rule counts the author as them (sender.go). The caller looks
	// them up; User's own delegates are in User.
	DelegateFor []string
	// LocalAddress reports whether an address belongs to a local user (the
	// caller's local domains); nil: only User's own addresses are local.
	// imipd never sends automatic mail to a local address (add.go).
	LocalAddress func(addr string) bool
	// AutoSubmitted marks a message that is itself automatic
	// (Auto-Submitted other than "no"): imipd never answers it automatically.
	AutoSubmitted bool

	Now       time.Time     // current time
	Sent      time.Time     // Date header or receive time; zero if unknown
	Timeframe time.Duration // older messages are not auto-processed; 0 = no limit

	// Outgoing: the user sent this message (submission milter, process
	// -outgoing). It updates only the user's own copy.
	Outgoing bool
	// Force applies a message the user chose to apply from a pending item:
	// sender, authentication, policy and timeframe gates are skipped; the
	// ordering rules still hold.
	Force bool
}

// Result is the decision for one message and one user.
type Result struct {
	Outcome Outcome
	Reason  Reason
	// Cal is the new stored object, nil when the stored copy is unchanged.
	Cal *ical.Calendar
	// ReplyStamps, when not nil, replaces the stored per-attendee stamps.
	ReplyStamps map[string]time.Time
	// Pending are decisions to record for the user.
	Pending []PendingItem
	// Obsolete, when not empty, closes the user's open pending items for this
	// UID with this reason (a later message decided them).
	Obsolete Reason
	// Supersede keeps open questions current (README "Pending items stay
	// current"): the user's open invitation or rescheduled item for this
	// UID whose RecurrenceID is the RecurrenceID of one of these is closed
	// as "superseded" and opened again as a new item of the same kind,
	// with this Summary and the message that changed the event. Nothing
	// is opened for a question the user already decided or ignored.
	Supersede []PendingItem
	// ObsoleteInstance, with Obsolete, limits it to the items of this
	// RECURRENCE-ID (an answer for one occurrence leaves the series'
	// invitation open).
	ObsoleteInstance string
	// Send are iTIP messages to queue (sending is the outbox's job).
	Send []Outgoing
	// Note is a short human description of what happened, for the history.
	Note string
}

// PendingItem is a decision only the user can take (docs/rules.md "Methods",
// "User interaction").
type PendingItem struct {
	Kind         Kind
	RecurrenceID string
	Reason       Reason
	Summary      string
	Actions      []string
	Attendee     string // the attendee concerned (party crasher, counter, refresh)
}

// ActionsFor lists the allowed actions of a pending kind.
func ActionsFor(kind Kind) []string {
	switch kind {
	case KindInvitation, KindRescheduled:
		return []string{"accept", "tentative", "decline"}
	case KindPartyCrasher:
		return []string{"add", "ignore"}
	case KindCounter:
		return []string{"accept", "decline"}
	case KindRefresh:
		return []string{"send", "ignore"}
	}
	return []string{"apply", "ignore"}
}

// Outgoing is an iTIP message to send (RFC 6047 form is made by the outbox).
type Outgoing struct {
	Method Method
	From   string   // the user's address
	SentBy string   // the delegate acting for the user, if any
	To     []string // recipients, normalised
	Cal    *ical.Calendar
	// Auto marks mail imipd sends on its own (Auto-Submitted: auto-replied).
	// The caller counts it against its budgets per target address before
	// sending (RFC 5546 §6.1.5: a flood must not turn imipd into a mail
	// cannon; filter's budgetSends) and may drop it.
	Auto bool
}

func result(o Outcome, reason Reason) Result { return Result{Outcome: o, Reason: reason} }

// held is the outcome of a message that must not be auto-applied: the user
// may apply or ignore it later (docs/rules.md "Policy", "Sender checks").
func held(in *Input, reason Reason) Result {
	r := result(NeedsAction, reason)
	r.Pending = []PendingItem{{Kind: KindHeld, Reason: reason, Summary: Describe(in.Msg, &in.User), Actions: ActionsFor(KindHeld)}}
	r.Note = "held: " + string(reason)
	return r
}

// Apply decides what one iTIP message does to one user's calendar.
func Apply(in Input) Result {
	m := in.Msg
	if m == nil || len(m.Instances) == 0 {
		return result(Rejected, ReasonNoComponent)
	}
	if m.Kind != ical.CompEvent {
		// docs/rules.md "iMIP detection": only VEVENT is processed.
		return result(Ignored, ReasonUnsupportedComponent)
	}
	if in.Outgoing {
		return applyOutgoing(&in)
	}
	switch m.Method {
	case Publish, Request:
		return applyRequest(&in)
	case Reply:
		return applyReply(&in)
	case Add:
		return applyAdd(&in)
	case Cancel:
		return applyCancel(&in)
	case Refresh:
		return applyRefresh(&in)
	case Counter:
		return applyCounter(&in)
	case DeclineCounter:
		return applyDeclineCounter(&in)
	}
	return result(Rejected, ReasonBadMethod)
}

// gate runs the checks that decide whether a message that passed the sender
// and ordering rules may be applied without the user: authentication, the
// MIME method parameter, timeframe and policy. ok is false when r is the
// result.
func gate(in *Input, known bool) (r Result, ok bool) {
	if in.Force {
		return Result{}, true
	}
	if in.AuthFail != "" {
		return held(in, Reason(in.AuthFail)), false
	}
	if in.MethodMismatch {
		return held(in, ReasonMethodMismatch), false
	}
	if in.Timeframe > 0 && !in.Sent.IsZero() && in.Now.Sub(in.Sent) > in.Timeframe {
		// docs/rules.md "Policy": old messages are not auto-processed. No pending item:
		// the user has had them in the inbox for a long time.
		return result(Ignored, ReasonTooOld), false
	}
	switch in.User.Policy {
	case Never:
		return held(in, ReasonPolicyNever), false
	case Always:
		return Result{}, true
	default: // Known, and anything unset
		if !known && !in.Known {
			return held(in, ReasonUnknownSender), false
		}
	}
	return Result{}, true
}
