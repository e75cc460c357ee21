package money

import "testing"

func TestDisplay(t *testing.T) {
	const nb = "\u00a0"
	chf := MustCurrency("CHF")
	inr := MustCurrency("INR")
	tests := []struct {
		name string
		lang string
		a    Amount
		want string
	}{
		{"en dollars", "en", New(123450, usd), "$1,234.50"},
		{"en negative euros", "en", New(-123450, eur), "-€1,234.50"},
		{"en cents only", "en", New(-5, eur), "-€0.05"},
		{"en zero", "en", Zero(usd), "$0.00"},
		{"en yen has no decimals", "en", New(1000, jpy), "¥1,000"},
		{"en dinar has three", "en", New(1234567, kwd), "KWD" + nb + "1,234.567"},
		{"en letters are spaced from digits", "en", New(1230, chf), "CHF" + nb + "12.30"},
		{"en asset uses its code", "en", New(100000, btc), "BTC" + nb + "0.00100000"},
		{"en max", "en", New(9223372036854775807, usd), "$92,233,720,368,547,758.07"},
		{"en min", "en", New(MinMinor, usd), "-$92,233,720,368,547,758.07"},
		{"en-US same as en", "en-US", New(123450, usd), "$1,234.50"},

		{"de euros", "de", New(123450, eur), "1.234,50" + nb + "€"},
		{"de negative euros", "de", New(-123450, eur), "-1.234,50" + nb + "€"},
		{"de dollars", "de", New(123456789, usd), "1.234.567,89" + nb + "$"},
		{"de yen", "de", New(1000, jpy), "1.000" + nb + "¥"},
		{"de dinar", "de", New(1234567, kwd), "1.234,567" + nb + "KWD"},
		{"de bitcoin", "de", New(100000, btc), "0,00100000" + nb + "BTC"},
		{"de-DE same as de", "de-DE", New(123450, eur), "1.234,50" + nb + "€"},
		{"de-CH groups with apostrophes, symbol first", "de-CH", New(123450, chf), "CHF" + nb + "1’234.50"},

		{"fr groups with spaces", "fr", New(123450, eur), "1" + nb + "234,50" + nb + "€"},
		{"nl symbol first with space", "nl", New(123450, eur), "€" + nb + "1.234,50"},
		{"ja yen", "ja", New(1000, jpy), "￥1,000"},
		{"hi groups in lakhs", "hi", New(123456700, inr), "₹12,34,567.00"},
		{"ar uses Arabic-Indic digits throughout", "ar", New(123450, usd), "١٬٢٣٤٫٥٠" + nb + "US$"},

		{"empty lang is English", "", New(123450, usd), "$1,234.50"},
		{"malformed lang is English", "!!", New(123450, usd), "$1,234.50"},
		{"zero Amount", "en", Amount{}, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Display(tc.lang); got != tc.want {
				t.Errorf("Display(%q) of %v = %q, want %q", tc.lang, tc.a, got, tc.want)
			}
		})
	}
}

// Display, lookups and registration are used from many goroutines at once;
// run with -race to check them.
func TestConcurrentUse(t *testing.T) {
	done := make(chan string)
	for range 8 {
		go func() {
			var problem string
			for range 200 {
				if got := New(123450, eur).Display("de"); got != "1.234,50\u00a0€" {
					problem = "Display(de) = " + got
				}
				if got := New(123450, usd).Display("en"); got != "$1,234.50" {
					problem = "Display(en) = " + got
				}
				if err := RegisterAsset("TSTRACE", 4); err != nil {
					problem = err.Error()
				}
				if c, err := LookupCurrency("TSTRACE"); err != nil || c.Digits != 4 {
					problem = "lookup of TSTRACE failed"
				}
				_ = RegisteredAssets()
			}
			done <- problem
		}()
	}
	for range 8 {
		if p := <-done; p != "" {
			t.Error(p)
		}
	}
}
