// Package caldav is imipd's CalDAV server (RFC 4791) for users' calendar
// apps and the read-only ICS feed, over the store: one calendar per user
// holding every stored event (master and overrides as one resource per
// UID), discovery (RFC 6764 /.well-known/caldav, RFC 5397
// current-user-principal, calendar-home-set), calendar-query
// (query.go: imipd's own bounded time-range evaluation),
// calendar-multiget, ETags, CTag and sync-collection (RFC 6578, sync.go).
// Writes are what an attendee may change in someone else's event
// (write.go); logins are throttled (login.go); the feed is
// /feed/<token>.ics (feed.go).
//
// URL layout (the principal has one path segment below /dav, as go-webdav
// expects):
//
//	/.well-known/caldav                       308 to the principal
//	/dav/USER/                                principal
//	/dav/calendars/USER/                      calendar home set
//	/dav/calendars/USER/invitations/          the calendar
//	/dav/calendars/USER/invitations/NAME.ics  one event; NAME is the UID, or
//	                                          "~" + base64url(UID) for a UID
//	                                          with other characters than
//	                                          A-Z a-z 0-9 @ . _ + = -
//	/feed/TOKEN.ics                           the ICS feed (no login: the token)
//
// What the server reads and writes it takes from the store (the Store
// interface: read transactions, and one write for the personal part of a
// PUT). What the decision call decides it asks through the Scheduler
// interface declared here, which filter.Processor satisfies: an answer
// (accept, tentative, decline) taken from a client's PUT or DELETE, the
// calendar export the feed serves, and the rules' view of a user (its
// addresses and subaddresses), so that a write is checked as mail is. So filter never imports caldav, and
// caldav never touches the Processor's fields. The clock is Options.Now
// (the daemon passes the Processor's).
//
// The JSON views of stored events (imipctl events and event, -json) are
// not here but in filter/admin, their only user: CalDAV and the feed serve
// the stored iCalendar itself, never a view of it, so the views belong with
// the commands that print them.
// The app password and feed token functions (HashPassword, NewFeedToken)
// are here, beside the checks that read what they make; imipctl user
// password and user feed call them.
//
// The go-webdav library of the same name is imported as gocaldav.
package caldav
