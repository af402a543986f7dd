// Package ics decodes and encodes iCalendar (RFC 5545) objects safely and
// resolves their time zones, on top of go-ical's data model
// (ical.Calendar, ical.Component, ical.Prop, ical.Params).
//
// Why not go-ical's own codec (its limits, verified against the version in
// go.mod): its decoder panics on some malformed lines (e.g. `X;A=b`), builds
// parameter values one byte at a time (quadratic in the line length) and
// recurses without bound; its encoder does not fold lines, cannot write a
// parameter value containing '"', and orders properties only by name.
// This package therefore has its own content-line scanner and writer that
// produce and consume the same ical types; the rest of go-ical (Prop.Text,
// Component.Props.Get, ...) works on the result as usual.
//
// The package is pure: no I/O (apart from time.LoadLocation, which reads
// the tz database; the database is embedded via time/tzdata so results do
// not depend on the host), no clock, no logging.
//
// # Decoding
//
// Decode accepts CRLF and LF-only input, a UTF-8 byte-order mark, and
// folded lines (a line break followed by one space or tab; the fold may
// split a UTF-8 sequence). Invalid UTF-8 is replaced by U+FFFD after
// unfolding, so every string in the result is valid UTF-8. Property,
// parameter and component names are upper-cased. Parameter values are
// unquoted and RFC 6868 caret escapes (^n ^^ ^') are decoded; property
// values are kept raw (TEXT escapes such as `\,` stay; use Prop.Text).
// Control characters other than HTAB are removed from values, and the line
// breaks other readers honour (NEL, U+2028, U+2029) become LF in a
// parameter value and the TEXT escape `\n` in a property value, exactly as
// Encode writes them.
// Only the first VCALENDAR of the input is returned; blank lines are
// ignored. Leniencies: a '"' inside an unquoted parameter value is kept as
// a literal character; an unquoted `SENT-BY=mailto:x@y` (an old Outlook
// habit) is read as the whole URI. Anything else malformed, a lone CR or a
// NUL byte is ErrSyntax. Limits are checked while scanning, before any
// structure of the offending size is built: the size of the whole input,
// the length of each unfolded line, the number of components, and per
// component the number of properties, ATTENDEE properties and
// EXDATE/RDATE values. A limit hit is a *LimitError.
//
// # Encoding
//
// Encode writes CRLF line ends, folds lines at 75 octets without splitting
// a UTF-8 sequence, quotes parameter values containing ':' ';' or ',' and
// escapes '^', '"' and line breaks in parameter values per RFC 6868. A
// line break in a property value is written as the TEXT escape `\n`;
// other control characters are removed. Whatever a stored value holds, it
// is written as that one value (issue 13: a CN may not start a
// DESCRIPTION or a second VEVENT). Escaped gives the same values for
// go-ical's encoder (go-webdav's CalDAV handler); a CalDAV PUT is read by
// Decode like mail.
// The output is deterministic: see Encode for the property order.
// Encode(Decode(x)) decodes again to the same calendar (the output may be
// somewhat larger than the input because of quoting and folding).
//
// # Time zones
//
// Zones resolves TZID parameters: IANA names (also with the
// "/mozilla.org/20050126_1/"-style prefixes Thunderbird and libical add),
// Windows zone IDs as sent by Exchange and Outlook (CLDR windowsZones,
// territory 001, see windowszones.go), the calendar's own VTIMEZONE
// (X-LIC-LOCATION if that is an IANA name, otherwise a *time.Location
// built from its STANDARD/DAYLIGHT rules), and finally Windows display
// names such as "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm,
// Vienna". Local times that fall into a DST gap or overlap are resolved as
// RFC 5545 3.3.5 says (offset before the gap; first occurrence).
package ics
