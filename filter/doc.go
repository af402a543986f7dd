// Package filter is imipd's decision call and what belongs to it; it holds
// no transport (the adapters are filter/milter, filter/lmtp and
// filter/push; CalDAV is package caldav, the outbox sender package outbox).
//
//   - The decision call: Processor.Process takes a Delivery's raw facts
//     (envelope, SASL login, daemon name, the message as a stream or as
//     Processor.Parse read it) and returns a Report; Check is the same
//     decision for an administrator's message (dry run, a named user);
//     Respond is a user's decision on a pending item or an event (imipctl
//     respond, a CalDAV client's answer). Process decides whether the
//     message is the sender's own (ownmail.go), extracts the iMIP parts
//     (itip/imip), decodes them (itip/ics), runs the scheduling rules
//     (itip) inside one store transaction per user (calstore) and records
//     what they decided (commit.go).
//   - The report and the header: Report gives each recipient its header
//     value (HeaderValue, docs/rules.md "The header"), and header.go the
//     one way every adapter writes it (FoldValue, WriteTagged) and finds
//     forged copies (IsHeaderName, HiddenFields).
//   - Users (users.go): the one rule that resolves an address to a local
//     user, the create rule and the per-message, per-hour and per-user
//     caps; their time zones (zone.go).
//   - Budgets (budget.go): how much automatic mail a target gets.
//   - Import and export of a user's calendar (importexport.go), the
//     sign of life and catch-up record (catchup.go), the store's
//     readiness for /healthz (StoreReady).
//   - Metrics (metrics.go): the Prometheus counters of the decision call.
//
// The once-only rule (docs/rules.md "Ordering and once-only") lives here: the key of a
// (message, user) pair is looked up and written in the same transaction as
// the event, so a message is applied at most once whatever path delivered it,
// and a retried delivery gets the outcome it got the first time.
package filter
