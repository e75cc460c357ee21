package money

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
)

// MaxMinor and MinMinor bound the minor units of an Amount. The range is
// symmetric (math.MinInt64 is excluded) so that Neg never overflows.
const (
	MaxMinor = math.MaxInt64
	MinMinor = -math.MaxInt64
)

// Amount is an exact amount of money: a signed count of minor units (cents
// for USD, yen for JPY, satoshi for BTC) in one currency. It is never a
// float. The zero Amount has no currency; build amounts with New, Zero or
// Parse. Amounts are comparable with == and have an Equal method.
type Amount struct {
	minor int64
	cur   Currency
}

// New returns minor units of cur, e.g. New(1230, USD) is 12.30 USD. It
// panics if minor is math.MinInt64, which is outside the range of an Amount;
// use FromMinor for numbers that come from outside the program.
func New(minor int64, cur Currency) Amount {
	if minor == math.MinInt64 {
		panic("money.New: math.MinInt64 minor units is out of range")
	}
	return Amount{minor: minor, cur: cur}
}

// FromMinor is New for numbers read from storage or another system. It
// returns an errs.Invalid error for math.MinInt64 and for a currency that is
// not set or has more than MaxDigits decimals.
func FromMinor(minor int64, cur Currency) (Amount, error) {
	const op = "money.FromMinor"
	if err := checkCurrency(op, cur); err != nil {
		return Amount{}, err
	}
	if minor == math.MinInt64 {
		return Amount{}, errs.Ef(errs.Invalid, op, "%d minor units of %s is out of range", minor, cur.Code)
	}
	return Amount{minor: minor, cur: cur}, nil
}

// Zero returns a zero amount of cur.
func Zero(cur Currency) Amount { return Amount{cur: cur} }

// Minor returns the amount in minor units.
func (a Amount) Minor() int64 { return a.minor }

// Currency returns the amount's currency.
func (a Amount) Currency() Currency { return a.cur }

// IsZero reports whether the amount is zero, in any currency. Note that
// encoding/json's omitzero option uses this method, so a field tagged
// omitzero leaves out 0.00 USD as well as an unset Amount.
func (a Amount) IsZero() bool { return a.minor == 0 }

// IsNegative reports whether the amount is below zero.
func (a Amount) IsNegative() bool { return a.minor < 0 }

// Sign returns -1, 0 or +1 for a negative, zero or positive amount.
func (a Amount) Sign() int {
	switch {
	case a.minor < 0:
		return -1
	case a.minor > 0:
		return 1
	}
	return 0
}

// Equal reports whether a and b are the same number of minor units of the
// same currency. go-cmp uses it to compare amounts.
func (a Amount) Equal(b Amount) bool { return a == b }

// Neg returns -a. It cannot overflow because MinMinor is -MaxMinor.
func (a Amount) Neg() Amount { return Amount{minor: -a.minor, cur: a.cur} }

// Abs returns the amount without its sign.
func (a Amount) Abs() Amount {
	if a.minor < 0 {
		return a.Neg()
	}
	return a
}

func sameCurrency(op string, a, b Amount) error {
	if a.cur != b.cur {
		return errs.Ef(errs.Invalid, op, "currency mismatch: %s and %s", curName(a.cur), curName(b.cur))
	}
	return nil
}

func curName(c Currency) string {
	if c.Code == "" {
		return "no currency"
	}
	return c.Code
}

// inRange reports whether v is a valid minor-unit count.
func inRange(v int64) bool { return v != math.MinInt64 }

// Add returns a + b. It returns an errs.Invalid error if the currencies
// differ or the sum overflows the range of an Amount.
func (a Amount) Add(b Amount) (Amount, error) {
	const op = "money.Amount.Add"
	if err := sameCurrency(op, a, b); err != nil {
		return Amount{}, err
	}
	s, ok := add64(a.minor, b.minor)
	if !ok {
		return Amount{}, errs.Ef(errs.Invalid, op, "%s + %s is out of range", a, b)
	}
	return Amount{minor: s, cur: a.cur}, nil
}

// Sub returns a - b. It returns an errs.Invalid error if the currencies
// differ or the difference overflows the range of an Amount.
func (a Amount) Sub(b Amount) (Amount, error) {
	const op = "money.Amount.Sub"
	if err := sameCurrency(op, a, b); err != nil {
		return Amount{}, err
	}
	s, ok := add64(a.minor, -b.minor)
	if !ok {
		return Amount{}, errs.Ef(errs.Invalid, op, "%s - %s is out of range", a, b)
	}
	return Amount{minor: s, cur: a.cur}, nil
}

// add64 adds two values of [MinMinor, MaxMinor] and reports whether the sum
// stays in that range.
func add64(x, y int64) (int64, bool) {
	s := x + y
	if (y > 0 && s < x) || (y < 0 && s > x) || !inRange(s) {
		return 0, false
	}
	return s, true
}

