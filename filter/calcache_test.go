package filter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-ical"

	"imipd/calstore"
	"imipd/itip"
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

// A delivery whose MaxMessage lowers the MIME caps is processed by the
// Processor itself, with the one cache: what it stores is cached there.
func TestCalCacheSharedByCappedDeliveries(t *testing.T) {
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Write(ctx, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "bob@example.test", Policy: "always"})
	}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/scenarios/request-new/message.eml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	p := &Processor{Store: db, Cfg: cfg}
	const maxMessage = 4096
	if _, capped := p.mimeLimits(maxMessage); capped == nil {
		t.Fatalf("MaxMessage %d lowers no cap", maxMessage)
	}
	rep, err := p.Process(ctx, Delivery{Transport: "test", Rcpts: []string{"bob@example.test"}, Message: bytes.NewReader(raw), MaxMessage: maxMessage})
	if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome != itip.NeedsAction {
		t.Fatalf("Process: %v, %+v", err, rep)
	}
	if len(p.cals().m) != 1 {
		t.Errorf("the capped delivery left %d entries in the Processor's cache, want 1", len(p.cals().m))
	}
}
