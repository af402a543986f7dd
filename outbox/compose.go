package outbox

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// messageID is the Message-ID (without angle brackets) Compose gives
// an item: derived from the item's ID, creation time and the hostname, so
// every attempt to send one item carries the same Message-ID.
func messageID(it calstore.OutboxItem, hostname string) string {
	if hostname == "" {
		hostname = "localhost"
	}
	h := sha256.Sum256([]byte(strconv.FormatUint(it.ID, 10) + "\x00" + it.Created.UTC().Format(time.RFC3339Nano) + "\x00" + hostname))
	return "imipd." + hex.EncodeToString(h[:16]) + "@" + hostname
}

// Compose renders an outbox item as an iMIP message (RFC 6047 §2, RFC
// 5322): From the user (with Sender the delegate when the item was sent by
// one), To the recipients, Date now, a Message-ID stable per item
// (messageID), the item's Subject, and a multipart/alternative body
// with a readable text/plain summary and the iCalendar object as
// text/calendar; method=METHOD. Automatic answers carry Auto-Submitted:
// auto-replied (RFC 3834) and X-Auto-Response-Suppress: All. The summary
// shows times in zone (the sending user's; nil = UTC).
func Compose(it calstore.OutboxItem, now time.Time, hostname string, zone *time.Location) (msgID string, raw []byte, err error) {
	if strings.TrimSpace(it.From) == "" || len(it.To) == 0 {
		return "", nil, fmt.Errorf("outbox item %d: no From or no recipients", it.ID)
	}
	if len(it.Body) == 0 {
		return "", nil, fmt.Errorf("outbox item %d: empty calendar body", it.ID)
	}
	var msg *itip.Message
	if cal, err := ics.Decode(it.Body, ics.DefaultLimits()); err == nil {
		msg, _ = itip.ParseMessage(cal)
	}
	method := strings.ToUpper(strings.TrimSpace(it.Method))
	if method == "" && msg != nil {
		method = string(msg.Method)
	}
	if method == "" || strings.ContainsAny(method, " \t\r\n;\"") {
		return "", nil, fmt.Errorf("outbox item %d: no usable METHOD (%q)", it.ID, method)
	}

	from := address.Normalize(it.From)
	sentBy := address.Normalize(it.SentBy)
	if sentBy == from {
		sentBy = ""
	}
	to := make([]*mail.Address, 0, len(it.To))
	for _, a := range it.To {
		to = append(to, &mail.Address{Address: address.Normalize(a)})
	}
	subject := it.Subject
	if subject == "" {
		subject = "Calendar: " + method
	}
	msgID = messageID(it, hostname)
	// go-message writes fields in the reverse order of setting them: set
	// from the last to the first.
	var h mail.Header
	var bnd [15]byte
	crand.Read(bnd[:])
	h.SetContentType("multipart/alternative", map[string]string{"boundary": "imipd-" + hex.EncodeToString(bnd[:])})
	h.Set("MIME-Version", "1.0")
	if it.Auto {
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Auto-Submitted", "auto-replied")
	}
	h.SetSubject(subject)
	h.SetAddressList("To", to)
	if sentBy != "" {
		h.SetAddressList("Sender", []*mail.Address{{Address: sentBy}})
	}
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetMessageID(msgID)
	h.SetDate(now)

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return "", nil, err
	}
	// (1) what it is about, in words.
	reader := ""
	if len(it.To) == 1 {
		reader = address.Normalize(it.To[0])
	}
	text := "A calendar message (" + method + ")."
	if msg != nil {
		text = itip.Describe(msg, &itip.User{Address: reader, Zone: zone}) + "."
	}
	if sentBy != "" {
		text += "\r\nSent by " + sentBy + " on behalf of " + from + "."
	}
	text += "\r\n\r\nCalendar programs read the attached iCalendar data (iTIP " + method + ").\r\n"
	if err := writePart(w, "text/plain", nil, []byte(text)); err != nil {
		return "", nil, err
	}
	// (2) the iTIP object itself.
	if err := writePart(w, "text/calendar", map[string]string{"method": method}, it.Body); err != nil {
		return "", nil, err
	}
	if err := w.Close(); err != nil {
		return "", nil, err
	}
	return msgID, buf.Bytes(), nil
}

// writePart adds a UTF-8 text part: 7bit when the body is ASCII with short
// lines, quoted-printable otherwise.
func writePart(w *message.Writer, mediaType string, params map[string]string, body []byte) error {
	p := map[string]string{"charset": "UTF-8"}
	for k, v := range params {
		p[k] = v
	}
	var ph message.Header
	ph.Set("Content-Transfer-Encoding", transferEncoding(body))
	ph.SetContentType(mediaType, p) // written first
	pw, err := w.CreatePart(ph)
	if err != nil {
		return err
	}
	if _, err := pw.Write(body); err != nil {
		return err
	}
	return pw.Close()
}

func transferEncoding(body []byte) string {
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) > 998 {
			return "quoted-printable"
		}
		for _, c := range line {
			if c >= 0x80 || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f {
				return "quoted-printable"
			}
		}
	}
	return "7bit"
}
