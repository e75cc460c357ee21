package money

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

func TestPercentBps(t *testing.T) {
	tests := []struct {
		name string
		a    Amount
		bps  int64
		want perMode // HalfEven, HalfUp, Down, Up
	}{
		// 100 cents × 50 / 10000 = 0.5 cent: a tie, 0 is even.
		{"half a cent", New(100, usd), 50, perMode{0, 1, 0, 1}},
		// 300 cents × 0.5 % = 1.5 cents: a tie, 2 is even.
		{"one and a half cents", New(300, usd), 50, perMode{2, 2, 1, 2}},
		// 500 cents × 0.5 % = 2.5 cents: a tie, 2 is even.
		{"two and a half cents", New(500, usd), 50, perMode{2, 3, 2, 3}},
		{"negative tie", New(-300, usd), 50, perMode{-2, -2, -1, -2}},
		{"negative half a cent", New(-100, usd), 50, perMode{0, -1, 0, -1}},
		// 250.00 USD × 1.5 % = 3.75 USD exactly.
		{"exact", New(25000, usd), 150, perMode{375, 375, 375, 375}},
		// 0.01 USD × 1 bp = 0.0001 cent: only RoundUp charges it.
		{"tiny fee", New(1, usd), 1, perMode{0, 0, 0, 1}},
		// 1234 JPY × 2.5 % = 30.85 JPY.
		{"JPY", New(1234, jpy), 250, perMode{31, 31, 30, 31}},
		// 1.005 KWD × 0.3 % = 3.015 fils.
		{"KWD", New(1005, kwd), 30, perMode{3, 3, 3, 4}},
		{"zero bps", New(12345, usd), 0, perMode{0, 0, 0, 0}},
		{"whole amount", New(12345, usd), 10000, perMode{12345, 12345, 12345, 12345}},
		// A negative rate (a rebate) mirrors: 300 × -0.5 % = -1.5.
		{"negative bps", New(300, usd), -50, perMode{-2, -2, -1, -2}},
		// The intermediate product overflows int64 but the result does not.
		{"max amount", New(math.MaxInt64, jpy), 5000, perMode{4611686018427387904, 4611686018427387904, 4611686018427387903, 4611686018427387904}},
	}
	for _, tc := range tests {
		for i, mode := range allModes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				got, err := tc.a.PercentBps(tc.bps, mode)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(New(tc.want[i], tc.a.Currency()), got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
	_, err := New(math.MaxInt64, jpy).PercentBps(20000, RoundDown)
	wantCode(t, err, errs.Invalid, "out of range")
}

func TestMulRatio(t *testing.T) {
	tests := []struct {
		name     string
		a        Amount
		num, den int64
		want     perMode
	}{
		// 1000 cents / 3 = 333.33…
		{"a third", New(1000, usd), 1, 3, perMode{333, 333, 333, 334}},
		// 2000 / 3 = 666.66…
		{"two thirds", New(1000, usd), 2, 3, perMode{667, 667, 666, 667}},
		{"negative third", New(-1000, usd), 1, 3, perMode{-333, -333, -333, -334}},
		// 7 / 2 = 3.5: a tie, 4 is even.
		{"tie odd", New(7, jpy), 1, 2, perMode{4, 4, 3, 4}},
		// 5 / 2 = 2.5: a tie, 2 is even.
		{"tie even", New(5, jpy), 1, 2, perMode{2, 3, 2, 3}},
		{"negative numerator", New(5, jpy), -1, 2, perMode{-2, -3, -2, -3}},
		{"identity at the top", New(math.MaxInt64, btc), math.MaxInt64, math.MaxInt64, perMode{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}},
		{"identity at the bottom", New(MinMinor, btc), 3, 3, perMode{MinMinor, MinMinor, MinMinor, MinMinor}},
	}
	for _, tc := range tests {
		for i, mode := range allModes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				got, err := tc.a.MulRatio(tc.num, tc.den, mode)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(New(tc.want[i], tc.a.Currency()), got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}

	rejects := []struct {
		name     string
		a        Amount
		num, den int64
		mode     RoundingMode
		msg      string
	}{
		{"zero denominator", New(1, usd), 1, 0, RoundDown, "denominator 0 must be positive"},
		{"negative denominator", New(1, usd), 1, -3, RoundDown, "denominator -3 must be positive"},
		{"overflow", New(math.MaxInt64, usd), 2, 1, RoundDown, "is out of range"},
		{"rounds past max", New(math.MaxInt64, usd), math.MaxInt64, math.MaxInt64 - 1, RoundDown, "is out of range"},
		{"unknown mode", New(1, usd), 1, 2, RoundingMode(4), "unknown rounding mode 4"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.MulRatio(tc.num, tc.den, tc.mode)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}

func TestRoundingModeString(t *testing.T) {
	got := []string{RoundHalfEven.String(), RoundHalfUp.String(), RoundDown.String(), RoundUp.String(), RoundingMode(7).String()}
	want := []string{"RoundHalfEven", "RoundHalfUp", "RoundDown", "RoundUp", "RoundingMode(7)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
