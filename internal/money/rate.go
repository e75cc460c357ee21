package money

import (
	"math/big"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
)

// MaxRateDecimals is the number of fractional digits ParseRate accepts.
const MaxRateDecimals = 12

// maxRateWholeDigits bounds the integer part of a parsed rate; no real
// exchange rate comes near 10^15.
const maxRateWholeDigits = 15

// Rate is an exact, positive exchange rate: how many units of the target
// currency one unit of the source currency buys (for EUR → USD at EURUSD
// 1.08345, the rate is 1.08345). It is a decimal held as an exact fraction,
// never a float. The zero Rate is unset and every operation rejects it.
// Rates are immutable and safe to share.
type Rate struct {
	r *big.Rat // nil when unset; never mutated after construction
}

// ParseRate reads a positive plain decimal with up to MaxRateDecimals
// fractional digits, e.g. "1.08345" or "150". It returns an errs.Invalid
// error for the inputs Parse rejects (empty, spaces, signs, exponents,
// separators, a leading or trailing point), for zero, for non-zero digits
// beyond 12 decimals, and for integer parts longer than 15 digits.
func ParseRate(s string) (Rate, error) {
	return parseRate("money.ParseRate", s, MaxRateDecimals)
}

// storedRateDecimals is how many decimals UnmarshalText accepts: enough for
// a quoted rate with a few spreads applied (each adds up to four).
const storedRateDecimals = 32

func parseRate(op, s string, maxDecimals int) (Rate, error) {
	if s != "" && s[0] == '-' {
		return Rate{}, errs.E(errs.Invalid, op, "rate "+quoteShort(s)+" must be positive")
	}
	d, problem := splitDecimal(s, "rate")
	if problem != "" {
		return Rate{}, errs.E(errs.Invalid, op, problem)
	}
	frac := strings.TrimRight(d.frac, "0")
	if len(frac) > maxDecimals {
		return Rate{}, errs.Ef(errs.Invalid, op, "rate %s has more than %d decimals", shortNumber(s), maxDecimals)
	}
	whole := strings.TrimLeft(d.whole, "0")
	if len(whole) > maxRateWholeDigits {
		return Rate{}, errs.Ef(errs.Invalid, op, "rate %s is too large", shortNumber(s))
	}
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return Rate{}, errs.E(errs.Invalid, op, "rate must be greater than zero")
	}
	num, _ := new(big.Int).SetString(digits, 10) // digits holds only ASCII digits
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	return Rate{r: new(big.Rat).SetFrac(num, den)}, nil
}

