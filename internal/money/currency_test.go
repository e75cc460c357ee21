package money

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

// wantCode fails t unless err carries code and its caller-safe message
// contains every fragment.
func wantCode(t *testing.T, err error, code errs.Code, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("error code = %s, want %s (error: %v)", got, code, err)
	}
	msg := errs.MessageOf(err)
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("message %q does not contain %q", msg, f)
		}
	}
}

func TestLookupCurrency(t *testing.T) {
	tests := []struct {
		code   string
		digits int
	}{
		{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CHF", 2}, {"IDR", 2},
		{"JPY", 0}, {"KRW", 0}, {"CLP", 0}, {"ISK", 0}, {"VND", 0}, {"XAF", 0}, {"PYG", 0}, {"UGX", 0},
		{"KWD", 3}, {"BHD", 3}, {"JOD", 3}, {"OMR", 3}, {"TND", 3}, {"LYD", 3}, {"IQD", 3},
		{"CLF", 4}, {"UYW", 4},
		{"ZWG", 2}, {"SLE", 2}, {"XCG", 2}, {"VES", 2},
		{"BTC", 8}, {"ETH", 8}, {"USDT", 6},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			got, err := LookupCurrency(tc.code)
			if err != nil {
				t.Fatalf("LookupCurrency(%q): %v", tc.code, err)
			}
			if diff := cmp.Diff(Currency{Code: tc.code, Digits: tc.digits}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookupCurrencyRejects(t *testing.T) {
	tests := []struct {
		name string
		code string
		msg  string
	}{
		{"empty", "", "currency is empty"},
		{"lower case", "usd", `currency "usd" is unknown; codes are upper case, e.g. USD`},
		{"lower-case asset", "btc", "e.g. BTC"},
		{"unknown", "ABC", `currency "ABC" is unknown`},
		{"two letters", "US", "unknown"},
		{"padded", " USD", "unknown"},
		{"withdrawn long ago", "DEM", "unknown"},
		{"withdrawn kuna", "HRK", "unknown"},
		{"gold has no minor unit", "XAU", "XAU has no minor unit"},
		{"no currency", "XXX", "no minor unit"},
		{"testing code", "XTS", "no minor unit"},
		{"SDR", "XDR", "no minor unit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LookupCurrency(tc.code)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}

func TestEveryISOCurrencyHasSaneData(t *testing.T) {
	if n := len(isoCurrencies); n < 150 {
		t.Fatalf("only %d ISO currencies", n)
	}
	seen := map[string]bool{}
	for _, c := range isoCurrencies {
		if len(c.code) != 3 || strings.ToUpper(c.code) != c.code {
			t.Errorf("bad code %q", c.code)
		}
		if seen[c.code] {
			t.Errorf("duplicate code %s", c.code)
		}
		seen[c.code] = true
		if c.numeric < 1 || c.numeric > 999 {
			t.Errorf("%s: numeric %d out of ISO range", c.code, c.numeric)
		}
		if c.digits < 0 || c.digits > 4 {
			t.Errorf("%s: %d digits", c.code, c.digits)
		}
		back, err := CurrencyByNumeric(c.numeric)
		if err != nil {
			t.Errorf("CurrencyByNumeric(%d) for %s: %v", c.numeric, c.code, err)
		} else if back.Code != c.code && isoByNumericPref[c.numeric] != back.Code {
			t.Errorf("CurrencyByNumeric(%d) = %s, want %s", c.numeric, back.Code, c.code)
		}
	}
	for code := range isoWithoutMinorUnit {
		if seen[code] {
			t.Errorf("%s is both with and without a minor unit", code)
		}
	}
}

func TestNumericCodes(t *testing.T) {
	tests := []struct {
		code    string
		numeric int
	}{
		{"USD", 840}, {"EUR", 978}, {"JPY", 392}, {"GBP", 826}, {"CHF", 756},
		{"KWD", 414}, {"BHD", 48}, {"ALL", 8}, {"XCG", 532},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			n, ok := NumericCode(MustCurrency(tc.code))
			if !ok || n != tc.numeric {
				t.Errorf("NumericCode(%s) = %d, %v; want %d, true", tc.code, n, ok, tc.numeric)
			}
			c, err := CurrencyByNumeric(tc.numeric)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(MustCurrency(tc.code), c); diff != "" {
				t.Errorf("CurrencyByNumeric(%d) (-want +got):\n%s", tc.numeric, diff)
			}
		})
	}

	t.Run("withdrawn guilder keeps its number", func(t *testing.T) {
		if n, ok := NumericCode(MustCurrency("ANG")); !ok || n != 532 {
			t.Errorf("NumericCode(ANG) = %d, %v", n, ok)
		}
	})
	t.Run("assets have none by default", func(t *testing.T) {
		if n, ok := NumericCode(MustCurrency("BTC")); ok {
			t.Errorf("NumericCode(BTC) = %d, true", n)
		}
	})
	t.Run("hand-made currency with wrong digits", func(t *testing.T) {
		if _, ok := NumericCode(Currency{Code: "USD", Digits: 3}); ok {
			t.Error("NumericCode accepted USD with 3 digits")
		}
	})
	for _, n := range []int{0, -840, 1, 959, 999, 1000, 4217} {
		_, err := CurrencyByNumeric(n)
		wantCode(t, err, errs.Invalid, "is unknown")
	}
}

func TestRegisterAsset(t *testing.T) {
	// Codes are unique to this test: the registry is process-wide.
	t.Run("new asset becomes known", func(t *testing.T) {
		if err := RegisterAsset("TSTSOL", 8); err != nil {
			t.Fatal(err)
		}
		got, err := LookupCurrency("TSTSOL")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Currency{Code: "TSTSOL", Digits: 8}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if !containsCurrency(RegisteredAssets(), got) {
			t.Errorf("RegisteredAssets() lacks %v", got)
		}
	})
	t.Run("same digits again is a no-op", func(t *testing.T) {
		if err := RegisterAsset("TSTSOL", 8); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("other digits conflict", func(t *testing.T) {
		wantCode(t, RegisterAsset("TSTSOL", 2), errs.Conflict, "already registered with 8 digits")
	})
	t.Run("zero digits allowed", func(t *testing.T) {
		if err := RegisterAsset("TSTPTS", 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a default can be replaced once", func(t *testing.T) {
		registryMu.Lock()
		assets["TSTDEF"] = asset{digits: 6, preDefault: true}
		registryMu.Unlock()
		if err := RegisterAsset("TSTDEF", 2); err != nil {
			t.Fatal(err)
		}
		if got := MustCurrency("TSTDEF").Digits; got != 2 {
			t.Errorf("digits = %d after override, want 2", got)
		}
		wantCode(t, RegisterAsset("TSTDEF", 6), errs.Conflict, "already registered with 2 digits")
	})

	rejects := []struct {
		name   string
		code   string
		digits int
		msg    string
	}{
		{"empty code", "", 2, "must be 2 to 12 upper-case letters"},
		{"lower case", "doge", 8, "upper-case"},
		{"one letter", "D", 8, "upper-case"},
		{"too long", "ABCDEFGHIJKLM", 8, "upper-case"},
		{"starts with digit", "1INCH", 8, "starting with a letter"},
		{"punctuation", "US-D", 2, "upper-case"},
		{"negative digits", "TSTNEG", -1, "between 0 and 8"},
		{"nine digits", "TSTNINE", 9, "between 0 and 8"},
		{"ISO clash", "USD", 2, "clashes with the ISO 4217 currency"},
		{"ISO clash with other digits", "JPY", 2, "clashes"},
		{"ISO code without minor unit", "XAU", 2, "clashes"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, RegisterAsset(tc.code, tc.digits), errs.Invalid, tc.msg)
		})
	}
	if c := MustCurrency("USD"); c.Digits != 2 {
		t.Errorf("USD changed to %d digits", c.Digits)
	}
}

func containsCurrency(cs []Currency, c Currency) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func TestRegisterAssetNumeric(t *testing.T) {
	if err := RegisterAssetNumeric("TSTB2C", 2, 1000); err != nil {
		t.Fatal(err)
	}
	c, err := CurrencyByNumeric(1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Currency{Code: "TSTB2C", Digits: 2}, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n, ok := NumericCode(c); !ok || n != 1000 {
		t.Errorf("NumericCode = %d, %v", n, ok)
	}
	// Re-registering without a number keeps the number.
	if err := RegisterAsset("TSTB2C", 2); err != nil {
		t.Fatal(err)
	}
	if n, ok := NumericCode(c); !ok || n != 1000 {
		t.Errorf("NumericCode after plain re-register = %d, %v", n, ok)
	}
	wantCode(t, RegisterAssetNumeric("TSTB2D", 2, 1000), errs.Conflict, "1000 already belongs to asset TSTB2C")
	wantCode(t, RegisterAssetNumeric("TSTB2C", 2, 1001), errs.Conflict, "already has numeric code 1000")
	wantCode(t, RegisterAssetNumeric("TSTB2E", 2, 840), errs.Invalid, "must be 1000 or more")
}

func TestCurrencyText(t *testing.T) {
	type cfg struct {
		Cur Currency `json:"cur"`
	}
	b, err := json.Marshal(cfg{MustCurrency("KWD")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"cur":"KWD"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	var back cfg
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(MustCurrency("KWD"), back.Cur); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	err = json.Unmarshal([]byte(`{"cur":"kwd"}`), &back)
	wantCode(t, err, errs.Invalid, "upper case")
	_, err = json.Marshal(cfg{})
	if err == nil {
		t.Error("marshalled a Currency without a code")
	}
}

func TestMustCurrencyPanicsOnUnknown(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCurrency(\"NOPE\") did not panic")
		}
	}()
	MustCurrency("NOPE")
}
