package filter

import (
	"errors"

	"imipd/calstore"
	"imipd/itip"
)

// delegateFor lists the parties of m that are local users who named from as
// a delegate (`user add -delegate`): for the sender rule, the author speaks
// for them (docs/rules.md "Sender checks": "a delegate configured for a local
// user"; itip.Input.DelegateFor). Only parties whose SENT-BY in m names the
// author are looked up (a delegate's mail names itself, itip.Respond's
// markSentBy does), so a message costs at most one user lookup per such
// party; the claim only picks whom to look up, the configuration decides.
func delegateFor(tx calstore.UserTx, m *itip.Message, from string) ([]string, error) {
	if from == "" {
		return nil, nil
	}
	var out []string
	check := func(p itip.Party) error {
		if p.Address == "" || p.SentBy != from {
			return nil
		}
		for _, a := range out {
			if a == p.Address {
				return nil
			}
		}
		u, err := tx.User(p.Address)
		if errors.Is(err, calstore.ErrNotFound) || errors.Is(err, calstore.ErrInvalid) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, d := range u.Delegates {
			if d == from {
				out = append(out, p.Address)
				break
			}
		}
		return nil
	}
	for _, inst := range m.Instances {
		if err := check(inst.Organizer); err != nil {
			return nil, err
		}
		for _, a := range inst.Attendees {
			if err := check(a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
