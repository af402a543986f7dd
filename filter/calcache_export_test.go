package filter

import (
	"fmt"
	"maps"
	"slices"

	"github.com/emersion/go-ical"

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
		if !sameComp(dec.Component, e.cal.Component) {
			return fmt.Errorf("%q: cached calendar differs from its bytes decoded:\n%#v\n%#v", k, e.cal.Component, dec.Component)
		}
	}
	return nil
}

// sameComp reports whether a and b are the same component: names, every
// property (in order, value and parameters) and the children. A property
// without parameters is the same whether its Params is nil (Decode's) or
// an empty map (go-ical's NewProp).
func sameComp(a, b *ical.Component) bool {
	if a.Name != b.Name || len(a.Props) != len(b.Props) || len(a.Children) != len(b.Children) {
		return false
	}
	for name, ps := range a.Props {
		if !slices.EqualFunc(ps, b.Props[name], func(p, q ical.Prop) bool {
			return p.Name == q.Name && p.Value == q.Value && maps.EqualFunc(p.Params, q.Params, slices.Equal)
		}) {
			return false
		}
	}
	for i := range a.Children {
		if !sameComp(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}
