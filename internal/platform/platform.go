// Package platform is the trading-platform interface the funding code uses:
// change a trading account's balance, read an account, and, where the
// platform allows it, look a change up by our own id.
//
// Adapters live in sub-packages: platform/ctrader (cTrader WebServices),
// platform/callback (seed 000's balance-update callback) and
// platform/ctradersim (a cTrader simulator for tests and the demo).
//
// # The error contract of ChangeBalance
//
// A balance change cannot be made idempotent on the platform (cTrader has no
// idempotency key), so every error from Connector.ChangeBalance falls into
// exactly one of two classes, and the caller must treat them differently:
//
//   - *RejectedError (IsRejected): a definite refusal that proves nothing was
//     applied. Either the platform answered with a business error code and a
//     4xx status (NOT_ENOUGH_MONEY, TRADER_NOT_FOUND, CHANGE_BALANCE_BAD_AMOUNT,
//     NOT_ENOUGH_RIGHTS, INVALID_REQUEST, REQUEST_FREQUENCY_EXCEEDED, ...), or
//     the connector refused before anything reached the platform (Status 0).
//     RejectedError.Retryable says whether sending the same change again later
//     may succeed (rate limit, credentials, not sent) or not (bad amount, not
//     enough money, unknown account).
//   - *AmbiguousError (IsAmbiguous): anything else: a timeout after the
//     request was sent, a reset connection, a 5xx, a 2xx body that cannot be
//     read, an UNKNOWN_ERROR. The change may or may not have been applied.
//     The caller must never resend it blindly; it marks the change in doubt
//     and resolves it with ChangeLookup where the connector offers it, or by
//     an operator who sees AmbiguousError.Evidence.
//
// A connector never returns any other kind of error from ChangeBalance.
package platform

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// ChangeType says which way a balance change moves money and which balance it
// touches. The values are cTrader's changebalance types.
type ChangeType string

// The four change types. The bonus types move the non-withdrawable bonus
// (credit), not the balance.
const (
	Deposit       ChangeType = "DEPOSIT"
	Withdraw      ChangeType = "WITHDRAW"
	DepositBonus  ChangeType = "DEPOSIT_NONWITHDRAWABLE_BONUS"
	WithdrawBonus ChangeType = "WITHDRAW_NONWITHDRAWABLE_BONUS"
)

// Valid reports whether t is one of the four change types.
func (t ChangeType) Valid() bool {
	switch t {
	case Deposit, Withdraw, DepositBonus, WithdrawBonus:
		return true
	}
	return false
}

// IsBonus reports whether t moves the non-withdrawable bonus rather than the
// balance.
func (t ChangeType) IsBonus() bool { return t == DepositBonus || t == WithdrawBonus }

// BalanceChange is one change of a trading account's balance.
type BalanceChange struct {
	Login        int64        // the trading account
	Type         ChangeType   // direction and which balance
	Amount       money.Amount // positive; in the account's currency
	ExternalID   string       // our id for the change; the key for ChangeLookup
	Comment      string       // internal note, not shown to the trader
	ExternalNote string       // note shown to the trader
	Source       string       // where the money came from or went, e.g. "card"
}

// Validate checks the change before it is sent. It returns an errs.Invalid
// error for a login that is not positive, an unknown type, an amount that is
// not positive or has no currency, or an empty ExternalID (every change we
// make carries our id so that it can be found again).
func (c BalanceChange) Validate() error {
	const op = "platform.BalanceChange.Validate"
	switch {
	case c.Login <= 0:
		return errs.Ef(errs.Invalid, op, "login %d is not a trading account number", c.Login)
	case !c.Type.Valid():
		return errs.Ef(errs.Invalid, op, "change type %q is not one of DEPOSIT, WITHDRAW, DEPOSIT_NONWITHDRAWABLE_BONUS, WITHDRAW_NONWITHDRAWABLE_BONUS", c.Type)
	case c.Amount.Currency().Code == "":
		return errs.E(errs.Invalid, op, "amount has no currency")
	case c.Amount.Sign() <= 0:
		return errs.Ef(errs.Invalid, op, "amount %s is not positive; the type gives the direction", c.Amount)
	case c.ExternalID == "":
		return errs.E(errs.Invalid, op, "external id is empty")
	}
	return nil
}

// Applied is the platform's receipt for an applied change.
type Applied struct {
	// BalanceHistoryID is the platform's id of the balance-history entry.
	// It is 0 for the bonus types, which cTrader keeps out of the balance
	// history, and for connectors whose platform returns no id.
	BalanceHistoryID int64
}

// Account is a trading account as the funding code needs it.
type Account struct {
	Login      int64
	Currency   money.Currency
	Balance    money.Amount
	Equity     money.Amount // balance + unrealised P&L (+ credit)
	FreeMargin money.Amount // equity - used margin
	// Withdrawable is what a WITHDRAW may take now: the cash equity (balance
	// plus unrealised P&L), capped at the balance and at the free margin, and
	// never below zero.
	Withdrawable money.Amount
}

// Connector changes balances on a trading platform and reads accounts.
//
// ChangeBalance applies one change. Its errors follow the package's contract:
// a *RejectedError proves nothing was applied; every other failure is an
// *AmbiguousError and must not be resent blindly.
//
// Account reads an account. It returns an error with code errs.NotFound when
// the platform does not know the login, and other errs codes (Unavailable,
// Forbidden, Internal) for other failures.
type Connector interface {
	ChangeBalance(ctx context.Context, c BalanceChange) (Applied, error)
	Account(ctx context.Context, login int64) (Account, error)
}

