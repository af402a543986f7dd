package itip

import "time"

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
