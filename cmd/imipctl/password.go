package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// isPasswordCommand reports whether args (after the global flags) are
// `user password USER`, the command that reads a secret on standard input.
func isPasswordCommand(args []string) bool {
	return len(args) > 1 && args[0] == "user" && args[1] == "password"
}

// promptPassword asks for the app password on the terminal t (standard
// input), twice, without echo, and returns what `user password` reads from
// standard input: the password and a newline. The prompts go to the
// terminal itself, so they show even when standard error is redirected.
func promptPassword(t *os.File, user string) (io.Reader, error) {
	restore, err := noEcho(t)
	if err != nil {
		return nil, fmt.Errorf("user password: terminal: %w", err)
	}
	defer restore()
	var got [2]string
	for i, prompt := range []string{"CalDAV app password for " + user + ": ", "again: "} {
		if _, err := io.WriteString(t, prompt); err != nil {
			return nil, fmt.Errorf("user password: terminal: %w", err)
		}
		if got[i], err = readLine(t); err != nil {
			return nil, fmt.Errorf("user password: terminal: %w", err)
		}
	}
	if got[0] != got[1] {
		return nil, errors.New("user password: the two entries differ; nothing changed")
	}
	return strings.NewReader(got[0] + "\n"), nil
}

// readLine reads up to a newline a byte at a time, so nothing after the
// line is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for b.Len() < 4096 {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(c[0])
			continue
		}
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("line too long")
}
