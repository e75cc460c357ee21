package payments

import (
	"errors"
	"fmt"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// FeeRounding is how the percentage part of a fee is rounded: up, away from
// zero, in the broker's favour. 2.5 % of 10.01 USD is 0.25025 USD and
// becomes 0.26 USD; of 10001 JPY, 250.025 JPY becomes 251 JPY.
const FeeRounding = money.RoundUp

// Quote is what a payment method does to an amount in its currency.
type Quote struct {
	MethodID  string
	Direction Direction
	// Gross is the amount the limits apply to: what the customer pays for
	// a deposit; for a withdrawal, what leaves the account, converted to the
	// payout currency.
	Gross money.Amount
	// Fee is FeeRule.Fixed + Gross × FeeRule.PercentBps, rounded up.
	Fee    money.Amount
	PaidBy Payer
	// Net is Gross − Fee when the client pays the fee, else Gross: what
	// reaches the account for a deposit, what is paid out for a withdrawal.
	Net money.Amount
	// Limit is the method's limit in the currency.
	Limit Limit
}

// LimitKind says which limit an amount broke.
type LimitKind string

// The limit kinds.
const (
	BelowMinimum LimitKind = "below_minimum"
	AboveMaximum LimitKind = "above_maximum"
	// FeeTooLarge: the fee would take the whole amount.
	FeeTooLarge LimitKind = "fee_exceeds_amount"
)

// LimitError is the cause inside the errs.Invalid error that Quote returns
// when an amount is outside a method's limits. Screens find it with
// errors.As to show the limit in their own words; its Error text is English.
type LimitError struct {
	Kind   LimitKind
	Method string       // the method's English name
	Amount money.Amount // what was asked
	Limit  money.Amount // the limit that was broken (the fee for FeeTooLarge)
	Lang   string       // the language the limit is formatted in
}

// Error says which limit was broken, with the limit in the currency's
// format, e.g. "the minimum for Bank card is ¥1,000".
func (e *LimitError) Error() string {
	switch e.Kind {
	case BelowMinimum:
		return fmt.Sprintf("the minimum for %s is %s", e.Method, e.Limit.Display(e.Lang))
	case AboveMaximum:
		return fmt.Sprintf("the maximum for %s is %s", e.Method, e.Limit.Display(e.Lang))
	default:
		return fmt.Sprintf("the fee of %s for %s is more than the amount", e.Limit.Display(e.Lang), e.Method)
	}
}

// AsLimitError returns the *LimitError inside err, if there is one.
func AsLimitError(err error) (*LimitError, bool) {
	var le *LimitError
	ok := errors.As(err, &le)
	return le, ok
}

// Quote prices amount with method id in direction d: the fee, the net
// amount and the limit check. lang formats the limit in error messages
// (an empty lang is English).
//
// It returns an errs.NotFound error for an unknown method; an errs.Invalid
// error when the method does not offer the direction or the amount's
// currency, or the amount is not positive; and an errs.Invalid error that
// wraps a *LimitError when the amount is below the minimum, above the
// maximum, or does not cover a fee the client pays.
func (c *Catalog) Quote(id string, d Direction, amount money.Amount, lang string) (Quote, error) {
	const op = "payments.Catalog.Quote"
	m, err := c.Method(id)
	if err != nil {
		return Quote{}, err
	}
	code := amount.Currency().Code
	if err := offers(m, d, code); err != nil {
		return Quote{}, errs.Wrap(op, err)
	}
	if amount.Sign() <= 0 {
		return Quote{}, errs.E(errs.Invalid, op, "amount must be greater than zero")
	}
	r := m.Rules(d)
	limit := r.Limits[code]
	name := m.Name("en")
	limitErr := func(kind LimitKind, l money.Amount) error {
		le := &LimitError{Kind: kind, Method: name, Amount: amount, Limit: l, Lang: lang}
		msg := le.Error()
		return &errs.Error{Code: errs.Invalid, Op: op, Message: upperFirst(msg), Err: le}
	}
	if amount.Minor() < limit.Min.Minor() {
		return Quote{}, limitErr(BelowMinimum, limit.Min)
	}
	if !limit.Max.IsZero() && amount.Minor() > limit.Max.Minor() {
		return Quote{}, limitErr(AboveMaximum, limit.Max)
	}
	fee, err := r.Fee.Apply(amount)
	if err != nil {
		return Quote{}, errs.Wrap(op, err)
	}
	q := Quote{MethodID: m.ID, Direction: d, Gross: amount, Fee: fee, PaidBy: r.Fee.PaidBy, Net: amount, Limit: limit}
	if r.Fee.PaidBy == PaidByClient {
		if fee.Minor() >= amount.Minor() {
			return Quote{}, limitErr(FeeTooLarge, fee)
		}
		if q.Net, err = amount.Sub(fee); err != nil {
			return Quote{}, errs.Wrap(op, err)
		}
	}
	return q, nil
}

// Apply returns the fee for gross: the fixed part in gross's currency plus
// gross × PercentBps / 10000 rounded with FeeRounding (up). It returns an
// errs.Invalid error on overflow.
func (f FeeRule) Apply(gross money.Amount) (money.Amount, error) {
	const op = "payments.FeeRule.Apply"
	pct, err := gross.PercentBps(f.PercentBps, FeeRounding)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	fixed, ok := f.Fixed[gross.Currency().Code]
	if !ok {
		return pct, nil
	}
	fee, err := pct.Add(fixed)
	return fee, errs.Wrap(op, err)
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
