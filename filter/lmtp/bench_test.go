package lmtp_test

import (
	"testing"

	"imipd/filter/lmtp"
)

// BenchmarkLMTPPlain: one plain message per upstream connection (as Postfix
// without its connection cache), straight to the go-smtp downstream of
// lmtp_test.go, and through the proxy to it: the proxy's cost per message
// is the difference (loopback TCP upstream, unix socket downstream).
func BenchmarkLMTPPlain(b *testing.B) {
	e := newLMTPEnv(b, lmtp.Options{})
	rcpts := []string{"bob@example.test"}
	for _, c := range []struct{ name, addr string }{
		{"direct", e.ds.addr},
		{"proxy", e.addr},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lmtpWantOK(b, lmtpDeliver(b, c.addr, "alice@remote.test", rcpts, lmtpPlain), rcpts...)
			}
		})
	}
}
