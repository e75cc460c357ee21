package payments

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func rates(t *testing.T, doc string) StaticRates {
	t.Helper()
	r, err := LoadStaticRates(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConvertRounding(t *testing.T) {
	src := rates(t, `{"rates":{
		"USD/JPY":"151.237", "EUR/USD":"1.0835", "JPY/KWD":"0.0025", "KWD/JPY":"491.5", "JPY/USD":"0.0066",
		"GBP/JPY":"151", "EUR/GBP":"1.25", "CHF/EUR":"1.08"}}`)
	ctx := context.Background()
	gbp, chf := money.MustCurrency("GBP"), money.MustCurrency("CHF")
	// Every expected value is computed by hand in the comment: the exact
	// product, then one half-even rounding to the target's minor unit.
	tests := []struct {
		name     string
		amount   money.Amount
		to       money.Currency
		spread   int64
		want     money.Amount
		rate     string
		inverted bool
	}{
		// 10.01 × 151.237 = 1513.88237 → 1514.
		{"USD to JPY", amt(t, "10.01", usd), jpy, 0, amt(t, "1514", jpy), "151.237", false},
		// 0.50 × 151 = 75.5 → tie → 76 (even); 1.50 × 151 = 226.5 → 226 (even).
		{"tie to even up", amt(t, "0.50", gbp), jpy, 0, amt(t, "76", jpy), "151", false},
		{"tie to even down", amt(t, "1.50", gbp), jpy, 0, amt(t, "226", jpy), "151", false},
		// 1 × 0.0025 = 0.0025 KWD → tie → 0.002; 3 × 0.0025 = 0.0075 → 0.008.
		{"JPY to KWD tie down", amt(t, "1", jpy), kwd, 0, amt(t, "0.002", kwd), "0.0025", false},
		{"JPY to KWD tie up", amt(t, "3", jpy), kwd, 0, amt(t, "0.008", kwd), "0.0025", false},
		// 12345 × 0.0025 = 30.8625 KWD → 30.862 (tie, 2 is even).
		{"JPY to KWD large", amt(t, "12345", jpy), kwd, 0, amt(t, "30.862", kwd), "0.0025", false},
		// 75 × 0.0066 = 0.495 → 0.50 (tie, 50 even); 225 × 0.0066 = 1.485 → 1.48.
		{"JPY to USD tie up", amt(t, "75", jpy), usd, 0, amt(t, "0.50", usd), "0.0066", false},
		{"JPY to USD tie down", amt(t, "225", jpy), usd, 0, amt(t, "1.48", usd), "0.0066", false},
		// Spread 50 bps: 1.0835 × 0.995 = 1.0780825; 100.00 × 1.0780825 = 107.80825 → 107.81.
		{"EUR to USD with spread", amt(t, "100.00", eur), usd, 50, amt(t, "107.81", usd), "1.0780825", false},
		// Spread 100 bps: 491.5 × 0.99 = 486.585; 1.234 × 486.585 = 600.44589 → 600.
		{"KWD to JPY with spread", amt(t, "1.234", kwd), jpy, 100, amt(t, "600", jpy), "486.585", false},
		// Only EUR/GBP is known: GBP/EUR = 1 / 1.25 = 0.8 exactly; 10.01 × 0.8 = 8.008 → 8.01.
		{"inverse exact", amt(t, "10.01", gbp), eur, 0, amt(t, "8.01", eur), "0.8", true},
		// Only CHF/EUR 1.08: EUR/CHF = 0.925925925925|925… → 0.925925925926 (12 decimals, half even);
		// 100.00 × 0.925925925926 = 92.5925925926 → 92.59.
		{"inverse rounded", amt(t, "100.00", eur), chf, 0, amt(t, "92.59", chf), "0.925925925926", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv, err := Converter{Source: src, SpreadBps: tc.spread}.Convert(ctx, tc.amount, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if conv.To != tc.want || conv.From != tc.amount {
				t.Errorf("Convert(%s → %s) = %s, want %s", tc.amount, tc.to.Code, conv.To, tc.want)
			}
			if conv.Rate.String() != tc.rate || conv.Inverted != tc.inverted || conv.SpreadBps != tc.spread {
				t.Errorf("applied rate %s inverted %v spread %d, want %s %v %d", conv.Rate, conv.Inverted, conv.SpreadBps, tc.rate, tc.inverted, tc.spread)
			}
			// The record is checkable: To = round_half_even(From × Rate).
			again, err := money.Convert(conv.From, tc.to, conv.Rate, money.RoundHalfEven)
			if err != nil || again != conv.To {
				t.Errorf("recomputing from the record gives %s, %v", again, err)
			}
		})
	}

	t.Run("same currency", func(t *testing.T) {
		conv, err := Converter{Source: src, SpreadBps: 50}.Convert(ctx, amt(t, "10.00", usd), usd)
		if err != nil || conv.To != amt(t, "10.00", usd) || conv.Rate.IsSet() {
			t.Errorf("Convert to the same currency = %+v, %v; want unchanged with no rate", conv, err)
		}
	})
	t.Run("no rate", func(t *testing.T) {
		_, err := Converter{Source: src}.Convert(ctx, amt(t, "10.00", usd), kwd)
		if !errs.Is(err, errs.Unavailable) || !strings.Contains(errs.MessageOf(err), "no exchange rate for USD/KWD") {
			t.Errorf("Convert without a rate = %v, want EUNAVAILABLE naming the pair", err)
		}
	})
	t.Run("no source", func(t *testing.T) {
		if _, err := (Converter{}).Convert(ctx, amt(t, "10.00", usd), eur); !errs.Is(err, errs.Unavailable) {
			t.Errorf("Convert without a source = %v, want EUNAVAILABLE", err)
		}
	})
	t.Run("bad spread", func(t *testing.T) {
		if _, err := (Converter{Source: src, SpreadBps: 10000}).Convert(ctx, amt(t, "10.00", usd), jpy); !errs.Is(err, errs.Invalid) {
			t.Errorf("Convert with spread 10000 = %v, want EINVALID", err)
		}
	})
}

func TestLoadStaticRatesRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":       `{"rates":`,
		"unknown field":  `{"rates":{},"base":"USD"}`,
		"no slash":       `{"rates":{"EURUSD":"1.08"}}`,
		"unknown code":   `{"rates":{"EUR/XYZ":"1.08"}}`,
		"lower case":     `{"rates":{"eur/usd":"1.08"}}`,
		"itself":         `{"rates":{"EUR/EUR":"1"}}`,
		"zero":           `{"rates":{"EUR/USD":"0"}}`,
		"negative":       `{"rates":{"EUR/USD":"-1.08"}}`,
		"exponent":       `{"rates":{"EUR/USD":"1e0"}}`,
		"13 decimals":    `{"rates":{"EUR/USD":"1.0000000000001"}}`,
		"number not str": `{"rates":{"EUR/USD":1.08}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadStaticRates(strings.NewReader(doc)); !errs.Is(err, errs.Invalid) {
				t.Errorf("LoadStaticRates(%s) = %v, want EINVALID", doc, err)
			}
		})
	}
}

func TestRateStoreAndFXCommand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC))
		var trail []string
		store := NewRateStore(db, clk).Audit(audit.RecorderFunc(func(_ context.Context, _ *sqlstore.Tx, r audit.Record) error {
			trail = append(trail, r.Actor+" "+r.Action+" "+r.Subject+" "+r.Detail["rate"])
			return nil
		}))
		run := func(args ...string) (string, error) {
			var out bytes.Buffer
			err := RunFXCommand(ctx, store, args, &out, "ops@broker")
			return out.String(), err
		}
		if out, err := run("list"); err != nil || !strings.Contains(out, "no rates are set") {
			t.Fatalf("fx list on an empty store = %q, %v", out, err)
		}
		if out, err := run("set", "EUR/USD", "1.0835"); err != nil || out != "EUR/USD = 1.0835\n" {
			t.Fatalf("fx set = %q, %v", out, err)
		}
		if _, err := run("set", "usd/jpy", "151.237"); err != nil {
			t.Fatalf("fx set with lower-case pair: %v", err)
		}
		clk.Advance(time.Hour)
		if _, err := run("set", "EUR/USD", "1.0840"); err != nil {
			t.Fatal(err)
		}
		out, err := run("list")
		if err != nil {
			t.Fatal(err)
		}
		want := "PAIR     RATE     UPDATED               BY\n" +
			"EUR/USD  1.084    2026-03-01T10:30:00Z  ops@broker\n" +
			"USD/JPY  151.237  2026-03-01T09:30:00Z  ops@broker\n"
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("fx list (-want +got):\n%s", diff)
		}

		// The store is a source, and wins over a static file when chained first.
		static := rates(t, `{"rates":{"EUR/USD":"1.10","GBP/USD":"1.27"}}`)
		src := Sources{store, static}
		conv, err := Converter{Source: src}.Convert(ctx, amt(t, "100.00", eur), usd)
		if err != nil || conv.To != amt(t, "108.40", usd) {
			t.Errorf("EUR→USD with the operator's rate = %s, %v; want 108.40 USD", conv.To, err)
		}
		conv, err = Converter{Source: src}.Convert(ctx, amt(t, "100.00", money.MustCurrency("GBP")), usd)
		if err != nil || conv.To != amt(t, "127.00", usd) {
			t.Errorf("GBP→USD from the static file = %s, %v; want 127.00 USD", conv.To, err)
		}

		if out, err := run("unset", "EUR/USD"); err != nil || out != "EUR/USD removed\n" {
			t.Errorf("fx unset = %q, %v", out, err)
		}
		if _, err := run("unset", "EUR/USD"); !errs.Is(err, errs.NotFound) {
			t.Errorf("fx unset twice = %v, want ENOTFOUND", err)
		}
		if _, err := store.Rate(ctx, eur, usd); !errs.Is(err, errs.NotFound) {
			t.Errorf("Rate after unset = %v, want ENOTFOUND", err)
		}
		wantTrail := []string{
			"ops@broker setting.changed fx:EUR/USD 1.0835",
			"ops@broker setting.changed fx:USD/JPY 151.237",
			"ops@broker setting.changed fx:EUR/USD 1.084",
			"ops@broker setting.changed fx:EUR/USD removed",
		}
		if diff := cmp.Diff(wantTrail, trail); diff != "" {
			t.Errorf("audit trail of rate changes (-want +got):\n%s", diff)
		}

		for name, args := range map[string][]string{
			"nothing":     {},
			"unknown":     {"delete", "EUR/USD"},
			"set arity":   {"set", "EUR/USD"},
			"bad pair":    {"set", "EURUSD", "1.08"},
			"bad rate":    {"set", "EUR/USD", "1,08"},
			"same":        {"set", "EUR/EUR", "1"},
			"list extras": {"list", "all"},
		} {
			if _, err := run(args...); !errs.Is(err, errs.Invalid) {
				t.Errorf("fx %s (%v) = %v, want EINVALID", name, args, err)
			}
		}
	}, Schema)
}

func TestDemoRatesCoverTheDefaultMethods(t *testing.T) {
	ctx := context.Background()
	conv := Converter{Source: DemoRates()}
	for _, m := range DefaultCatalog().Methods() {
		for _, r := range []*DirectionRules{m.Deposit, m.Withdrawal} {
			if r == nil {
				continue
			}
			for _, code := range r.Currencies() {
				for _, account := range []string{"USD", "EUR"} {
					if code == "USDT" || code == "BTC" {
						if account == "EUR" {
							continue
						}
					}
					if _, err := conv.Convert(ctx, money.New(100, money.MustCurrency(code)), money.MustCurrency(account)); err != nil {
						t.Errorf("method %s: %s into a %s account: %v", m.ID, code, account, err)
					}
				}
			}
		}
	}
}
