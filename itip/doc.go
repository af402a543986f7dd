// Package itip holds imipd's scheduling rules: iTIP (RFC 5546) as Open-Xchange
// applies it, with stricter ordering and sender checks. docs/rules.md states
// each rule in prose; comments cite its headings as docs/rules.md "Methods".
//
// The package is pure. Apply takes the stored object of one user, the incoming
// iTIP message, who sent it, the user's policy and the current time, and returns
// the new stored object, an outcome with a reason word, pending decisions to
// record and iTIP messages to send. It reads no clock, does no I/O and keeps no
// globals; the caller (package filter) owns the store and the transport.
//
// One event model serves the incoming message and the user's stored copy:
// Event (model.go) is one UID's components read once into Instances with
// their RECURRENCE-ID key (InstanceKey), SEQUENCE, DTSTAMP and parties;
// Message is an Event with its METHOD. The rules compare Instance with
// Instance; object.go holds Event's lookups and its copy-on-write changes.
//
// Each rule lives in one function that names its RFC section:
//
//	validate.go RFC 5546 §3.2 restriction tables, RFC 5545 §3.3 values (intake)
//	order.go    RFC 5546 §2.1.5 (SEQUENCE, DTSTAMP) and per-attendee REPLY order
//	sender.go   RFC 6047 §3 / RFC 5546 §6.1 (who may send which method)
//	policy.go   docs/rules.md "Policy" (autoProcessIMip, timeframe)
//	request.go  RFC 5546 §3.2.1 PUBLISH, §3.2.2 REQUEST
//	reply.go    RFC 5546 §3.2.3 REPLY
//	add.go      RFC 5546 §3.2.4 ADD
//	cancel.go   RFC 5546 §3.2.5 CANCEL
//	refresh.go  RFC 5546 §3.2.6 REFRESH
//	counter.go  RFC 5546 §3.2.7 COUNTER, §3.2.8 DECLINECOUNTER
//	outgoing.go docs/rules.md "Outgoing mail teaches the calendar"
//	respond.go  the user's decisions on pending items
//	attendee.go RFC 6638 §3.2.2.1 what an attendee's calendar app may change
//	compare.go  RFC 5545 §3.3 property values compared by meaning
//
// reason.go names the reason words (Reason) and pending kinds (Kind) the
// rules write.
package itip
