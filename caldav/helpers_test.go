package caldav_test

import (
	"context"
	"strings"
	"testing"

	"imipd/caldav"
	"imipd/filter"
	"imipd/internal/filtertest"
)

// newServer is the server over p's store, answering through p, with p's
// clock and limits of mail, as cmd/imipd wires it.
func newServer(p *filter.Processor, opt caldav.Options) *caldav.Server {
	opt.Limits, opt.Now = p.Cfg.ICS, p.Time
	return caldav.New(p.Store, p, opt, nil)
}

// process delivers raw through p and returns the last recipient's result.
func process(t *testing.T, p *filter.Processor, raw string, d filter.Delivery) filter.Result {
	t.Helper()
	d.Transport, d.Received, d.Message = "test", p.Now(), strings.NewReader(raw)
	rep, err := p.Process(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		return filter.Result{}
	}
	return rep.Results[len(rep.Results)-1]
}

// Fixtures shared with filter's tests (internal/filtertest).
var (
	newProc = filtertest.NewProcessor
	mail    = filtertest.Mail
)
