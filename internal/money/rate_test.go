package money

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

func TestParseRate(t *testing.T) {
	accepts := []struct {
		name, in, str string
		rat           string // the exact value as num/den
	}{
		{"EURUSD", "1.08345", "1.08345", "108345/100000"},
		{"whole", "150", "150", "150/1"},
		{"trailing zeros dropped", "1.50000", "1.5", "3/2"},
		{"zeros beyond 12 decimals", "1.0000000000000", "1", "1/1"},
		{"twelve decimals", "0.000000000001", "0.000000000001", "1/1000000000000"},
		{"JPY to BTC", "0.000000066666", "0.000000066666", "33333/500000000000"},
		{"leading zeros", "0001.5", "1.5", "3/2"},
		{"fifteen integer digits", "999999999999999", "999999999999999", "999999999999999/1"},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			want, _ := new(big.Rat).SetString(tc.rat)
			if r.Rat().Cmp(want) != 0 {
				t.Errorf("value = %s, want %s", r.Rat(), want)
			}
			back, err := ParseRate(r.String())
			if err != nil || !back.Equal(r) {
				t.Errorf("ParseRate(String()) = %v, %v", back, err)
			}
		})
	}
	rejects := []struct {
		name, in, msg string
	}{
		{"empty", "", "rate is empty"},
		{"zero", "0", "rate must be greater than zero"},
		{"zero with decimals", "0.000", "greater than zero"},
		{"negative", "-1.08", `rate "-1.08" must be positive`},
		{"plus", "+1.08", "has a plus sign"},
		{"thirteen decimals", "1.0000000000001", "rate 1.0000000000001 has more than 12 decimals"},
		{"sixteen integer digits", "1000000000000000", "rate 1000000000000000 is too large"},
		{"exponent", "1.08e0", "has an exponent"},
		{"comma", "1,08", "contains a separator"},
		{"space", "1.08 ", "contains spaces"},
		{"leading point", ".5", "needs a digit before the decimal point"},
		{"trailing point", "5.", "needs a digit after the decimal point"},
		{"NaN", "NaN", "is not a decimal number"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRate(tc.in)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}

func TestRateText(t *testing.T) {
	type quote struct {
		Rate Rate `json:"rate"`
	}
	b, err := json.Marshal(quote{MustParseRate("1.08345")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rate":"1.08345"}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var back quote
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(MustParseRate("1.08345"), back.Rate); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantCode(t, json.Unmarshal([]byte(`{"rate":"-1"}`), &back), errs.Invalid, "must be positive")

	// A rate with a spread applied has more than 12 decimals; the record of
	// the rate used must still read back exactly.
	spread, err := MustParseRate("0.000000000001").WithSpread(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(quote{spread})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rate":"0.0000000000009999"}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Rate.Equal(spread) {
		t.Errorf("spread rate read back as %s, want %s", back.Rate, spread)
	}
	_, err = ParseRate(spread.String())
	wantCode(t, err, errs.Invalid, "has more than 12 decimals")
	wantCode(t, json.Unmarshal([]byte(`{"rate":"0.000000000000000000000000000000001"}`), &back), errs.Invalid, "has more than 32 decimals")
	if _, err := json.Marshal(quote{}); err == nil {
		t.Error("marshalled an unset rate")
	}
	if got := (Rate{}).String(); got != "0" {
		t.Errorf("unset String() = %q", got)
	}
}

func TestWithSpread(t *testing.T) {
	tests := []struct {
		name string
		rate string
		bps  int64
		want string
	}{
		{"25 bps", "1.08345", 25, "1.080741375"},
		{"no spread", "1.08345", 0, "1.08345"},
		{"one percent", "150", 100, "148.5"},
		{"largest", "1.08345", 9999, "0.000108345"},
		{"tiny rate keeps all digits", "0.000000000001", 1, "0.0000000000009999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MustParseRate(tc.rate).WithSpread(tc.bps)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("WithSpread(%d) = %s, want %s", tc.bps, got, tc.want)
			}
		})
	}
	for _, bps := range []int64{-1, 10000, 20000} {
		_, err := MustParseRate("1.1").WithSpread(bps)
		wantCode(t, err, errs.Invalid, "must be between 0 and 9999")
	}
	_, err := Rate{}.WithSpread(10)
	wantCode(t, err, errs.Invalid, "rate is not set")

	t.Run("customer receives less", func(t *testing.T) {
		r := MustParseRate("1.08345")
		spread, _ := r.WithSpread(25)
		plain, _ := Convert(New(10000, eur), usd, r, RoundHalfEven)
		less, err := Convert(New(10000, eur), usd, spread, RoundHalfEven)
		if err != nil {
			t.Fatal(err)
		}
		// 100.00 EUR × 1.080741375 = 108.0741375 USD → 108.07.
		if plain.Minor() != 10834 || less.Minor() != 10807 {
			t.Errorf("without spread %v, with spread %v; want 108.34 and 108.07", plain, less)
		}
	})
}

func TestInverse(t *testing.T) {
	tests := []struct {
		name string
		rate string
		mode RoundingMode
		want string
	}{
		// 1/1.08345 = 0.922977525497254…
		{"EURUSD half even", "1.08345", RoundHalfEven, "0.922977525497"},
		{"EURUSD down", "1.08345", RoundDown, "0.922977525497"},
		{"EURUSD up", "1.08345", RoundUp, "0.922977525498"},
		// 1/64321.5 = 0.0000155469011139…
		{"BTCUSD half up", "64321.5", RoundHalfUp, "0.000015546901"},
		{"BTCUSD up", "64321.5", RoundUp, "0.000015546902"},
		{"exact", "0.5", RoundHalfEven, "2"},
		// 1/0.000000000008 = 125000000000 exactly.
		{"exact large", "0.000000000008", RoundDown, "125000000000"},
		// 1/999999999999999 ≈ 1.000000000000001e-15 rounds up to one unit.
		{"tiny rounds up to a unit", "999999999999999", RoundUp, "0.000000000001"},
		// 1/1.6 = 0.625, written exactly.
		{"short exact", "1.6", RoundHalfEven, "0.625"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MustParseRate(tc.rate).Inverse(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("Inverse = %s, want %s", got, tc.want)
			}
		})
	}
	_, err := MustParseRate("999999999999999").Inverse(RoundHalfEven)
	wantCode(t, err, errs.Invalid, "is below 10^-12")
	_, err = Rate{}.Inverse(RoundHalfEven)
	wantCode(t, err, errs.Invalid, "rate is not set")
	_, err = MustParseRate("2").Inverse(RoundingMode(9))
	wantCode(t, err, errs.Invalid, "unknown rounding mode 9")
}