// MustParseRate is ParseRate for tests and constants. It panics on error.
func MustParseRate(s string) Rate {
	r, err := ParseRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

// IsSet reports whether r holds a rate (the zero Rate does not).
func (r Rate) IsSet() bool { return r.r != nil }

// Rat returns the rate as a new big.Rat, or nil for an unset rate.
func (r Rate) Rat() *big.Rat {
	if r.r == nil {
		return nil
	}
	return new(big.Rat).Set(r.r)
}

// Equal reports whether two rates have the same value. go-cmp uses it.
func (r Rate) Equal(o Rate) bool {
	if r.r == nil || o.r == nil {
		return r.r == nil && o.r == nil
	}
	return r.r.Cmp(o.r) == 0
}

// String returns the rate as an exact plain decimal without trailing zeros,
// e.g. "1.08345". ParseRate reads it back when it has at most 12 decimals,
// UnmarshalText when it has at most 32 (a rate from WithSpread may have four
// more than the rate it came from). An unset rate is "0".
func (r Rate) String() string {
	if r.r == nil {
		return "0"
	}
	// The denominator divides a power of ten because every rate is built
	// from decimals by multiplication and division by powers of ten.
	den := r.r.Denom()
	scale := 0
	pow := big.NewInt(1)
	rem := new(big.Int)
	for rem.Mod(pow, den).Sign() != 0 {
		pow.Mul(pow, big.NewInt(10))
		scale++
	}
	digits := new(big.Int).Mul(r.r.Num(), pow)
	digits.Quo(digits, den)
	s := digits.String()
	if scale == 0 {
		return s
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// MarshalText encodes the rate as String, so rates appear in JSON and
// configuration as "1.08345". It returns an errs.Invalid error for an unset
// rate.
func (r Rate) MarshalText() ([]byte, error) {
	if r.r == nil {
		return nil, errs.E(errs.Invalid, "money.Rate.MarshalText", "rate is not set")
	}
	return []byte(r.String()), nil
}

// UnmarshalText decodes a rate written by MarshalText. It follows ParseRate
// but accepts up to 32 decimals, so that a stored rate with spreads applied
// (WithSpread adds up to four decimals) reads back exactly. It returns the
// errs.Invalid errors of ParseRate.
func (r *Rate) UnmarshalText(text []byte) error {
	v, err := parseRate("money.Rate.UnmarshalText", string(text), storedRateDecimals)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// WithSpread returns r × (1 − bps/10000): the rate lowered by a spread of
// bps basis points (25 bps = 0.25 %). Applied to the rate at which a
// customer's money is converted, the customer receives fewer units of the
// target currency; the difference is the broker's margin. The result is
// exact (it may have up to four more decimals than r). It returns an
// errs.Invalid error for an unset rate or bps outside 0..9999.
func (r Rate) WithSpread(bps int64) (Rate, error) {
	const op = "money.Rate.WithSpread"
	if r.r == nil {
		return Rate{}, errs.E(errs.Invalid, op, "rate is not set")
	}
	if bps < 0 || bps >= 10000 {
		return Rate{}, errs.Ef(errs.Invalid, op, "spread of %d basis points must be between 0 and 9999", bps)
	}
	f := new(big.Rat).SetFrac64(10000-bps, 10000)
	return Rate{r: f.Mul(f, r.r)}, nil
}

// Inverse returns 1/r rounded once with mode to MaxRateDecimals decimals,
// e.g. the USD → EUR rate from an EUR → USD quote. For a conversion with a
// single rounding, prefer ConvertInverse. It returns an errs.Invalid error
// for an unset rate, an unknown mode, or an inverse that rounds to zero.
func (r Rate) Inverse(mode RoundingMode) (Rate, error) {
	const op = "money.Rate.Inverse"
	if r.r == nil {
		return Rate{}, errs.E(errs.Invalid, op, "rate is not set")
	}
	if err := checkMode(op, mode); err != nil {
		return Rate{}, err
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(MaxRateDecimals), nil)
	num := new(big.Int).Mul(r.r.Denom(), scale)
	q := divRound(num, r.r.Num(), mode)
	if q.Sign() == 0 {
		return Rate{}, errs.Ef(errs.Invalid, op, "the inverse of rate %s is below 10^-%d", r, MaxRateDecimals)
	}
	return Rate{r: new(big.Rat).SetFrac(q, scale)}, nil
}

// Convert returns a × r in currency to, computed exactly from a's minor
// units and the exact rate, and rounded once with mode to to's minor units.
// Use RoundHalfEven unless there is a reason for another mode (see the
// package documentation). It returns an errs.Invalid error if a has no
// currency, to is not a usable currency, r is unset, mode is unknown, or the
// result is out of range.
func Convert(a Amount, to Currency, r Rate, mode RoundingMode) (Amount, error) {
	const op = "money.Convert"
	return convert(op, a, to, r, mode, false)
}

// ConvertInverse returns a / r in currency to, rounded once with mode. It
// converts with a rate quoted the other way round (a USD amount into EUR
// with the EUR → USD rate) without the second rounding of r.Inverse. It
// returns the errors of Convert.
func ConvertInverse(a Amount, to Currency, r Rate, mode RoundingMode) (Amount, error) {
	const op = "money.ConvertInverse"
	return convert(op, a, to, r, mode, true)
}

func convert(op string, a Amount, to Currency, r Rate, mode RoundingMode, inverse bool) (Amount, error) {
	if err := checkCurrency(op, a.cur); err != nil {
		return Amount{}, err
	}
	if err := checkCurrency(op, to); err != nil {
		return Amount{}, err
	}
	if r.r == nil {
		return Amount{}, errs.E(errs.Invalid, op, "rate is not set")
	}
	if err := checkMode(op, mode); err != nil {
		return Amount{}, err
	}
	rn, rd := r.r.Num(), r.r.Denom()
	if inverse {
		rn, rd = rd, rn
	}
	// a.minor × 10^-from units × rate = (a.minor × rn × 10^to) / (rd × 10^from) minor units of to.
	num := new(big.Int).Mul(big.NewInt(a.minor), rn)
	num.Mul(num, big.NewInt(pow10(to.Digits)))
	den := new(big.Int).Mul(rd, big.NewInt(pow10(a.cur.Digits)))
	v, ok := fitMinor(divRound(num, den, mode))
	if !ok {
		return Amount{}, errs.Ef(errs.Invalid, op, "converting %s to %s at %s is out of range", a, to.Code, r)
	}
	return Amount{minor: v, cur: to}, nil
}
