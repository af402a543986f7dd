package filter

import (
	"bytes"
	"sync"

	"github.com/emersion/go-ical"
)

// calCache keeps the decoded iCalendar of recently written events, keyed
// by user and UID and checked by content: a hit needs the stored bytes to
// equal the bytes the cached calendar was written as. A big meeting's
// replies arrive together and each reads the event the one before wrote;
// inside a group commit they run one after the other, and decoding the
// stored calendar was the largest part of each. The cached calendars are
// never modified: the itip rules copy before they change anything
// (itip's cloneCal), and commit only reads.
type calCache struct {
	mu    sync.Mutex
	m     map[string]calEntry
	bytes int // sum of len(data) over m
}

type calEntry struct {
	data []byte
	cal  *ical.Calendar
}

// The cache's bounds: entries, and the iCalendar text they hold (the
// decoded form takes a few times that); a larger event is not cached. When
// full, arbitrary entries go.
const (
	calCacheSize     = 64
	calCacheBytes    = 4 << 20
	calCacheMaxEntry = 512 << 10
)

var calCacheInit sync.Mutex

// cals returns p's cache, made on first use.
func (p *Processor) cals() *calCache {
	calCacheInit.Lock()
	defer calCacheInit.Unlock()
	if p.calCache == nil {
		p.calCache = &calCache{m: map[string]calEntry{}}
	}
	return p.calCache
}

// get returns the calendar cached for user and uid if it was cached from
// data; nil on a miss or for a nil cache.
func (c *calCache) get(user, uid string, data []byte) *ical.Calendar {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user+"\x00"+uid]
	if !ok || !bytes.Equal(e.data, data) {
		return nil
	}
	return e.cal
}

// put caches cal as the decoding of data (no-op for a nil cache).
func (c *calCache) put(user, uid string, data []byte, cal *ical.Calendar) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := user + "\x00" + uid
	if old, ok := c.m[k]; ok {
		c.bytes -= len(old.data)
		delete(c.m, k)
	}
	if len(data) > calCacheMaxEntry {
		return
	}
	for old, e := range c.m {
		if len(c.m) < calCacheSize && c.bytes+len(data) <= calCacheBytes {
			break
		}
		c.bytes -= len(e.data)
		delete(c.m, old)
	}
	c.m[k] = calEntry{data: data, cal: cal}
	c.bytes += len(data)
}