var allModes = []RoundingMode{RoundHalfEven, RoundHalfUp, RoundDown, RoundUp}

// perMode holds one expected minor-unit result for each rounding mode, in
// the order of allModes.
type perMode [4]int64

func TestConvert(t *testing.T) {
	tests := []struct {
		name string
		from Amount
		to   Currency
		rate string
		want perMode // HalfEven, HalfUp, Down, Up
	}{
		// 10000 cents × 1.08345 = 10834.5 cents: a tie, and 10834 is even.
		{"tie to even below", New(10000, eur), usd, "1.08345", perMode{10834, 10835, 10834, 10835}},
		// 10000 × 1.08355 = 10835.5: a tie, and 10836 is even.
		{"tie to even above", New(10000, eur), usd, "1.08355", perMode{10836, 10836, 10835, 10836}},
		// 10001 × 1.08345 = 10835.58345.
		{"above half", New(10001, eur), usd, "1.08345", perMode{10836, 10836, 10835, 10836}},
		// 10000 × 1.083449 = 10834.49.
		{"below half", New(10000, eur), usd, "1.083449", perMode{10834, 10834, 10834, 10835}},
		{"exact", New(10000, eur), usd, "1.0834", perMode{10834, 10834, 10834, 10834}},
		// Negative amounts mirror positive ones: -10834.5.
		{"negative tie", New(-10000, eur), usd, "1.08345", perMode{-10834, -10835, -10834, -10835}},
		// -10001 × 1.08345 = -10835.58345.
		{"negative above half", New(-10001, eur), usd, "1.08345", perMode{-10836, -10836, -10835, -10836}},
		// 12345 JPY × 0.0020451 = 25.2467595 KWD = 25246.7595 fils.
		{"JPY to KWD", New(12345, jpy), kwd, "0.0020451", perMode{25247, 25247, 25246, 25247}},
		// 3 JPY × 0.0005 = 0.0015 KWD = 1.5 fils: a tie, 2 is even.
		{"JPY to KWD tie", New(3, jpy), kwd, "0.0005", perMode{2, 2, 1, 2}},
		// 1 JPY × 0.0005 = 0.5 fils: a tie, 0 is even.
		{"JPY to KWD half a fils", New(1, jpy), kwd, "0.0005", perMode{0, 1, 0, 1}},
		// 1.234 KWD × 488.9 = 603.3026 JPY.
		{"KWD to JPY", New(1234, kwd), jpy, "488.9", perMode{603, 603, 603, 604}},
		// 123456 sat × 64321.5 USD/BTC = 7940.875104 cents.
		{"BTC to USD", New(123456, btc), usd, "64321.5", perMode{7941, 7941, 7940, 7941}},
		// 12345 cents × 0.000015547321 BTC/USD = 191931.677745 sat.
		{"USD to BTC", New(12345, usd), btc, "0.000015547321", perMode{191932, 191932, 191931, 191932}},
		// 1 sat × 64321.5 = 0.00643215 cents.
		{"one satoshi to USD", New(1, btc), usd, "64321.5", perMode{0, 0, 0, 1}},
		// 1 cent × 0.000001 BTC/USD = 0.00000001 BTC = 1 sat exactly.
		{"cent to BTC", New(1, usd), btc, "0.000001", perMode{1, 1, 1, 1}},
		{"zero", Zero(usd), jpy, "151.23", perMode{0, 0, 0, 0}},
		{"same currency", New(999, usd), usd, "1", perMode{999, 999, 999, 999}},
		// -92233720368.54775807 BTC × 1000000 = -92233720368547758.07 USD, the
		// smallest amount there is.
		{"min BTC to min USD", New(MinMinor, btc), usd, "1000000", perMode{MinMinor, MinMinor, MinMinor, MinMinor}},
		// The largest USD amount at 1 stays in range.
		{"max at one", New(math.MaxInt64, usd), MustCurrency("EUR"), "1", perMode{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}},
	}
	for _, tc := range tests {
		for i, mode := range allModes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				got, err := Convert(tc.from, tc.to, MustParseRate(tc.rate), mode)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(New(tc.want[i], tc.to), got); diff != "" {
					t.Errorf("Convert(%v → %s at %s) (-want +got):\n%s", tc.from, tc.to, tc.rate, diff)
				}
			})
		}
	}
}

