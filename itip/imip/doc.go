// Package imip finds the iMIP (RFC 6047) calendar parts of a mail message.
//
// Parse is a pure extractor: it reads one raw RFC 5322 message from an
// io.Reader and returns the header fields imipd needs and the calendar parts,
// decoded to UTF-8. It does no other I/O, reads no clock and logs nothing. Like
// mox's tlsrpt.ParseMessage, a message without calendar part yields the sentinel
// ErrNoCalendar (with the header fields), so that the caller passes the message
// on untouched.
//
// # Detection
//
// A MIME leaf is a calendar candidate when its media type is text/calendar,
// text/x-vcalendar or application/ics, or when its filename (Content-Disposition
// filename, else Content-Type name) ends in ".ics", whatever its type (Outlook
// and others send application/octet-stream, Deutsche Bahn sends text/plain).
// The content is never sniffed: text/plain starting with BEGIN:VCALENDAR is not a
// candidate. See isCalendarType.
//
// multipart/* of every subtype is walked (mixed, alternative, related, signed,
// report, ...). message/rfc822 and message/global are not followed: a forwarded
// invitation, or a bounce carrying the original, must not be processed as if its
// author had sent it. While such an embedded message is skipped, a shallow look
// at its lines (which are read anyway) marks the message as forwarded when a
// line starts with a Content-Type naming a calendar type or with BEGIN:VCALENDAR;
// nothing in it is extracted.
//
// A part's path numbers parts as IMAP does: "1" for a single-part message, "1",
// "2", "2.1", ... for the parts of a multipart message.
//
// Part.Data is in canonical text form: every line, the last one included, ends
// in CRLF (RFC 5545 3.1), also for LF-only input. Parts with identical Data (Outlook's and Google's
// text/calendar plus application/ics twins) are kept once, the first in MIME
// order. Empty calendar
// parts are dropped. The method parameter is reported as given (upper-cased); the
// METHOD inside the iCalendar object is the caller's business.
//
// # Bounds
//
// The MIME parser is a single line-based pass over one bufio.Reader with a stack
// of active boundaries (at most Limits.MaxDepth deep), so the cost is linear in
// the message size and memory is bounded by the limits:
//
//   - MaxHeaderBytes bounds the top-level header block and each part header
//     (LimitError "header-size").
//   - MaxDepth bounds multipart nesting; MaxParts bounds the number of entities
//     visited, multipart containers included ("mime-depth", "mime-parts"). Parse
//     stops at the first excess, so a message nested 5,000 deep or with 10,000
//     parts costs almost nothing.
//   - Non-calendar parts are never buffered: their lines are skipped (an
//     input that is a DashSkipper drops them before handing them over). A
//     non-multipart top-level body that is not a calendar is not even read.
//   - A calendar candidate is buffered encoded up to MaxCalendarBytes+2 bytes
//     (7bit/8bit/binary) or 4*MaxCalendarBytes+64KiB (base64, quoted-printable);
//     its decoded UTF-8 data must not exceed MaxCalendarBytes ("calendar-size").
//   - The decoded data of all candidates, duplicates included, must not exceed
//     MaxDecodedBytes ("decoded-size").
//
// On a limit Parse returns the header fields and the parts found so far with a
// *LimitError; the caller decides (imipd delivers the message and rejects it).
//
// # Tolerance
//
// Malformed input is handled as far as reasonable and never panics: LF-only line
// endings, an mbox "From " line at the start, header lines without a valid field
// name (dropped), unparseable Content-Type parameters (parsed leniently), a
// multipart without boundary (treated as a leaf and skipped), unterminated
// multiparts (ended by an outer delimiter or the end of input), a part that ends
// inside its header (skipped). Base64 is decoded leniently (no padding, stray
// characters, truncation); quoted-printable too (invalid escapes kept). Unknown
// transfer encodings are treated as 8bit. Dates are parsed by net/mail, then by a
// list of common broken forms; addresses by net/mail, then by a pattern search.
//
// # Charsets
//
// Calendar data is converted to UTF-8 from UTF-8, US-ASCII, ISO-8859-1,
// ISO-8859-15, windows-1252 and UTF-16; a UTF-8 BOM is removed. Any other charset
// is kept as is when the bytes are valid UTF-8, otherwise invalid bytes become
// U+FFFD. go-message's charset package would cover every charset, but it needs
// the golang.org/x/text module, which is not in go.sum; swapping it in is a change
// to toUTF8 only.
package imip
