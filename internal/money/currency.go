package money

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/opencashier/cashier/internal/errs"
)

// MaxDigits is the largest minor-unit exponent a currency or asset may have.
const MaxDigits = 8

// Currency is an ISO 4217 currency or a registered asset such as BTC.
//
// Digits is the minor-unit exponent: an amount of 1 minor unit is 10^-Digits
// of the currency (USD 2, JPY 0, KWD 3, BTC 8). Obtain values from
// LookupCurrency, MustCurrency or CurrencyByNumeric rather than writing
// literals, so that Digits always matches the registry.
type Currency struct {
	Code   string
	Digits int
}

// String returns the currency code.
func (c Currency) String() string { return c.Code }

// MarshalText encodes the currency as its code, so a Currency field appears
// in JSON as "USD". It returns an errs.Invalid error for a Currency without
// a code.
func (c Currency) MarshalText() ([]byte, error) {
	if c.Code == "" {
		return nil, errs.E(errs.Invalid, "money.Currency.MarshalText", "currency is not set")
	}
	return []byte(c.Code), nil
}

// UnmarshalText decodes a currency code with LookupCurrency and returns its
// errs.Invalid error for unknown codes.
func (c *Currency) UnmarshalText(text []byte) error {
	cur, err := LookupCurrency(string(text))
	if err != nil {
		return errs.Wrap("money.Currency.UnmarshalText", err)
	}
	*c = cur
	return nil
}

// valid reports whether c can carry amounts: it has a code and a digit
// count this package can represent.
func (c Currency) valid() bool {
	return c.Code != "" && c.Digits >= 0 && c.Digits <= MaxDigits
}

// checkCurrency returns an errs.Invalid error if c cannot carry amounts.
func checkCurrency(op string, c Currency) error {
	if c.Code == "" {
		return errs.E(errs.Invalid, op, "currency is not set")
	}
	if !c.valid() {
		return errs.Ef(errs.Invalid, op, "currency %s has %d decimals; at most %d are supported", c.Code, c.Digits, MaxDigits)
	}
	return nil
}

type asset struct {
	digits     int
	numeric    int // 0 when none
	preDefault bool
}

var (
	isoByCode, isoByNumeric = indexISO()

	registryMu sync.RWMutex
	assets     = map[string]asset{
		"BTC":  {digits: 8, preDefault: true},
		"ETH":  {digits: 8, preDefault: true},
		"USDT": {digits: 6, preDefault: true},
	}
)

// indexISO indexes isoCurrencies. It runs as a variable initializer, not in
// init, so that package-level MustCurrency calls work in this package too.
func indexISO() (byCode map[string]isoCurrency, byNumeric map[int]isoCurrency) {
	byCode = make(map[string]isoCurrency, len(isoCurrencies))
	byNumeric = make(map[int]isoCurrency, len(isoCurrencies))
	for _, c := range isoCurrencies {
		byCode[c.code] = c
		if pref, shared := isoByNumericPref[c.numeric]; shared && pref != c.code {
			continue
		}
		byNumeric[c.numeric] = c
	}
	return byCode, byNumeric
}

// LookupCurrency returns the ISO 4217 currency or registered asset with the
// given code. Codes are case-sensitive and upper case ("USD", not "usd").
// It returns an errs.Invalid error for an unknown code and for ISO codes that
// have no minor unit (XAU, XDR, XXX and the like), which cannot hold money.
func LookupCurrency(code string) (Currency, error) {
	const op = "money.LookupCurrency"
	if c, ok := isoByCode[code]; ok {
		return Currency{Code: c.code, Digits: c.digits}, nil
	}
	registryMu.RLock()
	a, ok := assets[code]
	registryMu.RUnlock()
	if ok {
		return Currency{Code: code, Digits: a.digits}, nil
	}
	if _, ok := isoWithoutMinorUnit[code]; ok {
		return Currency{}, errs.Ef(errs.Invalid, op, "currency %s has no minor unit and cannot hold money", code)
	}
	if code == "" {
		return Currency{}, errs.E(errs.Invalid, op, "currency is empty")
	}
	if up := strings.ToUpper(code); up != code {
		if _, err := LookupCurrency(up); err == nil {
			return Currency{}, errs.Ef(errs.Invalid, op, "currency %s is unknown; codes are upper case, e.g. %s", quoteShort(code), up)
		}
	}
	return Currency{}, errs.Ef(errs.Invalid, op, "currency %s is unknown", quoteShort(code))
}

