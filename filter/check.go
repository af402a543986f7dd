package filter

import (
	"fmt"
	"time"

	"imipd/itip"
)

// describe renders the iTIP objects of a message for imipctl check: a
// person's description of each, and one technical line per part (method,
// UID, version, or why it was refused).
// Times are shown in zone (the server's default_timezone).
func describe(objs []object, zone *time.Location) (desc, lines []string) {
	for _, o := range objs {
		if o.msg == nil {
			lines = append(lines, fmt.Sprintf("refused: %s (%v)", o.reason, o.err))
			continue
		}
		m := o.msg
		desc = append(desc, itip.Describe(m, &itip.User{Zone: zone}))
		line := fmt.Sprintf("%s %s uid=%s sequence=%d dtstamp=%s components=%d", m.Method, m.Kind, m.UID, m.Sequence(), m.DTStamp().UTC().Format("2006-01-02T15:04:05Z"), len(m.Instances))
		if o.methodParam != "" && o.methodParam != string(m.Method) {
			line += " (Content-Type says method=" + o.methodParam + ": suspicious)"
		}
		lines = append(lines, line)
	}
	return desc, lines
}
