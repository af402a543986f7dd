package filter

import (
	"fmt"
	"reflect"

	"imipd/itip/ics"
)

// CheckCalCache reports a cached calendar that differs from what decoding
// its bytes gives: the cache's premise (a calendar written and the same
// bytes decoded again are the same value).
func CheckCalCache(p *Processor) error {
	c := p.cals()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		dec, err := ics.Decode(e.data, storedLimits)
		if err != nil {
			return fmt.Errorf("%q: cached bytes do not decode: %v", k, err)
		}
		if !reflect.DeepEqual(dec, e.cal) {
			return fmt.Errorf("%q: cached calendar differs from its bytes decoded:\n%#v\n%#v", k, e.cal.Component, dec.Component)
		}
	}
	return nil
}
