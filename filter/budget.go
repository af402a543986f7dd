package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
)

// Budgets of automatic mail (SECURITY.md "Limits"). What itip decides to
// send on its own (Outgoing.Auto: REFRESH answers, the REFRESH an ADD for
// an unknown event asks with) is counted in the store, in the transaction
// that records the decision, before it is queued.
const (
	// autoSendWindow is the period of Config.AutoSendLimit: at most that
	// many automatic messages per target address in any autoSendWindow,
	// whichever sender or local user caused them.
	autoSendWindow = time.Hour
	// refreshAskWindow: a local user asks an organizer automatically for a
	// UID (REFRESH, RFC 5546 §3.2.6) at most once in this window. A day
	// covers the ADDs an organizer sends together and the time a person
	// takes to answer, and still asks again the next day if the answer was
	// lost.
	refreshAskWindow = 24 * time.Hour
)

// Reason words of automatic mail that was not sent (README "Header").
const (
	reasonSendBudget   itip.Reason = "send-budget"   // the target's budget for this hour is spent (or auto_send_limit = 0)
	reasonRefreshAsked itip.Reason = "refresh-asked" // this user asked this organizer for this UID within refreshAskWindow
)

// unsent is one target of automatic mail the budgets dropped.
type unsent struct {
	target string
	reason itip.Reason
	method itip.Method
}

// budgetSends keeps of res.Send what the budgets allow and spends them.
// Mail that is not automatic passes. An automatic message loses the
// targets over budget and is dropped when none is left; when nothing at
// all is left to send, res becomes ignored with the reason, and writes
// nothing to the event (a flood must not rewrite it). The targets
// dropped are returned for the log.
func (p *Processor) budgetSends(tx calstore.Tx, user, uid string, res *itip.Result, now time.Time) ([]unsent, error) {
	var kept []itip.Outgoing
	var drops []unsent
	for _, s := range res.Send {
		if !s.Auto {
			kept = append(kept, s)
			continue
		}
		var to []string
		for _, target := range s.To {
			reason, err := p.spendAuto(tx, user, uid, s.Method, address.Normalize(target), now)
			if err != nil {
				return nil, err
			}
			if reason != "" {
				drops = append(drops, unsent{target: target, reason: reason, method: s.Method})
				continue
			}
			to = append(to, target)
		}
		if len(to) > 0 {
			s.To = to
			kept = append(kept, s)
		}
	}
	if len(drops) > 0 && len(kept) == 0 {
		res.Outcome, res.Reason, res.Note = itip.Ignored, drops[0].reason, ""
	}
	res.Send = kept
	return drops, nil
}

// spendAuto decides one target of one automatic message: "" when it may
// be sent (and its budgets are spent), else the reason word.
func (p *Processor) spendAuto(tx calstore.BudgetTx, user, uid string, m itip.Method, target string, now time.Time) (itip.Reason, error) {
	ask := ""
	if m == itip.Refresh {
		ask = budgetKey("refresh", user, target, uid)
		n, err := tx.BudgetUsed(ask, now)
		if err != nil || n > 0 {
			return reasonRefreshAsked, err
		}
	}
	ok, err := tx.TakeBudget(budgetKey("auto-send", target), now, autoSendWindow, p.Cfg.AutoSendLimit)
	if err != nil || !ok {
		return reasonSendBudget, err
	}
	if ask != "" {
		if _, err := tx.TakeBudget(ask, now, refreshAskWindow, 1); err != nil {
			return "", err
		}
	}
	return "", nil
}

// budgetKey names a budget: kind and parts joined by NUL, or kind and a
// hash of the parts when that would be longer than the store takes (UIDs
// and addresses come from mail).
func budgetKey(kind string, parts ...string) string {
	k := kind + "\x00" + strings.Join(parts, "\x00")
	if len(k) <= calstore.MaxBudgetKeyLen {
		return k
	}
	h := sha256.Sum256([]byte(k))
	return kind + "\x00sha256:" + hex.EncodeToString(h[:])
}
