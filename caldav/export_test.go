package caldav

import "golang.org/x/crypto/bcrypt"

// The tests hash and compare app passwords at bcrypt's lowest cost: what
// they check (which logins pass, throttling, the unknown-user compare) does
// not depend on the cost, and at the default cost the login tests took a
// minute of CPU under the race detector (issue 16's make test measurement).
func init() { passwordCost = bcrypt.MinCost }

// ETag is etag, for the tests that compare a response's ETag with the
// stored data.
var ETag = etag

// WithMaxFailures is opt with the per-user login failure cap the daemon
// leaves at its default.
func WithMaxFailures(opt Options, n int) Options {
	opt.maxFailures = n
	return opt
}
