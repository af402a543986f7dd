// Package filter adapts transports (milter, LMTP, HTTP push, a file given to
// imipctl) to one processing call, Processor.Process: it extracts iMIP parts
// (package itip/imip), decodes them (itip/ics), resolves recipients to local
// users, runs the scheduling rules (itip) inside one store transaction per
// user (calstore), and returns per-recipient outcomes from which the
// transport builds its header (docs/rules.md "The header").
//
// The once-only rule (docs/rules.md "Ordering and once-only") lives here: the key of a
// (message, user) pair is looked up and written in the same transaction as
// the event, so a message is applied at most once whatever path delivered it,
// and a retried delivery gets the outcome it got the first time.
package filter
