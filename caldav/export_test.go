package caldav

// ETag is etag, for the tests that compare a response's ETag with the
// stored data.
var ETag = etag

// WithMaxFailures is opt with the per-user login failure cap the daemon
// leaves at its default.
func WithMaxFailures(opt Options, n int) Options {
	opt.maxFailures = n
	return opt
}