// MustCurrency is LookupCurrency for tests and package-level constants. It
// panics if the code is unknown.
func MustCurrency(code string) Currency {
	c, err := LookupCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// RegisterAsset makes a non-ISO asset (a crypto currency, a stable coin, a
// broker's own unit) known to LookupCurrency with the given number of
// decimals. BTC and ETH (8 decimals) and USDT (6) are registered by default;
// registering one of them with other digits replaces the default, which a
// broker does once at start-up, before any amount in it exists.
//
// Codes are 2 to 12 upper-case letters and digits starting with a letter.
// RegisterAsset returns an errs.Invalid error for a malformed code, digits
// outside 0..MaxDigits, or a code that ISO 4217 assigns; and an
// errs.Conflict error when the asset is already registered (other than as a
// default) with different digits. Registering the same asset twice with the
// same digits is a no-op.
func RegisterAsset(code string, digits int) error {
	return register("money.RegisterAsset", code, digits, 0)
}

// RegisterAssetNumeric is RegisterAsset with a numeric code, for APIs that
// identify currencies by number (the client API of seed 002 sends
// "currencyCode": 1000). The numeric code must be 1000 or more so that it
// never collides with ISO 4217's three-digit codes, and unique among assets.
// It returns the errors of RegisterAsset, an errs.Invalid error for a numeric
// code below 1000, and an errs.Conflict error if another asset has the
// number or this asset already has a different one.
func RegisterAssetNumeric(code string, digits, numeric int) error {
	const op = "money.RegisterAssetNumeric"
	if numeric < 1000 {
		return errs.Ef(errs.Invalid, op, "numeric code %d for asset %s must be 1000 or more to stay clear of ISO 4217", numeric, quoteShort(code))
	}
	return register(op, code, digits, numeric)
}

func register(op, code string, digits, numeric int) error {
	if !validAssetCode(code) {
		return errs.Ef(errs.Invalid, op, "asset code %s must be 2 to 12 upper-case letters or digits starting with a letter", quoteShort(code))
	}
	if digits < 0 || digits > MaxDigits {
		return errs.Ef(errs.Invalid, op, "asset %s: digits %d must be between 0 and %d", code, digits, MaxDigits)
	}
	if _, ok := isoByCode[code]; ok {
		return errs.Ef(errs.Invalid, op, "asset %s clashes with the ISO 4217 currency of that code", code)
	}
	if _, ok := isoWithoutMinorUnit[code]; ok {
		return errs.Ef(errs.Invalid, op, "asset %s clashes with an ISO 4217 code", code)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if numeric != 0 {
		for other, a := range assets {
			if other != code && a.numeric == numeric {
				return errs.Ef(errs.Conflict, op, "numeric code %d already belongs to asset %s", numeric, other)
			}
		}
	}
	old, exists := assets[code]
	if exists && !old.preDefault {
		if old.digits != digits {
			return errs.Ef(errs.Conflict, op, "asset %s is already registered with %d digits", code, old.digits)
		}
		if numeric != 0 && old.numeric != 0 && old.numeric != numeric {
			return errs.Ef(errs.Conflict, op, "asset %s already has numeric code %d", code, old.numeric)
		}
		if numeric == 0 {
			numeric = old.numeric
		}
	}
	assets[code] = asset{digits: digits, numeric: numeric}
	return nil
}

func validAssetCode(code string) bool {
	if len(code) < 2 || len(code) > 12 || code[0] < 'A' || code[0] > 'Z' {
		return false
	}
	for i := 1; i < len(code); i++ {
		ch := code[i]
		if (ch < 'A' || ch > 'Z') && (ch < '0' || ch > '9') {
			return false
		}
	}
	return true
}

// RegisteredAssets returns the registered non-ISO assets sorted by code.
func RegisteredAssets() []Currency {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]Currency, 0, len(assets))
	for code, a := range assets {
		out = append(out, Currency{Code: code, Digits: a.digits})
	}
	slices.SortFunc(out, func(a, b Currency) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// IsISO reports whether c is an ISO 4217 currency (as opposed to a
// registered asset).
func IsISO(c Currency) bool {
	iso, ok := isoByCode[c.Code]
	return ok && iso.digits == c.Digits
}

// NumericCode returns the numeric code of c: the ISO 4217 number (USD 840,
// EUR 978, JPY 392) or the number given to RegisterAssetNumeric. It reports
// false for assets without one and for unknown currencies.
func NumericCode(c Currency) (int, bool) {
	if iso, ok := isoByCode[c.Code]; ok {
		return iso.numeric, iso.digits == c.Digits
	}
	registryMu.RLock()
	a, ok := assets[c.Code]
	registryMu.RUnlock()
	if !ok || a.numeric == 0 || a.digits != c.Digits {
		return 0, false
	}
	return a.numeric, true
}

// CurrencyByNumeric returns the currency with the given ISO 4217 numeric
// code, or the asset registered with it by RegisterAssetNumeric. It returns
// an errs.Invalid error for an unknown number, including ISO numbers of codes
// without a minor unit (959 XAU).
func CurrencyByNumeric(n int) (Currency, error) {
	if iso, ok := isoByNumeric[n]; ok {
		return Currency{Code: iso.code, Digits: iso.digits}, nil
	}
	if n >= 1000 {
		registryMu.RLock()
		defer registryMu.RUnlock()
		for code, a := range assets {
			if a.numeric == n {
				return Currency{Code: code, Digits: a.digits}, nil
			}
		}
	}
	return Currency{}, errs.Ef(errs.Invalid, "money.CurrencyByNumeric", "numeric currency code %d is unknown", n)
}

// quoteShort quotes s for an error message, cutting it to a readable length
// so that hostile input is not echoed at full size.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
