package imip

import (
	"strings"
	"testing"
)

func benchParse(b *testing.B, msg string) {
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Parse(strings.NewReader(msg), Limits{})
	}
}

func BenchmarkParseOutlook(b *testing.B) { benchParse(b, outlookMsg) }

// BenchmarkParseLargeAttachment: a 10 MB base64 PDF next to a text part, no
// calendar: lines are skipped, nothing is buffered.
func BenchmarkParseLargeAttachment(b *testing.B) {
	msg := "From: a@example.org\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nhi\n--z\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" +
		strings.Repeat(strings.Repeat("A", 76)+"\r\n", 10<<20/78) + "--z--\n"
	benchParse(b, msg)
}
