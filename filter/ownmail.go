package filter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"imipd/calstore"
)

// Submission is what a transport knows about who handed it a message,
// besides the message: the envelope sender and, on the milter, the SASL
// login and the MTA service.
type Submission struct {
	MailFrom string // envelope sender
	Login    string // SASL login ({auth_authen}); "" when not authenticated
	Daemon   string // {daemon_name}: the MTA service that took the message
}

// OwnMailRules say which submissions are a local user's own mail (config
// [milter] logins and outgoing_daemons; SECURITY.md "Who is trusted").
type OwnMailRules struct {
	// Logins maps a SASL login to the address of the user it belongs to,
	// for logins that are not themselves one of the user's addresses
	// ("alice" for alice@example.test). Keys are compared case-insensitively.
	Logins map[string]string
	// Daemons are {daemon_name} values whose mail WITHOUT a login counts as
	// the envelope sender's own (Postfix's pickup: sendmail(1)). Default
	// none: any local account can pass any sender to sendmail(1), so this
	// is an administrator's opt-in.
	Daemons []string
}

// mayBeOwn is ownMail without the store: false means the message is
// certainly not a local user's own (no sender, or neither a login nor a
// daemon opted in), so a transport may skip the store read.
func (r OwnMailRules) mayBeOwn(s Submission) bool {
	if s.MailFrom == "" {
		return false
	}
	if s.Login != "" {
		return true
	}
	return s.Daemon != "" && slices.Contains(r.Daemons, s.Daemon)
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

// OwnMail decides whether a message is a local user's own outgoing mail
// (docs/rules.md "Outgoing mail teaches the calendar"), the one place that does: the
// envelope sender is a local user, and
//   - with a SASL login: the login belongs to that same user (it is one of
//     the user's addresses, or Logins maps it to one). alice logged in with
//     MAIL FROM bob is nobody's own mail, whatever Postfix let through;
//   - without a login: the MTA service that took it is one of Daemons
//     (opt-in; default none).
//
// Mail that is not a user's own is still processed, as incoming mail for
// its local recipients.
func (p *Processor) OwnMail(ctx context.Context, r OwnMailRules, s Submission) (bool, error) {
	if !r.mayBeOwn(s) {
		return false, nil
	}
	own := false
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		sender, ok, err := p.LocalUser(tx, s.MailFrom)
		if err != nil || !ok {
			return err
		}
		if s.Login == "" {
			own = true // a daemon opted in (mayBeOwn)
			return nil
		}
		owner, ok, err := p.LocalUser(tx, r.loginOwner(s.Login))
		own = ok && owner == sender
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sender %s, login %q: %w", s.MailFrom, s.Login, err)
	}
	return own, nil
}
