package payments

import (
	"bytes"
	"testing"
)

// FuzzLoadMethods: a methods file either fails with an error or yields a
// catalog whose every method is usable: an English name, a direction,
// limits with min at most max in the currency of their key, and fees in
// the currencies offered.
func FuzzLoadMethods(f *testing.F) {
	f.Add(DefaultMethodsJSON())
	f.Add([]byte(quoteDoc))
	f.Add([]byte(filterDoc))
	f.Add([]byte(`{"methods":[{"id":"x","kind":"card","provider":"p","icon":"card","names":{"en":"X"},"deposit":{"limits":{"JPY":{"min":"1","max":"1"}}}}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := LoadMethods(bytes.NewReader(doc))
		if err != nil {
			return
		}
		for _, m := range c.Methods() {
			if m.Names["en"] == "" || (m.Deposit == nil && m.Withdrawal == nil) {
				t.Fatalf("method %+v", m)
			}
			for _, r := range []*DirectionRules{m.Deposit, m.Withdrawal} {
				if r == nil {
					continue
				}
				for code, l := range r.Limits {
					if l.Min.Currency().Code != code || l.Max.Currency().Code != code || l.Min.IsNegative() ||
						(!l.Max.IsZero() && l.Min.Minor() > l.Max.Minor()) {
						t.Fatalf("limit %s %+v", code, l)
					}
				}
				for code, fixed := range r.Fee.Fixed {
					if _, ok := r.Limits[code]; !ok || fixed.Currency().Code != code || fixed.IsNegative() {
						t.Fatalf("fixed fee %s %s", code, fixed)
					}
				}
				if r.Fee.PercentBps < 0 || r.Fee.PercentBps >= 10000 {
					t.Fatalf("percent %d", r.Fee.PercentBps)
				}
			}
		}
	})
}

// FuzzLoadStaticRates: a rates file either fails or yields only set rates
// between two different currencies.
func FuzzLoadStaticRates(f *testing.F) {
	f.Add([]byte(`{"rates":{"EUR/USD":"1.0835","USD/JPY":"151.237"}}`))
	f.Add([]byte(`{"rates":{"USDT/USD":"1","BTC/EUR":"60000.5"}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rates, err := LoadStaticRates(bytes.NewReader(doc))
		if err != nil {
			return
		}
		for key, r := range rates {
			from, to, err := ParsePair(key)
			if err != nil || from == to || !r.IsSet() {
				t.Fatalf("rate %s = %s (%v)", key, r, err)
			}
		}
	})
}
