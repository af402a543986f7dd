//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const deliveryWait = 30 * time.Second

var seq atomic.Int64

// unique returns a token unique in this run, for Message-IDs and UIDs.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// sendSMTP submits msg over SMTP to a Postfix instance's smtpd. It returns
// the first error (a refused recipient included).
func sendSMTP(port int, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.remote.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return c.Quit()
}

func mustSend(t *testing.T, p *postfix, from string, to []string, msg []byte) {
	t.Helper()
	if err := sendSMTP(p.smtpPort, from, to, msg); err != nil {
		t.Fatalf("SMTP to %s instance: %v", p.name, err)
	}
}

// sendmail submits msg with Postfix's sendmail(1) (postdrop, then pickup and
// cleanup: the non_smtpd_milters path), as a local user sending mail does.
func sendmail(t *testing.T, p *postfix, from string, to []string, msg []byte) {
	t.Helper()
	args := append([]string{"-C", p.dir, "-i", "-f", from, "--"}, to...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/sbin/sendmail", args...)
	cmd.Stdin = bytes.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func maildir(addr string) string {
	local, domain, _ := strings.Cut(addr, "@")
	return filepath.Join(E.root, "mail", domain, local, "Maildir")
}

// findMail returns the messages in addr's Maildir that contain marker.
func findMail(addr, marker string) [][]byte {
	var found [][]byte
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(maildir(addr), sub))
		for _, ent := range ents {
			b, err := os.ReadFile(filepath.Join(maildir(addr), sub, ent.Name()))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				found = append(found, b)
			}
		}
	}
	return found
}

// waitMail polls addr's Maildir until a message containing marker arrives.
func waitMail(t *testing.T, addr, marker string) *mail.Message {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		if f := findMail(addr, marker); len(f) > 0 {
			if len(f) > 1 {
				t.Errorf("%s got %d copies of %s", addr, len(f), marker)
			}
			m, err := mail.ReadMessage(bytes.NewReader(f[0]))
			if err != nil {
				t.Fatalf("delivered message for %s: %v\n%s", addr, err, f[0])
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %s in %s's Maildir after %v", marker, addr, deliveryWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog polls a Postfix instance's maillog until re matches a line.
func waitLog(t *testing.T, p *postfix, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		b, _ := os.ReadFile(p.maillog)
		if m := re.Find(b); m != nil {
			return string(m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s maillog: no line matching %s after %v", p.name, re, deliveryWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueID returns the Postfix queue id of the message with this Message-ID.
func queueID(t *testing.T, p *postfix, messageID string) string {
	t.Helper()
	line := waitLog(t, p, regexp.MustCompile(`([0-9A-F]{6,}): message-id=<`+regexp.QuoteMeta(messageID)+`>`))
	return strings.SplitN(line, ":", 2)[0]
}

func headerValues(m *mail.Message, name string) []string {
	return m.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// plainMessage is a non-calendar message.
func plainMessage(from, to, msgid string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: plain %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		from, to, msgid, time.Now().Format(time.RFC1123Z), msgid)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n")
	return []byte(b.String())
}

type attendee struct{ addr, partstat string }

// itipMessage is an RFC 6047 message: multipart/alternative with a text
// part and the calendar, as calendar programs send them.
type itipMessage struct {
	method, uid   string
	sequence      int
	organizer     string
	attendees     []attendee
	from, to, mid string
	extra         []string // extra header lines
	start         time.Time
}

func (m itipMessage) bytes() []byte {
	now := time.Now().UTC()
	start := m.start
	if start.IsZero() {
		start = now.Add(7 * 24 * time.Hour).Truncate(time.Hour)
	}
	const f = "20060102T150405Z"
	var ics strings.Builder
	ics.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd e2e//EN\r\n")
	fmt.Fprintf(&ics, "METHOD:%s\r\nBEGIN:VEVENT\r\nUID:%s\r\nSEQUENCE:%d\r\nDTSTAMP:%s\r\n", m.method, m.uid, m.sequence, now.Format(f))
	fmt.Fprintf(&ics, "DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:e2e %s\r\n", start.Format(f), start.Add(time.Hour).Format(f), m.uid)
	fmt.Fprintf(&ics, "ORGANIZER:mailto:%s\r\n", m.organizer)
	for _, a := range m.attendees {
		fmt.Fprintf(&ics, "ATTENDEE;PARTSTAT=%s;RSVP=TRUE:mailto:%s\r\n", a.partstat, a.addr)
	}
	ics.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")

	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s e2e %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		m.from, m.to, m.method, m.uid, time.Now().Format(time.RFC1123Z), m.mid)
	for _, h := range m.extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nA calendar message.\r\n")
	fmt.Fprintf(&b, "--b1\r\nContent-Type: text/calendar; charset=utf-8; method=%s\r\n\r\n%s", m.method, ics.String())
	b.WriteString("--b1--\r\n")
	return []byte(b.String())
}
