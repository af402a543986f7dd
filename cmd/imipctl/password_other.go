//go:build !linux

package main

import (
	"errors"
	"os"
)

// isTerminal is false off Linux: the password is read from standard input
// as it comes.
func isTerminal(*os.File) bool { return false }

func noEcho(*os.File) (func(), error) { return nil, errors.New("not supported on this system") }
