package calstore

import (
	"bytes"
	"slices"
	"sync"
)

// userCache keeps decoded user records by primary address, checked by
// content: a hit needs the stored bytes to equal the bytes the entry was
// decoded from, so a changed or rolled-back record is never served. Every
// delivery reads its recipient's record (the address lookup before
// parsing, the policy inside the write transaction), and decoding JSON
// was most of that read. Callers get their own copy of the slices.
type userCache struct {
	mu sync.Mutex
	m  map[string]userEntry
}

type userEntry struct {
	raw []byte
	u   User
}

// userCacheSize bounds the entries; when full, an arbitrary one goes.
const userCacheSize = 4096

func (c *userCache) get(primary string, raw []byte) (User, bool) {
	c.mu.Lock()
	e, ok := c.m[primary]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return User{}, false
	}
	u := e.u
	u.Aliases = slices.Clone(u.Aliases)
	u.Delegates = slices.Clone(u.Delegates)
	return u, true
}

// put caches u decoded from raw, which is copied (bbolt's bytes live only
// as long as the transaction).
func (c *userCache) put(primary string, raw []byte, u User) {
	u.Aliases = slices.Clone(u.Aliases)
	u.Delegates = slices.Clone(u.Delegates)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]userEntry{}
	}
	if _, ok := c.m[primary]; !ok && len(c.m) >= userCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[primary] = userEntry{raw: bytes.Clone(raw), u: u}
}