// Cmp compares a and b and returns -1, 0 or +1. It returns an errs.Invalid
// error if the currencies differ.
func (a Amount) Cmp(b Amount) (int, error) {
	if err := sameCurrency("money.Amount.Cmp", a, b); err != nil {
		return 0, err
	}
	switch {
	case a.minor < b.minor:
		return -1, nil
	case a.minor > b.minor:
		return 1, nil
	}
	return 0, nil
}

// Sum adds amounts of cur. The sum of no amounts is Zero(cur). It returns
// an errs.Invalid error if an amount is in another currency or the total is
// out of range (intermediate overflow does not matter, only the total).
func Sum(cur Currency, as ...Amount) (Amount, error) {
	const op = "money.Sum"
	if err := checkCurrency(op, cur); err != nil {
		return Amount{}, err
	}
	var (
		total int64
		wide  *big.Int
	)
	for _, x := range as {
		if x.cur != cur {
			return Amount{}, errs.Ef(errs.Invalid, op, "currency mismatch: %s in a sum of %s", curName(x.cur), cur.Code)
		}
		if wide != nil {
			wide.Add(wide, big.NewInt(x.minor))
			continue
		}
		s, ok := add64(total, x.minor)
		if ok {
			total = s
			continue
		}
		wide = big.NewInt(total)
		wide.Add(wide, big.NewInt(x.minor))
	}
	if wide != nil {
		if !wide.IsInt64() || !inRange(wide.Int64()) {
			return Amount{}, errs.Ef(errs.Invalid, op, "sum of %d %s amounts is out of range", len(as), cur.Code)
		}
		total = wide.Int64()
	}
	return Amount{minor: total, cur: cur}, nil
}

// Decimal returns the amount as a plain decimal string with exactly the
// currency's number of decimals and no currency: "12.30", "-0.05", "1000"
// for JPY, "0.00100000" for BTC. Parse reads it back to the same amount.
func (a Amount) Decimal() string {
	return formatMinor(a.minor, a.cur.Digits)
}

func formatMinor(minor int64, digits int) string {
	neg := minor < 0
	mag := uint64(minor)
	if neg {
		mag = -mag
	}
	s := strconv.FormatUint(mag, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// String returns the decimal and the currency code, e.g. "12.30 USD". It is
// for logs and errors; use Display for people and Decimal for APIs.
func (a Amount) String() string {
	if a.cur.Code == "" {
		return a.Decimal()
	}
	return a.Decimal() + " " + a.cur.Code
}

// JSONNumber returns Decimal as a json.Number, for APIs that want a bare
// JSON number (cTrader's preciseAmount). It is written exactly as Decimal,
// never through a float.
func (a Amount) JSONNumber() json.Number { return json.Number(a.Decimal()) }

type amountJSON struct {
	Amount   json.RawMessage `json:"amount"`
	Currency string          `json:"currency"`
}

// MarshalJSON encodes the amount as {"amount":"12.30","currency":"USD"},
// with the amount as an exact decimal string. It returns an errs.Invalid
// error for an amount without a currency.
func (a Amount) MarshalJSON() ([]byte, error) {
	if err := checkCurrency("money.Amount.MarshalJSON", a.cur); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"amount":"`)
	b.WriteString(a.Decimal())
	b.WriteString(`","currency":`)
	code, err := json.Marshal(a.cur.Code)
	if err != nil {
		return nil, errs.Wrap("money.Amount.MarshalJSON", err)
	}
	b.Write(code)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes {"amount":"12.30","currency":"USD"}. The amount may
// also be a bare JSON number (12.30); either way it is parsed exactly with
// the rules of Parse. Unknown fields, a missing amount or currency, and every
// Parse and LookupCurrency failure give an errs.Invalid error. JSON null
// leaves the amount unchanged.
func (a *Amount) UnmarshalJSON(data []byte) error {
	const op = "money.Amount.UnmarshalJSON"
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v amountJSON
	if err := dec.Decode(&v); err != nil {
		return &errs.Error{Code: errs.Invalid, Op: op, Message: `an amount must look like {"amount":"12.30","currency":"USD"}`, Err: err}
	}
	if v.Currency == "" {
		return errs.E(errs.Invalid, op, "amount has no currency")
	}
	cur, err := LookupCurrency(v.Currency)
	if err != nil {
		return errs.Wrap(op, err)
	}
	raw := bytes.TrimSpace(v.Amount)
	if len(raw) == 0 || string(raw) == "null" {
		return errs.E(errs.Invalid, op, "amount is missing")
	}
	var parsed Amount
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return &errs.Error{Code: errs.Invalid, Op: op, Message: "amount is not a valid JSON string", Err: err}
		}
		parsed, err = Parse(s, cur)
	} else {
		parsed, err = ParseNumber(json.Number(raw), cur)
	}
	if err != nil {
		return errs.Wrap(op, err)
	}
	*a = parsed
	return nil
}
