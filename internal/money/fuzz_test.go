package money

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
)

// fuzzCurrencies covers every digit count an amount may have in practice.
var fuzzCurrencies = []Currency{jpy, usd, kwd, MustCurrency("CLF"), usdt, btc}

var plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// expectMinor is an independent oracle for Parse: the exact value of s in
// minor units of cur, and whether Parse must accept it.
func expectMinor(s string, cur Currency) (int64, bool) {
	if !plainDecimal.MatchString(s) {
		return 0, false
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false
	}
	v.Mul(v, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(cur.Digits)), nil)))
	if !v.IsInt() {
		return 0, false // more decimals than the currency has
	}
	n := v.Num()
	if !n.IsInt64() || n.Int64() == math.MinInt64 {
		return 0, false
	}
	return n.Int64(), true
}

func checkParsed(t *testing.T, name, s string, cur Currency, got Amount, err error) {
	t.Helper()
	want, ok := expectMinor(s, cur)
	if !ok {
		if err == nil {
			t.Fatalf("%s(%q, %s) = %v, want an error", name, s, cur, got)
		}
		if errs.CodeOf(err) != errs.Invalid || errs.MessageOf(err) == "" {
			t.Fatalf("%s(%q, %s) error %v is not a clear errs.Invalid", name, s, cur, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s(%q, %s): %v, want %d minor units", name, s, cur, err, want)
	}
	if got.Minor() != want || got.Currency() != cur {
		t.Fatalf("%s(%q, %s) = %d %s, want %d", name, s, cur, got.Minor(), got.Currency(), want)
	}
	back, err := Parse(got.Decimal(), cur)
	if err != nil || back != got {
		t.Fatalf("Parse(Decimal() = %q) = %v, %v; want %v", got.Decimal(), back, err, got)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{"12.34", "-5", "0.5", "", " 1", "+1", "1e2", "1,000", ".5", "5.", "NaN",
		"92233720368547758.07", "92233720368547758.08", "-92233720368547758.08", "12.300", "0.00000001"} {
		for i := range fuzzCurrencies {
			f.Add(seed, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		cur := fuzzCurrencies[int(which)%len(fuzzCurrencies)]
		got, err := Parse(s, cur)
		checkParsed(t, "Parse", s, cur, got, err)
		if err == nil && got.Sign() > 0 && s[0] != '-' {
			pos, err := ParsePositive(s, cur)
			if err != nil || pos != got {
				t.Fatalf("ParsePositive(%q) = %v, %v; Parse gave %v", s, pos, err, got)
			}
		}
	})
}

func FuzzParseNumber(f *testing.F) {
	for _, seed := range []string{"100", "100.5", "-0.05", "1e2", "1E-2", "0.30", "1.005", "-0", "0.00000001", "92233720368547758.07"} {
		for i := range fuzzCurrencies {
			f.Add(seed, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		cur := fuzzCurrencies[int(which)%len(fuzzCurrencies)]
		got, err := ParseNumber(json.Number(s), cur)
		checkParsed(t, "ParseNumber", s, cur, got, err)
		if err != nil {
			return
		}
		// What we send as a bare JSON number must be valid JSON and come
		// back exactly through a UseNumber decoder.
		doc, err := json.Marshal(map[string]json.Number{"n": got.JSONNumber()})
		if err != nil {
			t.Fatalf("marshal %q: %v", got.JSONNumber(), err)
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var m map[string]json.Number
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode %s: %v", doc, err)
		}
		back, err := ParseNumber(m["n"], cur)
		if err != nil || back != got {
			t.Fatalf("JSON round trip of %v via %s = %v, %v", got, doc, back, err)
		}
	})
}

var plainPositive = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func FuzzParseRate(f *testing.F) {
	for _, seed := range []string{"1.08345", "150", "0", "-1", "1e3", "0.000000000001", "0.0000000000001",
		"1.0000000000000", "999999999999999", "1000000000000000", "0001.50", "1,5", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		accept := false
		var want *big.Rat
		if plainPositive.MatchString(s) {
			want, _ = new(big.Rat).SetString(s)
			whole, frac, _ := strings.Cut(s, ".")
			accept = want.Sign() > 0 &&
				len(strings.TrimRight(frac, "0")) <= MaxRateDecimals &&
				len(strings.TrimLeft(whole, "0")) <= maxRateWholeDigits
		}
		if !accept {
			if err == nil {
				t.Fatalf("ParseRate(%q) = %v, want an error", s, r)
			}
			if errs.CodeOf(err) != errs.Invalid {
				t.Fatalf("ParseRate(%q) error %v is not errs.Invalid", s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseRate(%q): %v", s, err)
		}
		if r.Rat().Cmp(want) != 0 {
			t.Fatalf("ParseRate(%q) = %s, want %s", s, r.Rat(), want)
		}
		back, err := ParseRate(r.String())
		if err != nil || !back.Equal(r) {
			t.Fatalf("ParseRate(String() = %q) = %v, %v", r.String(), back, err)
		}
		// Conversion at any valid rate never panics and either fits or
		// says it does not.
		if _, err := Convert(New(math.MaxInt64, btc), jpy, r, RoundHalfEven); err != nil && errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("Convert at %s: %v", r, err)
		}
	})
}
