package money

import (
	"math/big"
	"strconv"

	"github.com/opencashier/cashier/internal/errs"
)

// RoundingMode says how an exact result that falls between two minor units
// becomes one of them. Every operation that rounds takes a mode, so the
// choice is visible at the call site.
type RoundingMode int

// The rounding modes. "Up" and "down" refer to the magnitude, so the modes
// treat negative amounts as the mirror image of positive ones.
const (
	// RoundHalfEven rounds to the nearest unit and ties to the even one
	// (banker's rounding): 0.125 → 0.12, 0.135 → 0.14.
	RoundHalfEven RoundingMode = iota
	// RoundHalfUp rounds to the nearest unit and ties away from zero:
	// 0.125 → 0.13, -0.125 → -0.13.
	RoundHalfUp
	// RoundDown truncates toward zero: 0.129 → 0.12, -0.129 → -0.12.
	RoundDown
	// RoundUp rounds away from zero: 0.121 → 0.13, -0.121 → -0.13.
	RoundUp
)

// String returns the mode's name, e.g. "RoundHalfEven".
func (m RoundingMode) String() string {
	switch m {
	case RoundHalfEven:
		return "RoundHalfEven"
	case RoundHalfUp:
		return "RoundHalfUp"
	case RoundDown:
		return "RoundDown"
	case RoundUp:
		return "RoundUp"
	}
	return "RoundingMode(" + strconv.Itoa(int(m)) + ")"
}

func (m RoundingMode) valid() bool { return m >= RoundHalfEven && m <= RoundUp }

func checkMode(op string, m RoundingMode) error {
	if !m.valid() {
		return errs.Ef(errs.Invalid, op, "unknown rounding mode %d", int(m))
	}
	return nil
}

// divRound returns num/den rounded to an integer with mode. den must be
// positive.
func divRound(num, den *big.Int, mode RoundingMode) *big.Int {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() == 0 {
		return q
	}
	away := false
	switch mode {
	case RoundUp:
		away = true
	case RoundDown:
		away = false
	case RoundHalfUp, RoundHalfEven:
		twice := new(big.Int).Abs(r)
		twice.Lsh(twice, 1)
		switch twice.Cmp(den) {
		case 1:
			away = true
		case 0:
			away = mode == RoundHalfUp || q.Bit(0) == 1
		}
	}
	if away {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// fitMinor converts v to minor units if it is in [MinMinor, MaxMinor].
func fitMinor(v *big.Int) (int64, bool) {
	if !v.IsInt64() || !inRange(v.Int64()) {
		return 0, false
	}
	return v.Int64(), true
}

// MulRatio returns a × num / den, computed exactly and rounded once with
// mode, in a's currency. It returns an errs.Invalid error if den is not
// positive, the mode is unknown, or the result is out of range.
func (a Amount) MulRatio(num, den int64, mode RoundingMode) (Amount, error) {
	const op = "money.Amount.MulRatio"
	if den <= 0 {
		return Amount{}, errs.Ef(errs.Invalid, op, "denominator %d must be positive", den)
	}
	if err := checkMode(op, mode); err != nil {
		return Amount{}, err
	}
	n := new(big.Int).Mul(big.NewInt(a.minor), big.NewInt(num))
	v, ok := fitMinor(divRound(n, big.NewInt(den), mode))
	if !ok {
		return Amount{}, errs.Ef(errs.Invalid, op, "%s × %d / %d is out of range", a, num, den)
	}
	return Amount{minor: v, cur: a.cur}, nil
}

// PercentBps returns a × bps / 10000 (bps are basis points: 150 is 1.5 %),
// rounded once with mode. It is meant for fees; which way a fee rounds is
// the caller's decision, e.g. RoundUp to round a positive fee in the
// broker's favour. It returns the errors of MulRatio.
func (a Amount) PercentBps(bps int64, mode RoundingMode) (Amount, error) {
	r, err := a.MulRatio(bps, 10000, mode)
	return r, errs.Wrap("money.Amount.PercentBps", err)
}
