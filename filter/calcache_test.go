package filter

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/emersion/go-ical"
)

// The cache stays within its bounds, answers only for the same bytes, and
// does not keep an event over calCacheMaxEntry.
func TestCalCacheBounds(t *testing.T) {
	c := &calCache{m: map[string]calEntry{}}
	cal := ical.NewCalendar()
	data := bytes.Repeat([]byte("x"), 100<<10)
	for i := range 200 {
		c.put("u", fmt.Sprint(i), data, cal)
		if len(c.m) > calCacheSize || c.bytes > calCacheBytes {
			t.Fatalf("after %d puts: %d entries, %d bytes", i+1, len(c.m), c.bytes)
		}
	}
	sum := 0
	for _, e := range c.m {
		sum += len(e.data)
	}
	if sum != c.bytes {
		t.Fatalf("bytes %d, entries hold %d", c.bytes, sum)
	}
	c.put("u", "a", []byte("one"), cal)
	if c.get("u", "a", []byte("one")) != cal || c.get("u", "a", []byte("two")) != nil || c.get("v", "a", []byte("one")) != nil {
		t.Error("get: hit for other bytes or user, or miss for the same")
	}
	c.put("u", "a", bytes.Repeat([]byte("y"), calCacheMaxEntry+1), cal)
	if _, ok := c.m["u\x00a"]; ok {
		t.Error("an entry over calCacheMaxEntry was kept (and the old one must go)")
	}
}

// A milter whose MaxMessage lowers the MIME caps processes each message
// with a copy of its Processor: every copy uses the one cache.
func TestCalCacheSharedByCappedCopies(t *testing.T) {
	m := NewMilter(&Processor{Cfg: DefaultConfig()}, MilterOptions{MaxMessage: 4096}, nil)
	p1, capped := m.processor()
	p2, _ := m.processor()
	if capped == nil || p1 == m.p || p2 == p1 {
		t.Fatalf("want capped copies: capped %v, copies %p %p of %p", capped, p1, p2, m.p)
	}
	if c := m.p.cals(); p1.cals() != c || p2.cals() != c {
		t.Error("a capped copy has a cache of its own")
	}
}