// ChangeLookup is an optional capability of a Connector: find a change that
// was made with our ExternalID. It reports (receipt, true, nil) when the
// platform holds the change and (zero, false, nil) when it definitely does
// not. A connector whose platform cannot search returns an error instead.
//
// "Not found" proves "not applied" only once the original request can no
// longer land: look up after the request's deadline has passed (the caller's
// timeout plus a margin), never while it may still be in flight.
type ChangeLookup interface {
	FindChange(ctx context.Context, login int64, externalID string) (Applied, bool, error)
}

// ErrLookupUnsupported is the error FindChange returns (possibly wrapped;
// test with errors.Is) when the platform turns out to offer no look-up by
// our id. The caller then leaves the change to an operator.
var ErrLookupUnsupported = errs.E(errs.Unavailable, "platform.FindChange", "the platform offers no look-up of changes by our id")

// CodeNotSent is the RejectedError code a connector uses when the change was
// refused before any byte of it reached the platform (no connection could be
// made, a credential could not be obtained, a pre-check failed to run).
// Nothing was applied and the change may be sent again.
const CodeNotSent = "NOT_SENT"

// RejectedError is a definite refusal: the platform (or the connector before
// sending) refused the change and nothing was applied.
type RejectedError struct {
	Code    string // the platform's error code, e.g. NOT_ENOUGH_MONEY, or CodeNotSent
	Message string // the platform's description, for operators
	Status  int    // the HTTP status; 0 when the connector refused before sending
	// Retryable reports that the same change may succeed if sent again later
	// without changes: a rate limit, a credential or rights problem an
	// operator can fix, or a change that was never sent. Bad amounts, unknown
	// accounts and NOT_ENOUGH_MONEY are not retryable.
	Retryable bool
}

// Error implements error.
func (e *RejectedError) Error() string {
	s := "platform rejected the change: " + e.Code
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap exposes the refusal as an *errs.Error, so errs.CodeOf maps it to a
// house code (NOT_ENOUGH_MONEY is errs.Insufficient, TRADER_NOT_FOUND is
// errs.NotFound, and so on).
func (e *RejectedError) Unwrap() error {
	return &errs.Error{Code: CodeForPlatform(e.Code, e.Status), Op: "platform", Message: e.Message}
}

// IsRejected reports whether err (or an error it wraps) is a *RejectedError.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}

// AsRejected returns the *RejectedError inside err, if there is one.
func AsRejected(err error) (*RejectedError, bool) {
	var r *RejectedError
	ok := errors.As(err, &r)
	return r, ok
}

// AmbiguousError says the change may or may not have been applied.
type AmbiguousError struct {
	Cause error // what went wrong: a timeout, a reset, a 5xx, a garbled body
	// Evidence describes what was seen, for the operator who resolves the
	// change: the request, the status, an excerpt of the body, the elapsed
	// time. It never contains credentials.
	Evidence string
}

// Error implements error.
func (e *AmbiguousError) Error() string {
	s := "platform outcome unknown"
	if e.Evidence != "" {
		s += ": " + e.Evidence
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns an errs.Unavailable error that wraps Cause, so errs.CodeOf
// reports errs.Unavailable and errors.Is still finds the cause (for example
// context.DeadlineExceeded).
func (e *AmbiguousError) Unwrap() error {
	return &errs.Error{Code: errs.Unavailable, Op: "platform", Message: "the platform's answer is unknown", Err: e.Cause}
}

// IsAmbiguous reports whether err (or an error it wraps) is an
// *AmbiguousError.
func IsAmbiguous(err error) bool {
	var a *AmbiguousError
	return errors.As(err, &a)
}

// AsAmbiguous returns the *AmbiguousError inside err, if there is one.
func AsAmbiguous(err error) (*AmbiguousError, bool) {
	var a *AmbiguousError
	ok := errors.As(err, &a)
	return a, ok
}

// CodeForPlatform maps a platform error code and HTTP status to a house error
// code. Known codes win (except the generic INVALID_REQUEST, which takes 404
// and 409 from its status); otherwise the status decides; anything else is
// errs.Internal.
func CodeForPlatform(code string, status int) errs.Code {
	switch code {
	case "NOT_ENOUGH_MONEY", "INSUFFICIENT_FUNDS":
		return errs.Insufficient
	case "TRADER_NOT_FOUND", "TRADER_GROUP_NOT_FOUND", "USER_NOT_FOUND", "TOKEN_NOT_FOUND":
		return errs.NotFound
	case "CHANGE_BALANCE_BAD_AMOUNT", "CURRENCY_MISMATCH", "WRONG_PASSWORD", "CH_BROKER_NOT_FOUND", "CH_PLANT_INVALID":
		return errs.Invalid
	case "INVALID_REQUEST": // generic: a conflict or a missing thing says more through its status
		switch status {
		case 404:
			return errs.NotFound
		case 409:
			return errs.Conflict
		}
		return errs.Invalid
	case "NOT_ENOUGH_RIGHTS":
		return errs.Forbidden
	case "REQUEST_FREQUENCY_EXCEEDED":
		return errs.RateLimited
	case CodeNotSent:
		return errs.Unavailable
	}
	switch {
	case status == 401:
		return errs.Unauthorized
	case status == 403:
		return errs.Forbidden
	case status == 404:
		return errs.NotFound
	case status == 409:
		return errs.Conflict
	case status == 429:
		return errs.RateLimited
	case status == 408 || status >= 500:
		return errs.Unavailable
	case status >= 400:
		return errs.Invalid
	}
	return errs.Internal
}
