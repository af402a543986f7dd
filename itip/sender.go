package itip

// senderIs reports whether the message's author may speak for party p
// (SPEC "Sender checks", RFC 6047 §3 and RFC 5546 §6.1): the From address is
// the party's address, or the party's SENT-BY appears in From or Sender. A
// Sender header alone never causes a mismatch (Google sends
// calendar-notification@google.com as Sender with the organizer in From).
func senderIs(p Party, from, sender string) bool {
	if from == "" || p.Address == "" {
		return false
	}
	if from == p.Address {
		return true
	}
	return p.SentBy != "" && (from == p.SentBy || sender == p.SentBy)
}