func TestConvertInverse(t *testing.T) {
	tests := []struct {
		name string
		from Amount
		to   Currency
		rate string
		want perMode
	}{
		// 10000 cents / 64321.5 USD per BTC = 155469.0111… sat.
		{"USD to BTC with BTCUSD", New(10000, usd), btc, "64321.5", perMode{155469, 155469, 155469, 155470}},
		// 108.34 USD / 1.0834 = 100 EUR exactly.
		{"exact back", New(10834, usd), eur, "1.0834", perMode{10000, 10000, 10000, 10000}},
		// 1 cent / 2 = 0.5 cent: a tie.
		{"tie", New(1, usd), eur, "2", perMode{0, 1, 0, 1}},
		{"negative tie", New(-3, usd), eur, "2", perMode{-2, -2, -1, -2}},
	}
	for _, tc := range tests {
		for i, mode := range allModes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				got, err := ConvertInverse(tc.from, tc.to, MustParseRate(tc.rate), mode)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(New(tc.want[i], tc.to), got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestConvertRejects(t *testing.T) {
	tests := []struct {
		name string
		from Amount
		to   Currency
		rate Rate
		mode RoundingMode
		msg  string
	}{
		{"overflow", New(math.MaxInt64, jpy), usd, MustParseRate("2"), RoundHalfEven, "converting 9223372036854775807 JPY to USD at 2 is out of range"},
		{"overflow by digits", New(math.MaxInt64/10+1, usd), kwd, MustParseRate("1"), RoundHalfEven, "out of range"},
		{"negative overflow", New(MinMinor, btc), usd, MustParseRate("10000000"), RoundDown, "out of range"},
		{"unset rate", New(1, usd), eur, Rate{}, RoundHalfEven, "rate is not set"},
		{"amount without currency", Amount{}, eur, MustParseRate("1"), RoundHalfEven, "currency is not set"},
		{"target without currency", New(1, usd), Currency{}, MustParseRate("1"), RoundHalfEven, "currency is not set"},
		{"unknown mode", New(1, usd), eur, MustParseRate("1"), RoundingMode(-1), "unknown rounding mode -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(tc.from, tc.to, tc.rate, tc.mode)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}
