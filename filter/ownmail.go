package filter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"imipd/calstore"
)

// OwnMailRules say which deliveries are a local user's own mail (config
// [milter] logins and outgoing_daemons; SECURITY.md "Who is trusted"),
// from Delivery.Login and Delivery.Daemon.
type OwnMailRules struct {
	// Logins maps a SASL login to the address of the user it belongs to,
	// for logins that are not themselves one of the user's addresses
	// ("alice" for alice@example.test). Keys are compared case-insensitively.
	Logins map[string]string
	// Daemons are {daemon_name} values whose mail WITHOUT a login counts as
	// the envelope sender's own (Postfix's pickup: sendmail(1)). Default
	// none: any local account can pass any sender to sendmail(1), so this
	// is an administrator's opt-in. Postfix sends
	// $milter_macro_daemon_name, which is $myhostname unless master.cf
	// overrides it for the cleanup service pickup uses (contrib sets
	// "pickup").
	Daemons []string
}

// mayBeOwn is ownMail without the store: false means the message is
// certainly not a local user's own (no sender, or neither a login nor a
// daemon opted in), so the store is not read.
func (r OwnMailRules) mayBeOwn(mailFrom, login, daemon string) bool {
	if mailFrom == "" {
		return false
	}
	if login != "" {
		return true
	}
	return daemon != "" && slices.Contains(r.Daemons, daemon)
}

// loginOwner is the address a SASL login stands for: its Logins entry, or
// the login itself (a login that is an address: Dovecot's usual setup).
func (r OwnMailRules) loginOwner(login string) string {
	for k, v := range r.Logins {
		if strings.EqualFold(k, login) {
			return v
		}
	}
	return login
}

// ownMail decides whether a message is a local user's own outgoing mail
// (docs/rules.md "Outgoing mail teaches the calendar"), the one place that does: the
// envelope sender is a local user, and
//   - with a SASL login: the login belongs to that same user (it is one of
//     the user's addresses, or Logins maps it to one). alice logged in with
//     MAIL FROM bob is nobody's own mail, whatever Postfix let through;
//   - without a login: the MTA service that took it is one of Daemons
//     (opt-in; default none).
//
// The rules are Config.Own; mailFrom, login and daemon are the Delivery's.
// Mail that is not a user's own is still processed, as incoming mail for
// its local recipients.
func (p *Processor) ownMail(ctx context.Context, mailFrom, login, daemon string) (bool, error) {
	r := p.Cfg.Own
	if !r.mayBeOwn(mailFrom, login, daemon) {
		return false, nil
	}
	own := false
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		sender, ok, err := p.localUser(tx, mailFrom)
		if err != nil || !ok {
			return err
		}
		if login == "" {
			own = true // a daemon opted in (mayBeOwn)
			return nil
		}
		owner, ok, err := p.localUser(tx, r.loginOwner(login))
		own = ok && owner == sender
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sender %s, login %q: %w", mailFrom, login, err)
	}
	return own, nil
}
