package funding

import (
	"context"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The kinds of Event and Check.
const (
	KindDeposit    = "deposit"
	KindWithdrawal = "withdrawal"
)

// Event is one status change of a deposit or a withdrawal. Funding gives it
// to every Deps.Hooks function inside the transaction that makes the change,
// so what a hook writes (an audit record, a notification job, a webhook to
// the broker's CRM) commits with the change or not at all.
type Event struct {
	Kind     string // KindDeposit or KindWithdrawal
	ID       string // "dep_…" or "wd_…"
	UserID   string
	Email    string
	Lang     string
	Country  string
	Login    int64
	MethodID string
	// Amount is what the customer asked: a deposit's amount in the payment
	// currency, a withdrawal's amount in the account currency. Credit is
	// what reaches (deposit) or leaves (withdrawal) the trading account, in
	// its currency; zero while not yet known.
	Amount money.Amount
	Credit money.Amount
	// Destination is a withdrawal's masked destination ("IBAN GB33 … 5555").
	Destination string
	From, To    string // statuses; From is empty for a new one
	Reason      string
	Actor       string // "user:<id>", "system", or the operator who acted
	Flag        string // the deposit's or withdrawal's flag after this change, if any
	At          time.Time
}

// Hook is told of every status change inside its transaction. An error
// rolls the change back.
type Hook func(ctx context.Context, tx *sqlstore.Tx, e Event) error

// The stages at which funding asks its Screener.
const (
	// StageRequest: a deposit is started or a withdrawal requested;
	// nothing is booked yet. A refusal is the caller's error.
	StageRequest = "request"
	// StagePaid: a deposit's money has arrived at the provider and is
	// about to be credited. A hold keeps it from the trading account until
	// an operator releases it.
	StagePaid = "paid"
)

// Check is what the Screener is asked about.
type Check struct {
	Kind     string // KindDeposit or KindWithdrawal
	Stage    string // StageRequest or StagePaid
	ID       string
	Customer Customer
	Login    int64
	MethodID string
	// MethodKind is the payment method's kind ("card", "bank_transfer",
	// "ewallet", "crypto").
	MethodKind string
	// Amount is in the payment currency for a deposit and in the account
	// currency for a withdrawal; AccountAmount is the same money in the
	// account currency (equal to Amount without conversion; zero for a
	// deposit's request before it is priced).
	Amount        money.Amount
	AccountAmount money.Amount
	// Destination is a stable key of a withdrawal's destination ("iban:…",
	// "card:<token>", "wallet:…"), for "first withdrawal to a new
	// destination"; for a paid card deposit, the key of the card that paid
	// (a withdrawal back to it is to a known destination).
	Destination string
	// CardCountry is the issuing country of the card that paid a deposit
	// (StagePaid, card methods, when the provider reports it).
	CardCountry string
	At          time.Time
}

// Verdict is the Screener's answer when it does not refuse.
type Verdict struct {
	// Hold keeps the transaction for an operator's review: a withdrawal
	// waits for approval even when it would be approved automatically; a
	// paid deposit is not credited until released.
	Hold bool
	// Rule names the rule that held it ("velocity", "new_destination");
	// Explanation says why, for the operator's screen.
	Rule        string
	Explanation string
}

// Screener applies the compliance rules: KYC gating, limits and fraud
// rules. Screen runs inside the transaction that records the step. It
// returns errs.Forbidden when the customer's KYC level does not allow the
// transaction and errs.Insufficient when a limit would be exceeded (both
// with a message the customer can read), a Verdict with Hold to hold it for
// review, and other errors when it cannot decide (the step is then not
// taken).
type Screener interface {
	Screen(ctx context.Context, tx *sqlstore.Tx, c Check) (Verdict, error)
}

// Flags and statuses of the back office's review of a held deposit.
const (
	// FlagReviewHold: a compliance rule holds a paid deposit; it is not
	// credited until ReleaseDeposit or RejectDeposit.
	FlagReviewHold = "review_hold"
	// FlagRefundDue: an operator rejected a held deposit; its money is in
	// suspense until it is refunded at the provider (then ClearFlag).
	FlagRefundDue = "refund_due"
)

// actorOf names who made a change for Event.Actor: the operator the
// change names, the customer for a new request, or the system.
func actorOf(c StatusChange, userID string) string {
	switch {
	case c.Actor != "":
		return c.Actor
	case c.From == "":
		return "user:" + userID
	}
	return "system"
}

// emitDeposit tells the hooks of a deposit's status change, in tx.
func (s *Service) emitDeposit(ctx context.Context, tx *sqlstore.Tx, d Deposit, c StatusChange) error {
	if len(s.hooks) == 0 {
		return nil
	}
	e := Event{
		Kind: KindDeposit, ID: d.ID, UserID: d.UserID, Email: d.email, Lang: d.lang, Country: d.country, Login: d.Login,
		MethodID: d.MethodID, Amount: d.Amount, Credit: d.Credit, From: c.From, To: c.To, Reason: c.Reason,
		Actor: actorOf(c, d.UserID), Flag: d.Flag, At: c.At,
	}
	return s.runHooks(ctx, tx, e)
}

// emitWithdrawal tells the hooks of a withdrawal's status change, in tx.
func (s *Service) emitWithdrawal(ctx context.Context, tx *sqlstore.Tx, w Withdrawal, c StatusChange) error {
	if len(s.hooks) == 0 {
		return nil
	}
	e := Event{
		Kind: KindWithdrawal, ID: w.ID, UserID: w.UserID, Email: w.customer.Email, Lang: w.customer.Lang, Country: w.customer.Country,
		Login: w.Login, MethodID: w.MethodID, Amount: w.Amount, Credit: w.Amount, Destination: w.Destination,
		From: c.From, To: c.To, Reason: c.Reason, Actor: actorOf(c, w.UserID), Flag: w.Flag, At: c.At,
	}
	return s.runHooks(ctx, tx, e)
}

func (s *Service) runHooks(ctx context.Context, tx *sqlstore.Tx, e Event) error {
	for _, h := range s.hooks {
		if err := h(ctx, tx, e); err != nil {
			return errs.Wrap("funding.hook", err)
		}
	}
	return nil
}

// screen asks the Screener, if any, about c.
func (s *Service) screen(ctx context.Context, tx *sqlstore.Tx, c Check) (Verdict, error) {
	if s.screener == nil {
		return Verdict{}, nil
	}
	c.At = s.clock.Now()
	v, err := s.screener.Screen(ctx, tx, c)
	if err != nil {
		return Verdict{}, errs.Wrap("funding.screen", err)
	}
	return v, nil
}

// destinationKey is the stable key of a withdrawal destination the fraud
// rules compare: the IBAN, the card token or the wallet id.
func destinationKey(d psp.Destination) string {
	switch {
	case d.IBAN != "":
		return "iban:" + d.IBAN
	case d.CardToken != "":
		return "card:" + d.CardToken
	case d.WalletID != "":
		return "wallet:" + d.WalletID
	}
	return ""
}
