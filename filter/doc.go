// Package filter is the one decision call every transport makes,
// Processor.Process (the adapters are filter/milter, filter/lmtp and
// filter/push; imipctl's file is Check): from a Delivery's raw facts it
// decides whether the message is the sender's own, extracts iMIP parts
// (package itip/imip), decodes them (itip/ics), resolves recipients to
// local users, runs the scheduling rules (itip) inside one store
// transaction per user (calstore), counts the metrics, and returns a
// Report that gives each recipient its header value (docs/rules.md "The
// header").
//
// The once-only rule (docs/rules.md "Ordering and once-only") lives here: the key of a
// (message, user) pair is looked up and written in the same transaction as
// the event, so a message is applied at most once whatever path delivered it,
// and a retried delivery gets the outcome it got the first time.
package filter
