package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Configuration errors never show a secret's value: `imipd -test` output and
// the daemon's start-up errors end up in terminals, logs and bug reports. A
// secret is the value of a key whose name contains password, secret, dsn or
// token ([http] push_password, [submission] password).

// secretAssign matches a secret key and its "=" in a TOML line (a plain,
// dotted, quoted or inline-table key).
var secretAssign = regexp.MustCompile(`(?i)[A-Za-z0-9_.\-"']*(password|secret|dsn|token)[A-Za-z0-9_.\-"']*\s*=`)

// quoted matches a quoted fragment of a parse error's message.
var quoted = regexp.MustCompile(`'[^']*'|"[^"]*"`)

// redacted stands for a secret value.
const redacted = "<redacted>"

// secretLines returns the 1-based numbers of the lines of a TOML source
// that hold a secret value or part of one (a multi-line string continues
// the secret on the following lines up to its closing delimiter).
func secretLines(src string) map[int]bool {
	out := map[int]bool{}
	open := "" // the delimiter of a multi-line secret string still open
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if open != "" {
			out[n] = true
			if strings.Contains(line, open) {
				open = ""
			}
			continue
		}
		loc := secretAssign.FindStringIndex(line)
		if loc == nil {
			continue
		}
		out[n] = true
		v := strings.TrimSpace(line[loc[1]:])
		for _, d := range []string{`"""`, `'''`} {
			if strings.HasPrefix(v, d) && !strings.Contains(v[len(d):], d) {
				open = d
			}
		}
	}
	return out
}

// redactLine shows a line of a TOML source with a secret value replaced.
func redactLine(line string) string {
	if loc := secretAssign.FindStringIndex(line); loc != nil {
		return line[:loc[1]] + " " + redacted
	}
	return redacted
}

// parseErrorText renders a TOML syntax error of the file at path as the
// toml package's ErrorWithPosition does (the message, the position and up
// to three lines of context), without secret values: a context line that
// holds one shows its key only, and a message about such a line loses its
// quoted fragments.
func parseErrorText(path, src string, pe toml.ParseError) string {
	secret := secretLines(src)
	lines := strings.Split(src, "\n")
	n := pe.Position.Line
	msg := pe.Message
	if secret[n] {
		msg = quoted.ReplaceAllString(msg, "'…'") + " (a secret key's value: not shown)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: toml: error: %s\n\nAt line %d, column %d:\n\n", path, msg, n, pe.Position.Col)
	for l := max(n-2, 1); l <= n && l <= len(lines); l++ {
		text := strings.TrimRight(lines[l-1], "\r")
		if secret[l] {
			text = redactLine(text)
		}
		fmt.Fprintf(&b, "% 7d | %s\n", l, text)
	}
	return b.String()
}
