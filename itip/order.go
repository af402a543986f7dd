package itip

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// compareVersion orders two versions of a component by RFC 5546 §2.1.5: a
// higher SEQUENCE is newer; with equal SEQUENCE a later DTSTAMP is newer.
// It returns 1 when (seqA, stampA) is newer than (seqB, stampB), -1 when
// older, 0 when the same version.
func compareVersion(seqA int, stampA time.Time, seqB int, stampB time.Time) int {
	switch {
	case seqA > seqB:
		return 1
	case seqA < seqB:
		return -1
	case stampA.After(stampB):
		return 1
	case stampA.Before(stampB):
		return -1
	}
	return 0
}

// versionOutcome turns a comparison into the outcome of a message that is not
// newer: the same version is a duplicate, an older one outdated.
func versionOutcome(cmp int) (Outcome, bool) {
	switch {
	case cmp < 0:
		return Outdated, true
	case cmp == 0:
		return Duplicate, true
	}
	return "", false
}

// replyStampKey keys the per-attendee REPLY order (docs/rules.md "Ordering and
// once-only"): the attendee and, for a reply to one instance, its
// RECURRENCE-ID.
func replyStampKey(attendee, rid string) string {
	if rid == "" {
		return attendee
	}
	return attendee + "\x00" + rid
}

// requestOrder applies RFC 5546 §2.1.5 per instance: the message is applied
// when at least one of its components is newer than the stored component it
// replaces (the override with that RECURRENCE-ID, else the master).
func requestOrder(st *Event, m *Message) (Result, bool) {
	worst := 1
	for _, inst := range m.Instances {
		t := st.targetInstance(inst.RecurrenceID)
		if t == nil {
			return Result{}, true // a component we do not have yet
		}
		cmp := compareVersion(inst.Sequence, inst.DTStamp, t.Sequence, t.DTStamp)
		if cmp > 0 {
			return Result{}, true
		}
		if cmp < worst {
			worst = cmp
		}
	}
	o, _ := versionOutcome(worst)
	return result(o, ""), false
}

// cancelOrder: imipd, as Open-Xchange, applies a CANCEL whose SEQUENCE is
// equal to or greater than the stored one (docs/rules.md "Methods"); an
// instance already cancelled at that version is a duplicate.
func cancelOrder(st *Event, m *Message) (Result, bool) {
	dup := true
	for _, inst := range m.Instances {
		t := st.targetInstance(inst.RecurrenceID)
		if t == nil {
			dup = false
			continue
		}
		if inst.Sequence < t.Sequence {
			return result(Outdated, ""), false
		}
		exact := st.find(inst.RecurrenceID)
		if exact == nil || !strings.EqualFold(propValue(exact, ical.PropStatus), "CANCELLED") ||
			compareVersion(inst.Sequence, inst.DTStamp, t.Sequence, t.DTStamp) > 0 {
			dup = false
		}
	}
	if dup {
		return result(Duplicate, ""), false
	}
	return Result{}, true
}

// answersOlder reports whether a COUNTER or DECLINECOUNTER carries a lower
// SEQUENCE than the stored component it refers to: it answers a version
// that no longer exists (RFC 5546 §2.1.5, §3.2.7, §3.2.8; docs/rules.md
// "Ordering and once-only").
func answersOlder(st *Event, m *Message) bool {
	t := st.targetInstance(m.First().RecurrenceID)
	return t != nil && m.Sequence() < t.Sequence
}

// replyOrder orders one instance of a REPLY from attendee against the
// stored instance t it answers (docs/rules.md "Ordering and once-only"): a
// lower SEQUENCE than t's answers a version that no longer exists (-1);
// otherwise the DTSTAMP of the attendee's last applied REPLY for that
// instance (stamps, keyed by replyStampKey) decides, and a first answer is
// newer (1). 0 is a duplicate.
func replyOrder(inst, t *Instance, attendee string, stamps map[string]time.Time) int {
	if inst.Sequence < t.Sequence {
		return -1
	}
	last, seen := stamps[replyStampKey(attendee, inst.RecurrenceID)]
	if !seen {
		return 1
	}
	return compareVersion(0, inst.DTStamp, 0, last)
}

// replyStampNewer reports whether a REPLY instance stamped stamp is newer
// than the last one applied for key (replyStampKey) in stamps: only those
// change the organizer's copy.
func replyStampNewer(stamps map[string]time.Time, key string, stamp time.Time) bool {
	last, seen := stamps[key]
	return !seen || stamp.After(last)
}

// addOrder applies RFC 5546 §2.1.5 to an ADD (§3.2.4): it must be newer
// than the stored master (st has one), or it is a duplicate or outdated.
func addOrder(st *Event, m *Message) (Result, bool) {
	t := st.instance("")
	if o, ok := versionOutcome(compareVersion(m.Sequence(), m.DTStamp(), t.Sequence, t.DTStamp)); ok {
		return result(o, ""), false
	}
	return Result{}, true
}

// outlives reports whether a stored override ov stays beside the new master
// of a full update: it is not older than that master by RFC 5546 §2.1.5 (an
// instance that arrived before its master, or a later instance update).
func outlives(ov, master *Instance) bool {
	return compareVersion(ov.Sequence, ov.DTStamp, master.Sequence, master.DTStamp) >= 0
}
