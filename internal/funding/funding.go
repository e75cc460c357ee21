// Package funding holds the deposit and withdrawal state machines of
// OpenCashier: the heart of the product. It ties together the payment
// layer (internal/payments, which talks to providers), the double-entry
// ledger (internal/ledger) and the exactly-once balance push to the trading
// platform (internal/push).
//
// Every step of a deposit or a withdrawal is a status change recorded in
// funding_history together with its ledger booking and, where the platform
// must follow, the push that tells it, all in one database transaction.
// Ledger transfer ids and push ids are derived from the deposit or
// withdrawal id and the step ("dep_….:paid:credit", "wd_…:debit"), so a step
// that runs twice books nothing twice.
//
// Deposits:
//
//	created ──▶ awaiting_payment ──▶ paid ──▶ crediting ──▶ completed
//	   │              │  ╲                        ╲
//	   │              │   ╲──▶ declined | failed   ╲──▶ reversed (platform refused; flagged)
//	   └──────────────┴──────▶ expired ──(money arrives late)──▶ paid
//
// Withdrawals:
//
//	requested ──▶ [awaiting_2fa] ──▶ debiting ──▶ held ──▶ awaiting_approval ──▶ approved ──▶ payout_sent ──▶ completed
//	                   │                │           ╲──(auto-approval)────────▶ approved            │
//	                   └──▶ failed ◀────┘                   │                                        │
//	                                              rejected ──▶ returned ◀──── failed ◀───────────────┘
//
// The trader sees "processing" while a push is in doubt (the platform's
// answer is unknown; the push service resolves it by look-up or an operator
// does) and while a payment waits for an operator's review.
//
// docs/funding.md describes the chart of accounts and the bookings of every
// step.
package funding

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the funding part of the database (versions 00400–00499).
var Schema = sqlstore.Schema{Name: "funding", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// The push owners funding registers with the push service.
const (
	OwnerDeposit    = "deposit"
	OwnerWithdrawal = "withdrawal"
)

// AccountDirectory tells which trading accounts a user owns.
// *identity.Service implements it.
//
// AccountOf returns the account with the given login if the user owns it,
// errs.Forbidden if another user owns it and errs.NotFound if nobody does.
type AccountDirectory interface {
	AccountOf(ctx context.Context, userID string, login int64) (identity.Account, error)
}

// Deps are the services funding works with. All but Logger, Mailer,
// Observer and Notify are required; Mailer is required when Config.Require2FA
// is set.
type Deps struct {
	DB       *sqlstore.DB
	Clock    clock.Clock // default clock.System
	Ledger   *ledger.Ledger
	Push     *push.Service
	Payments *payments.Service
	Platform platform.Connector
	// Accounts checks that a trading account belongs to the customer and
	// gives its currency.
	Accounts AccountDirectory
	// Mailer sends withdrawal confirmation codes.
	Mailer mail.Mailer
	// Observer, when set, is bound to the new service: pass the same value
	// as payments.Options.Observer (the payments service is built first).
	Observer *PaymentObserver
	// Notify, if set, is called after a transaction that enqueued jobs
	// commits (pass the job runner's Notify).
	Notify func()
	// Hooks are told of every status change inside its transaction (the
	// audit trail, notifications, the compliance rules' activity).
	Hooks []Hook
	// Screener, if set, applies KYC gating, limits and fraud rules to new
	// deposits and withdrawals and to deposits whose money arrived.
	Screener Screener
	Logger   *slog.Logger // default slog.Default()
}

// Config holds the funding rules.
type Config struct {
	// AutoApproveWithdrawalsUpTo is, per currency code, the largest
	// withdrawal that is approved without an operator. A currency that is
	// not listed is never approved automatically.
	AutoApproveWithdrawalsUpTo map[string]money.Amount
	// AutoApproveMethods are the payment methods whose withdrawals may be
	// approved automatically; empty means every method.
	AutoApproveMethods []string
	// Require2FA asks for a code sent by e-mail before a withdrawal leaves
	// the trading account.
	Require2FA bool
	// DepositExpiry is how long a deposit waits for its payment before it
	// expires (default 2 hours). A bank transfer or crypto deposit waits at
	// least as long as the provider's instructions say.
	DepositExpiry time.Duration
	// CodeTTL is how long a withdrawal code is valid (default 10 minutes);
	// CodeAttempts is how many wrong codes cancel the withdrawal (default 5).
	CodeTTL      time.Duration
	CodeAttempts int
	// Platform names the trading platform in ledger account ids (default
	// "ctrader").
	Platform string
	// FourEyesAbove is, per currency code, the amount above which a
	// withdrawal needs two approvers, the second another person than the
	// first. A currency that is not listed needs one approver.
	FourEyesAbove map[string]money.Amount
}

// Defaults of Config.
const (
	DefaultDepositExpiry = 2 * time.Hour
	DefaultCodeTTL       = 10 * time.Minute
	DefaultCodeAttempts  = 5
	DefaultPlatform      = "ctrader"
)

// Service runs deposits and withdrawals. It is safe for concurrent use.
type Service struct {
	db       *sqlstore.DB
	clock    clock.Clock
	ledger   *ledger.Ledger
	push     *push.Service
	payments *payments.Service
	platform platform.Connector
	accounts AccountDirectory
	mailer   mail.Mailer
	notify   func()
	hooks    []Hook
	screener Screener
	log      *slog.Logger
	cfg      Config
}

// New returns a service and registers its push owners ("deposit" and
// "withdrawal") with d.Push. It returns an errs.Invalid error naming a
// missing dependency or a rule that does not hold (an auto-approval limit in
// another currency than its key, or negative).
func New(d Deps, c Config) (*Service, error) {
	const op = "funding.New"
	switch {
	case d.DB == nil, d.Ledger == nil, d.Push == nil, d.Payments == nil, d.Platform == nil, d.Accounts == nil:
		return nil, errs.E(errs.Invalid, op, "DB, Ledger, Push, Payments, Platform and Accounts are required")
	case c.Require2FA && d.Mailer == nil:
		return nil, errs.E(errs.Invalid, op, "withdrawal codes by e-mail need a Mailer")
	case c.DepositExpiry < 0 || c.CodeTTL < 0 || c.CodeAttempts < 0:
		return nil, errs.E(errs.Invalid, op, "durations and attempts must not be negative")
	}
	for code, a := range c.AutoApproveWithdrawalsUpTo {
		if a.Currency().Code != code || a.IsNegative() {
			return nil, errs.Ef(errs.Invalid, op, "the auto-approval limit for %s must be a non-negative amount in %s", code, code)
		}
	}
	for code, a := range c.FourEyesAbove {
		if a.Currency().Code != code || a.IsNegative() {
			return nil, errs.Ef(errs.Invalid, op, "the four-eyes threshold for %s must be a non-negative amount in %s", code, code)
		}
	}
	for _, id := range c.AutoApproveMethods {
		if _, err := d.Payments.Methods().Method(id); err != nil {
			return nil, errs.Ef(errs.Invalid, op, "auto-approval names payment method %q, which is not configured", id)
		}
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if c.DepositExpiry == 0 {
		c.DepositExpiry = DefaultDepositExpiry
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = DefaultCodeTTL
	}
	if c.CodeAttempts == 0 {
		c.CodeAttempts = DefaultCodeAttempts
	}
	if c.Platform == "" {
		c.Platform = DefaultPlatform
	}
	c.AutoApproveMethods = slices.Clone(c.AutoApproveMethods)
	s := &Service{
		db: d.DB, clock: d.Clock, ledger: d.Ledger, push: d.Push, payments: d.Payments, platform: d.Platform,
		accounts: d.Accounts, mailer: d.Mailer, notify: d.Notify, log: d.Logger.With("component", "funding"), cfg: c,
		hooks: slices.Clone(d.Hooks), screener: d.Screener,
	}
	d.Push.RegisterOwner(OwnerDeposit, push.OwnerFunc(s.depositPushSettled))
	d.Push.RegisterOwner(OwnerWithdrawal, push.OwnerFunc(s.withdrawalPushSettled))
	if d.Observer != nil {
		d.Observer.Bind(s)
	}
	return s, nil
}

// Config returns the service's rules with defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Customer is who asks: the user behind a cashier session, with what the
// payment rules need to know.
type Customer struct {
	UserID   string
	Country  string // ISO 3166-1 alpha-2
	KYCLevel int
	Lang     string
	Email    string
}

// AccountView is a trading account as the cashier screens show it.
type AccountView struct {
	Login    int64
	Currency money.Currency
	// Balance is the platform's balance; Withdrawable is what a withdrawal
	// may take now: the platform's withdrawable amount less the withdrawals
	// already requested and not yet taken from the platform.
	Balance, Withdrawable money.Amount
	// BalanceKnown is false when the platform could not be read (deposits
	// work anyway; the balances are then zero).
	BalanceKnown bool
	Kind         string // "trading" or "signal"
}

// afterCommit wakes the local job runner once tx commits.
func (s *Service) afterCommit(tx *sqlstore.Tx) {
	if s.notify != nil {
		tx.AfterCommit(s.notify)
	}
}

// account checks that the customer owns login and returns it with its
// currency. It returns errs.Invalid without a user, and the errors of
// AccountDirectory.AccountOf.
func (s *Service) account(ctx context.Context, userID string, login int64) (identity.Account, money.Currency, error) {
	const op = "funding.account"
	if userID == "" || login <= 0 {
		return identity.Account{}, money.Currency{}, errs.E(errs.Invalid, op, "a customer and a trading account are required")
	}
	a, err := s.accounts.AccountOf(ctx, userID, login)
	if err != nil {
		return identity.Account{}, money.Currency{}, errs.Wrap(op, err)
	}
	cur, err := money.LookupCurrency(a.Currency)
	if err != nil {
		return identity.Account{}, money.Currency{}, errs.Wrap(op, err)
	}
	return a, cur, nil
}

// ParseAutoApproveLimits reads auto-approval limits written as a setting:
// comma-separated CODE:AMOUNT pairs such as "USD:1000.00,EUR:900,JPY:150000"
// (empty gives none). It returns an errs.Invalid error naming the pair that
// is not a known currency with an exact, non-negative amount, or a currency
// given twice.
func ParseAutoApproveLimits(s string) (map[string]money.Amount, error) {
	const op = "funding.ParseAutoApproveLimits"
	out := map[string]money.Amount{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		code, amount, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			return nil, errs.Ef(errs.Invalid, op, "%q must look like USD:1000.00", pair)
		}
		cur, err := money.LookupCurrency(strings.TrimSpace(code))
		if err != nil {
			return nil, errs.Ef(errs.Invalid, op, "%q: %s", pair, errs.MessageOf(err))
		}
		a, err := money.Parse(strings.TrimSpace(amount), cur)
		if err != nil || a.IsNegative() {
			return nil, errs.Ef(errs.Invalid, op, "%q: the amount must be an exact, non-negative %s amount", pair, cur.Code)
		}
		if _, dup := out[cur.Code]; dup {
			return nil, errs.Ef(errs.Invalid, op, "%s is given twice", cur.Code)
		}
		out[cur.Code] = a
	}
	return out, nil
}
