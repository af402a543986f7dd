package filter

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"imipd/calstore"
)

// zones caches the time zones loaded by name (time.LoadLocation reads the
// zone database each time). Names come from the configuration and from
// user records, whose names were checked by LoadZone when set: the cache
// holds at most the zone database's few hundred names.
var zones sync.Map // string → *time.Location

// LoadZone returns the IANA time zone name ("Europe/Berlin", "UTC"), for
// default_timezone and imipctl user set -tz. "Local" and "" are refused:
// a description must not depend on the machine's setting.
func LoadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || strings.EqualFold(name, "Local") || len(name) > 64 {
		return nil, fmt.Errorf("time zone %q: want an IANA name such as Europe/Berlin or UTC", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	zones.Store(name, l)
	return l, nil
}

// UserZone is the time zone a user reads descriptions in: their own
// (imipctl user set -tz), else def (default_timezone), else UTC. A name
// the zone database no longer knows falls back the same way.
func UserZone(u calstore.User, def *time.Location) *time.Location {
	if u.TimeZone != "" {
		if l, err := LoadZone(u.TimeZone); err == nil {
			return l
		}
	}
	if def != nil {
		return def
	}
	return time.UTC
}
