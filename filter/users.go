package filter

import (
	"errors"
	"strings"
	"time"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
)

// How users come to exist (config [users] create, docs/rules.md "Users and
// addresses", README "Users and addresses", SECURITY.md "What imipd
// trusts").
const (
	// CreateAuto: a recipient at a local domain that the MTA accepted
	// becomes a user on its first calendar mail, within the new-user caps.
	CreateAuto = "auto"
	// CreateListed: only users an administrator made with imipctl exist;
	// calendar mail to anyone else is ignored (unknown-user).
	CreateListed = "listed"
)

// Reason words of the recipient rule and the per-user and per-message caps
// (SECURITY.md "Limits").
const (
	reasonUnknownUser   itip.Reason = "unknown-user"   // create = listed and no such user
	reasonUserLimit     itip.Reason = "user-limit"     // over new_users_per_message or new_users_per_hour
	reasonEventLimit    itip.Reason = "event-limit"    // the user holds events_per_user events
	reasonPendingLimit  itip.Reason = "pending-limit"  // the user has pending_per_user open pending items
	reasonCalendarParts itip.Reason = "calendar-parts" // the message has more than calendar_parts calendar parts
)

// UserView is the rules' view of a stored user (the one conversion of
// calstore.User to itip.User): its addresses and delegates, its policy
// (the server default when it has none), the subaddress delimiter
// (recipient_delimiter, so bob+team@ is Bob) and its time zone. The
// decision call and a calendar app's write see a user the same way.
func (p *Processor) UserView(u calstore.User) itip.User {
	pol := itip.Policy(u.Policy)
	if pol == "" {
		pol = p.Cfg.DefaultPolicy
	}
	return itip.User{Address: u.Address, Aliases: u.Aliases, Delegates: u.Delegates, Policy: pol, Delimiter: p.Cfg.RecipientDelimiter,
		Zone: UserZone(u, p.Cfg.DefaultZone)}
}

// resolveUser is the one rule that says who an address is (docs/rules.md "Users and
// addresses"): every transport's recipients, the push request's user and
// the outgoing sender go through it (localUser). The address is normalised
// (address.Normalize: angle brackets, "mailto:", case); a
// user's address or alias matches first, then the address without its
// subaddress (address.Base with recipient_delimiter), as Postfix looks up
// bob+x@ and then bob@. Anyone else at a local domain is a user to be
// created (exists false) under create = auto, and nobody under listed;
// primary is then the address without subaddress.
func (p *Processor) resolveUser(tx calstore.Tx, addr string) (primary string, exists, ok bool, err error) {
	a := address.Normalize(addr)
	if a == "" || !strings.Contains(a, "@") || len(a) > calstore.MaxAddressLen {
		return "", false, false, nil
	}
	base := address.Base(a, p.Cfg.RecipientDelimiter)
	for _, c := range []string{a, base} {
		u, err := tx.User(c)
		switch {
		case err == nil:
			return u.Address, true, true, nil
		case errors.Is(err, calstore.ErrNotFound), errors.Is(err, calstore.ErrInvalid):
		default:
			return "", false, false, err
		}
		if base == a {
			break
		}
	}
	return base, false, p.IsLocal(base), nil
}

// localUser resolves an address to a local user's primary address
// (resolveUser): a stored user, or under create = auto an address at a
// local domain that becomes a user on first use. ok is false for everyone
// else.
func (p *Processor) localUser(tx calstore.Tx, addr string) (primary string, ok bool, err error) {
	primary, exists, ok, err := p.resolveUser(tx, addr)
	if !exists && p.Cfg.CreateUsers == CreateListed {
		ok = false
	}
	return primary, ok, err
}

// IsLocal reports whether an address is at one of the local domains.
func (p *Processor) IsLocal(addr string) bool {
	d := address.Domain(address.Normalize(addr))
	for _, ld := range p.Cfg.LocalDomains {
		if d != "" && strings.EqualFold(strings.TrimSpace(ld), d) {
			return true
		}
	}
	return false
}

// admitUsers decides, for one message, which recipients that are not
// stored users yet may become users: none under create = listed
// (unknown-user), else at most NewUsersPerMessage per message (user-limit;
// the hourly cap is admitNewUser's, in the write transaction). Existing
// users, a user named by the administrator or the push (ForcedUser:
// CheckRequest.User, Delivery.PushUser) and dry runs are
// not counted. It sets refuse on the users it turns away.
func (p *Processor) admitUsers(users []rcptUser, env envelope) {
	fresh := 0
	for i := range users {
		u := &users[i]
		if u.exists || env.ForcedUser != "" {
			continue
		}
		switch {
		case p.Cfg.CreateUsers == CreateListed:
			u.refuse = reasonUnknownUser
		case env.DryRun:
		case p.Cfg.NewUsersPerMessage > 0 && fresh >= p.Cfg.NewUsersPerMessage:
			u.refuse = reasonUserLimit
		default:
			fresh++
		}
	}
}

// newUserWindow is the window of new_users_per_hour.
const newUserWindow = time.Hour

// admitNewUser spends one use of the new-user budget (NewUsersPerHour per
// sliding newUserWindow, counted in the store with the transaction that
// creates the user) when u is not a user yet, and reports whether u may be
// one. Existing users, ForcedUser and dry runs spend nothing.
func (p *Processor) admitNewUser(tx calstore.Tx, u rcptUser, env envelope, now time.Time) (bool, error) {
	if u.exists || env.ForcedUser != "" || env.DryRun || p.Cfg.NewUsersPerHour <= 0 {
		return true, nil
	}
	_, err := tx.User(u.addr)
	switch {
	case err == nil:
		return true, nil // made meanwhile: by another message, or this one's earlier object
	case !errors.Is(err, calstore.ErrNotFound):
		return false, err
	}
	return tx.TakeBudget(budgetKey("new-user"), now, newUserWindow, p.Cfg.NewUsersPerHour)
}

// overCap says whether storing res for a user would pass a per-user cap
// (SECURITY.md "Limits"): a new event beyond EventsPerUser, or pending
// items beyond PendingPerUser open ones. stored tells whether the user
// holds the event already. The answer is a reason word, "" when under.
func (p *Processor) overCap(tx calstore.Tx, user string, stored bool, res itip.Result) (itip.Reason, error) {
	newEvent := res.Cal != nil && !stored && p.Cfg.EventsPerUser > 0
	newPending := len(res.Pending) > 0 && p.Cfg.PendingPerUser > 0
	if !newEvent && !newPending {
		return "", nil
	}
	events, open, err := tx.Counts(user)
	if err != nil {
		return "", err
	}
	switch {
	case newEvent && events >= p.Cfg.EventsPerUser:
		return reasonEventLimit, nil
	case newPending && open+len(res.Pending) > p.Cfg.PendingPerUser:
		return reasonPendingLimit, nil
	}
	return "", nil
}
