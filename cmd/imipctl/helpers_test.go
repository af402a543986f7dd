package main

import (
	"bytes"
	"context"
	"testing"
)

// cli runs imipctl commands in-process with the global flags given
// ("-data", DIR or "-config", FILE): ctl returns the output and the error,
// must fails the test on an error.
func cli(t *testing.T, global ...string) (ctl func(args ...string) (string, error), must func(args ...string) string) {
	ctl = func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(append([]string{}, global...), args...), nil, &out)
		return out.String(), err
	}
	must = func(args ...string) string {
		t.Helper()
		out, err := ctl(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	return ctl, must
}
