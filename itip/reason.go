package itip

// Reason is the word that says why a message got its outcome for a user
// (Result.Reason), why an object is not acceptable iTIP (ParseError.Reason)
// or why a pending item was opened or closed. The words are written into
// the header and the logs; README "The header" lists each of them
// (TestReasonWordsDocumented, package filter, finds them by these names).
type Reason string

// Reasons of ParseError: the object is rejected at intake (validate.go,
// model.go; RFC 5546 §3.2, RFC 5545 §3.3).
const (
	ReasonBadDate          Reason = "bad-date"
	ReasonBadMethod        Reason = "bad-method"
	ReasonBadRecurrenceID  Reason = "bad-recurrence-id"
	ReasonBadSequence      Reason = "bad-sequence"
	ReasonMalformed        Reason = "malformed"
	ReasonMissingAttendee  Reason = "missing-attendee"
	ReasonMissingDTStamp   Reason = "missing-dtstamp"
	ReasonMissingDTStart   Reason = "missing-dtstart"
	ReasonMissingMethod    Reason = "missing-method"
	ReasonMissingOrganizer Reason = "missing-organizer"
	ReasonMissingUID       Reason = "missing-uid"
	ReasonMixedComponents  Reason = "mixed-components"
	ReasonMixedUID         Reason = "mixed-uid"
	ReasonNoComponent      Reason = "no-component"
	ReasonRRuleFrequency   Reason = "rrule-frequency"
)

// Reasons of a message held for the user (docs/rules.md "Sender checks",
// "Policy"): it is not applied until the user applies it.
const (
	ReasonMethodMismatch   Reason = "method-mismatch"
	ReasonOrganizerChanged Reason = "organizer-changed"
	ReasonPolicyNever      Reason = "policy-never"
	ReasonSenderMismatch   Reason = "sender-mismatch"
	ReasonUnknownSender    Reason = "unknown-sender"
)

// Reasons of the other outcomes (docs/rules.md "Methods", "User
// interaction", "Outgoing mail teaches the calendar").
const (
	ReasonAdded                Reason = "added"
	ReasonAnswered             Reason = "answered"
	ReasonAutoSubmitted        Reason = "auto-submitted"
	ReasonCancelled            Reason = "cancelled"
	ReasonCancelledUnknown     Reason = "cancelled-unknown"
	ReasonCounter              Reason = "counter"
	ReasonCounterAccepted      Reason = "counter-accepted"
	ReasonCounterDeclined      Reason = "counter-declined"
	ReasonIgnored              Reason = "ignored"
	ReasonInvitation           Reason = "invitation"
	ReasonNotAttendee          Reason = "not-attendee"
	ReasonNotAuthor            Reason = "not-author"
	ReasonNotInvited           Reason = "not-invited"
	ReasonNotOrganizer         Reason = "not-organizer"
	ReasonNothingToDo          Reason = "nothing-to-do"
	ReasonOrganizerCopy        Reason = "organizer-copy"
	ReasonOwnMessage           Reason = "own-message"
	ReasonPartyCrasher         Reason = "party-crasher"
	ReasonPublished            Reason = "published"
	ReasonRecorded             Reason = "recorded"
	ReasonRefreshAnswered      Reason = "refresh-answered"
	ReasonRefreshSent          Reason = "refresh-sent"
	ReasonRemoved              Reason = "removed"
	ReasonRescheduled          Reason = "rescheduled"
	ReasonTooOld               Reason = "too-old"
	ReasonUnknownEvent         Reason = "unknown-event"
	ReasonUnknownInstance      Reason = "unknown-instance"
	ReasonUnsupportedComponent Reason = "unsupported-component"
	ReasonUpdated              Reason = "updated"
)

// Kind is what a pending item asks of the user (docs/rules.md "User
// interaction"); ActionsFor lists its answers.
type Kind string

// Pending kinds.
const (
	KindInvitation   Kind = "invitation"
	KindRescheduled  Kind = "rescheduled"
	KindPartyCrasher Kind = "party-crasher"
	KindCounter      Kind = "counter"
	KindRefresh      Kind = "refresh"
	KindHeld         Kind = "held"
)
