package money

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/opencashier/cashier/internal/errs"
)

// decimal is a syntactically valid plain decimal: -?[0-9]+(\.[0-9]+)?.
type decimal struct {
	neg   bool
	whole string // at least one digit
	frac  string // digits after the point; empty if there is no point
}

// splitDecimal checks s against the plain-decimal grammar. On failure it
// returns a message that says what is wrong, naming the value as what
// ("amount", "rate").
func splitDecimal(s, what string) (decimal, string) {
	if s == "" {
		return decimal{}, what + " is empty"
	}
	q := what + " " + quoteShort(s)
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return decimal{}, q + " contains spaces"
	}
	if strings.ContainsAny(s, ",_'’") {
		return decimal{}, q + " contains a separator; write it with a dot for decimals and no thousands separators, e.g. 1234.50"
	}
	var d decimal
	i := 0
	switch s[0] {
	case '+':
		return decimal{}, q + " has a plus sign; write it without one"
	case '-':
		d.neg = true
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	d.whole = s[start:i]
	point := i < len(s) && s[i] == '.'
	if point {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		d.frac = s[start:i]
	}
	switch {
	case i < len(s) && (s[i] == 'e' || s[i] == 'E') && (d.whole != "" || d.frac != ""):
		return decimal{}, q + " has an exponent; write it as a plain decimal"
	case i < len(s):
		return decimal{}, q + " is not a decimal number"
	case d.whole == "" && d.frac != "":
		return decimal{}, q + " needs a digit before the decimal point"
	case d.whole == "":
		return decimal{}, q + " is not a decimal number"
	case point && d.frac == "":
		return decimal{}, q + " needs a digit after the decimal point"
	}
	return d, ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// shortNumber returns a syntactically valid decimal for an error message,
// cut if it is very long.
func shortNumber(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}

// minorUnits converts d to a count of 10^-digits units. It fails with a
// message if d has non-zero digits beyond digits decimals (nothing is ever
// rounded) or does not fit in [MinMinor, MaxMinor]. Zeros beyond digits
// decimals ("12.300" for USD) change no value and are accepted.
func minorUnits(d decimal, s string, cur Currency) (int64, string) {
	frac := d.frac
	if len(frac) > cur.Digits {
		if strings.Trim(frac[cur.Digits:], "0") != "" {
			return 0, "amount " + shortNumber(s) + " has more decimals than " + cur.Code + " allows (" + strconv.Itoa(cur.Digits) + ")"
		}
		frac = frac[:cur.Digits]
	}
	digits := strings.TrimLeft(d.whole, "0") + frac + strings.Repeat("0", cur.Digits-len(frac))
	digits = strings.TrimLeft(digits, "0")
	var v uint64
	for i := 0; i < len(digits); i++ {
		digit := uint64(digits[i] - '0')
		if v > (math.MaxInt64-digit)/10 {
			return 0, "amount " + shortNumber(s) + " is too large for " + cur.Code
		}
		v = v*10 + digit
	}
	if d.neg {
		return -int64(v), ""
	}
	return int64(v), ""
}

func parseAmount(op, s string, cur Currency) (Amount, error) {
	if err := checkCurrency(op, cur); err != nil {
		return Amount{}, err
	}
	d, problem := splitDecimal(s, "amount")
	if problem != "" {
		return Amount{}, errs.E(errs.Invalid, op, problem)
	}
	minor, problem := minorUnits(d, s, cur)
	if problem != "" {
		return Amount{}, errs.E(errs.Invalid, op, problem)
	}
	return Amount{minor: minor, cur: cur}, nil
}

// Parse reads an exact plain decimal such as "12.34", "-5" or "0.5" as an
// amount of cur. Leading zeros and zeros beyond the currency's decimals
// ("12.300" USD, "1000.00" JPY) are accepted because they change no value.
//
// It never rounds. It returns an errs.Invalid error, with a message fit for
// the caller, for: an empty string; spaces; a plus sign; thousands or other
// separators; exponents ("1e2"); NaN, Inf and anything else that is not
// -?digits[.digits]; a leading or trailing decimal point (".5", "5.");
// non-zero digits beyond the currency's decimals ("amount 1.234 has more
// decimals than USD allows (2)"); a value outside [MinMinor, MaxMinor] minor
// units; and a currency that is not set.
func Parse(s string, cur Currency) (Amount, error) {
	return parseAmount("money.Parse", s, cur)
}

// ParsePositive is Parse for amounts a person asks to move (a deposit or a
// withdrawal): the amount must be greater than zero and written without a
// sign. It returns the errors of Parse and an errs.Invalid error for a sign
// or an amount of zero.
func ParsePositive(s string, cur Currency) (Amount, error) {
	const op = "money.ParsePositive"
	if s != "" && s[0] == '-' {
		return Amount{}, errs.E(errs.Invalid, op, "amount "+quoteShort(s)+" must be a positive number without a sign")
	}
	a, err := parseAmount(op, s, cur)
	if err != nil {
		return Amount{}, err
	}
	if a.minor == 0 {
		return Amount{}, errs.E(errs.Invalid, op, "amount must be greater than zero")
	}
	return a, nil
}

// ParseNumber is Parse for a JSON number decoded with
// json.Decoder.UseNumber. The rules are those of Parse, so exponents such as
// 1e2, which JSON allows, are rejected rather than expanded, and so are more
// decimals than cur allows. It returns the errors of Parse.
func ParseNumber(n json.Number, cur Currency) (Amount, error) {
	return parseAmount("money.ParseNumber", string(n), cur)
}

// FromScaled returns units × 10^-scale as an amount of cur, exactly. It
// reads integers scaled by another system's exponent, e.g. a cTrader balance
// of 234512 with moneyDigits 2 is 2345.12. It returns an errs.Invalid error
// for a scale outside 0..18, for a value with non-zero digits beyond cur's
// decimals, for a result out of range, and for a currency that is not set.
func FromScaled(units int64, scale int, cur Currency) (Amount, error) {
	const op = "money.FromScaled"
	if err := checkCurrency(op, cur); err != nil {
		return Amount{}, err
	}
	if scale < 0 || scale > 18 {
		return Amount{}, errs.Ef(errs.Invalid, op, "scale %d must be between 0 and 18", scale)
	}
	v := units
	switch {
	case scale > cur.Digits:
		div := pow10(scale - cur.Digits)
		if v%div != 0 {
			return Amount{}, errs.Ef(errs.Invalid, op, "%s has more decimals than %s allows (%d)", formatMinor(units, scale), cur.Code, cur.Digits)
		}
		v /= div
	case scale < cur.Digits:
		mul := pow10(cur.Digits - scale)
		if v > MaxMinor/mul || v < MinMinor/mul {
			return Amount{}, errs.Ef(errs.Invalid, op, "%s is too large for %s", formatMinor(units, scale), cur.Code)
		}
		v *= mul
	}
	if !inRange(v) {
		return Amount{}, errs.Ef(errs.Invalid, op, "%d minor units of %s is out of range", v, cur.Code)
	}
	return Amount{minor: v, cur: cur}, nil
}

// pow10 returns 10^n for 0 <= n <= 18.
func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}
