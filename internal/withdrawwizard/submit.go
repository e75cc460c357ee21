package withdrawwizard

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/twofactor"
)

// Submission is a withdrawal submitted for a wizard (seed 002's POST
// /api/v2/my/withdrawals), already decoded from JSON.
type Submission struct {
	UserID       string
	UUID         string
	AccountID    int64 // the trading account's login
	MethodNumber int   // the API's methodId (see Config.MethodNumbers)
	// Amount is the exact decimal as sent; more decimals than the currency
	// allows are refused.
	Amount       json.Number
	CurrencyCode int // ISO 4217 numeric; must be the account's currency
	IsPretend    bool
	Data         map[string]string
}

// Transaction is a withdrawal as the API shows it: a preview (ID empty,
// Status "preview") or the withdrawal funding recorded.
type Transaction struct {
	ID           string
	Status       string
	Login        int64
	MethodNumber int
	MethodID     string
	// Amount is taken from the account; Fee is the method's fee and Net
	// what is paid out, in the payout currency; FX is the conversion when
	// the payout currency differs from the account's.
	Amount      money.Amount
	Fee         money.Amount
	FeePaidBy   payments.Payer
	Net         money.Amount
	FX          *payments.Conversion
	Destination string
	CreatedAt   time.Time
}

// Result is what a submission led to: exactly one of Preview (isPretend),
// Challenge (a code is needed; confirm with Confirm) or Withdrawal (requested
// without a second factor).
type Result struct {
	Wizard     Wizard
	Preview    *Transaction
	Challenge  *twofactor.Challenge
	Withdrawal *Transaction
}

// FieldError is the cause inside errs.Invalid errors about one request
// field (accountId, methodId, amount, currencyCode, uuid, data.<key>).
type FieldError struct {
	Field   string
	Problem string
}

// Error says which field is wrong and how.
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(op, field, problem string) error {
	return fieldErrMsg(op, field, problem, field+": "+problem)
}

// fieldErrMsg is fieldErr with a message that names the field itself.
func fieldErrMsg(op, field, problem, message string) error {
	return &errs.Error{Code: errs.Invalid, Op: op, Message: message, Err: &FieldError{field, problem}}
}

// checked is a submission that passed every check.
type checked struct {
	customer Customer
	method   payments.Method
	amount   money.Amount
	price    payments.Price
}

// Submit checks a withdrawal for the user's wizard and previews it, starts
// its code challenge, or requests it. Submitting the same withdrawal again
// while it awaits its code sends a new code (after the resend cool-down).
//
// It returns errs.NotFound for an unknown wizard, another user's wizard, or
// an account the user does not own; errs.Expired for a wizard past its
// lifetime; errs.Conflict for a wizard already done or cancelled, or one
// awaiting its code for a different withdrawal; errs.RateLimited for a
// resend within the cool-down; errs.Invalid (with a
// *FieldError or funding's *funding.FieldError, or a *payments.LimitError)
// for a bad field (a method's limit is reported on the amount field);
// errs.Insufficient (see funding.AsInsufficient) when the
// amount is more than may be withdrawn; and the errors of funding.
func (s *Service) Submit(ctx context.Context, sub Submission) (Result, error) {
	const op = "withdrawwizard.Submit"
	w, err := s.Get(ctx, sub.UserID, sub.UUID)
	if err != nil {
		return Result{}, errs.Wrap(op, err)
	}
	if err := s.usable(op, w); err != nil {
		return Result{Wizard: w}, err
	}
	c, err := s.check(ctx, op, sub)
	if err != nil {
		return Result{Wizard: w}, err
	}
	if sub.IsPretend {
		t := previewOf(sub, c)
		return Result{Wizard: w, Preview: &t}, nil
	}
	_, hasFactor, err := s.d.TwoFactor.Enrolment(ctx, sub.UserID)
	if err != nil {
		return Result{Wizard: w}, errs.Wrap(op, err)
	}
	if !hasFactor && !s.cfg.Require2FA {
		if w.State != StateOpen {
			return Result{Wizard: w}, errs.E(errs.Conflict, op, "the wizard is awaiting its code")
		}
		wd, err := s.request(ctx, w.UUID, c.customer, sub.AccountID, c.method.ID, c.amount, sub.Data, false)
		if err != nil {
			return Result{Wizard: w}, errs.Wrap(op, err)
		}
		if err := s.setState(ctx, w.UUID, StateOpen, StateDone, wd.ID); err != nil {
			return Result{Wizard: w}, errs.Wrap(op, err)
		}
		w.State, w.WithdrawalID = StateDone, wd.ID
		t := s.transactionOf(wd)
		return Result{Wizard: w, Withdrawal: &t}, nil
	}

	// Store what the code will confirm, then start the challenge.
	details, err := json.Marshal(sub.Data)
	if err != nil {
		return Result{Wizard: w}, errs.Wrap(op, err)
	}
	if w.State == StateOpen {
		_, err = s.d.DB.Exec(ctx, `UPDATE withdrawwizard_wizards SET state = ?, login = ?, method_number = ?, method_id = ?,
			currency = ?, amount_minor = ?, details = ?, updated_at = ? WHERE uuid = ? AND state = ?`,
			StateAwaitingCode, sub.AccountID, sub.MethodNumber, c.method.ID, c.amount.Currency().Code, c.amount.Minor(),
			string(details), sqlstore.Micros(s.d.Clock.Now()), w.UUID, StateOpen)
		if err != nil {
			return Result{Wizard: w}, errs.Wrap(op, err)
		}
		if w, err = s.Get(ctx, sub.UserID, sub.UUID); err != nil {
			return Result{}, errs.Wrap(op, err)
		}
	}
	if w.State != StateAwaitingCode || w.Login != sub.AccountID || w.MethodID != c.method.ID ||
		!w.Amount.Equal(c.amount) || !maps.Equal(w.Details, nonNil(sub.Data)) {
		return Result{Wizard: w}, errs.E(errs.Conflict, op, "the wizard is awaiting the code for another withdrawal; start a new wizard to change it")
	}
	var ch twofactor.Challenge
	prev, err := s.d.TwoFactor.Challenge(ctx, sub.UserID, Purpose, w.UUID)
	switch {
	case err == nil && prev.Recipient.Method != twofactor.Google:
		// Submitting the same withdrawal again asks for the code again:
		// a new code once the cool-down is over, errs.RateLimited before.
		ch, err = s.d.TwoFactor.Resend(ctx, sub.UserID, Purpose, w.UUID, s.cfg.Template)
	case err == nil:
		ch = prev
	case errs.CodeOf(err) == errs.NotFound:
		req := twofactor.ChallengeRequest{UserID: sub.UserID, Purpose: Purpose, Ref: w.UUID, Template: s.cfg.Template}
		if !hasFactor {
			req.Fallback = &twofactor.Recipient{Method: twofactor.Email, Email: c.customer.Email, Name: c.customer.Name}
		}
		ch, err = s.d.TwoFactor.Start(ctx, req)
	}
	if err != nil {
		return Result{Wizard: w}, errs.Wrap(op, err)
	}
	ch.Template = s.cfg.Template
	if ch.Recipient.Name == "" {
		ch.Recipient.Name = c.customer.Name
	}
	return Result{Wizard: w, Challenge: &ch}, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// usable refuses wizards that can take no submission.
func (s *Service) usable(op string, w Wizard) error {
	switch w.State {
	case StateDone:
		return errs.E(errs.Conflict, op, "the wizard is done; start a new one")
	case StateCancelled:
		return errs.E(errs.Conflict, op, "the wizard was cancelled; start a new one")
	}
	if !s.d.Clock.Now().Before(w.ExpiresAt) {
		return errs.E(errs.Expired, op, "the wizard has expired; start a new one")
	}
	return nil
}

func (s *Service) check(ctx context.Context, op string, sub Submission) (checked, error) {
	var c checked
	if sub.AccountID <= 0 {
		return c, fieldErr(op, "accountId", "is required")
	}
	if sub.MethodNumber <= 0 {
		return c, fieldErr(op, "methodId", "is required")
	}
	methodID, ok := s.cfg.MethodNumbers[sub.MethodNumber]
	if !ok {
		return c, fieldErr(op, "methodId", "is not a withdrawal method")
	}
	if sub.CurrencyCode <= 0 {
		return c, fieldErr(op, "currencyCode", "is required")
	}
	cur, err := money.CurrencyByNumeric(sub.CurrencyCode)
	if err != nil {
		return c, fieldErr(op, "currencyCode", "is not an ISO 4217 numeric currency code")
	}
	if sub.Amount == "" {
		return c, fieldErr(op, "amount", "is required")
	}
	amount, err := money.ParseNumber(sub.Amount, cur)
	if err != nil {
		return c, fieldErrMsg(op, "amount", errs.MessageOf(err), errs.MessageOf(err))
	}
	if amount.Sign() <= 0 {
		return c, fieldErr(op, "amount", "must be more than zero")
	}
	if c.customer, err = s.d.Customers(ctx, sub.UserID); err != nil {
		return c, errs.Wrap(op, err)
	}
	opts, err := s.d.Funding.WithdrawalOptions(ctx, c.customer.Customer, sub.AccountID)
	if errs.CodeOf(err) == errs.Forbidden || errs.CodeOf(err) == errs.NotFound {
		// Someone else's account looks exactly like a missing one.
		return c, errs.E(errs.NotFound, op, "no such account")
	}
	if err != nil {
		return c, errs.Wrap(op, err)
	}
	if opts.Account.Currency != cur {
		return c, fieldErr(op, "currencyCode", "must be the account's currency ("+opts.Account.Currency.Code+")")
	}
	found := false
	for _, m := range opts.Methods {
		if m.ID == methodID {
			c.method, found = m, true
		}
	}
	if !found {
		return c, fieldErr(op, "methodId", "is not offered for this account")
	}
	if err := funding.CheckDetails(c.method.Kind, sub.Data); err != nil {
		var fe *funding.FieldError
		if errors.As(err, &fe) {
			return c, fieldErr(op, "data."+fe.Field, fe.Problem)
		}
		return c, errs.Wrap(op, err)
	}
	if c.price, err = s.d.Pricer.PriceWithdrawal(ctx, methodID, amount, cur, c.customer.Lang); err != nil {
		if _, ok := payments.AsLimitError(err); ok {
			return c, fieldErrMsg(op, "amount", errs.MessageOf(err), errs.MessageOf(err))
		}
		return c, errs.Wrap(op, err)
	}
	if opts.Account.BalanceKnown {
		if more, err := amount.Cmp(opts.Account.Withdrawable); err == nil && more > 0 {
			body, err := payments.InsufficientFunds(opts.Account.Withdrawable, amount)
			if err != nil {
				return c, errs.Wrap(op, err)
			}
			ie := &funding.InsufficientFundsError{Available: opts.Account.Withdrawable, Requested: amount, Body: body}
			return c, &errs.Error{Code: errs.Insufficient, Op: op, Message: body.Message, Err: ie}
		}
	}
	c.amount = amount
	return c, nil
}

func previewOf(sub Submission, c checked) Transaction {
	return Transaction{
		Status: "preview", Login: sub.AccountID, MethodNumber: sub.MethodNumber, MethodID: c.method.ID,
		Amount: c.amount, Fee: c.price.Fee, FeePaidBy: c.price.PaidBy, Net: c.price.Net, FX: c.price.FX,
	}
}

func (s *Service) transactionOf(wd funding.Withdrawal) Transaction {
	n, _ := s.MethodNumber(wd.MethodID)
	return Transaction{
		ID: wd.ID, Status: string(wd.Status), Login: wd.Login, MethodNumber: n, MethodID: wd.MethodID,
		Amount: wd.Amount, Fee: wd.Fee, FeePaidBy: wd.FeePaidBy, Net: wd.Net, Destination: wd.Destination, CreatedAt: wd.CreatedAt,
	}
}

// request asks funding for the wizard's withdrawal. confirmed says the
// wizard's own code confirmed it, so funding's Config.Require2FA sends no
// second code.
func (s *Service) request(ctx context.Context, id string, c Customer, login int64, methodID string, amount money.Amount, details map[string]string, confirmed bool) (funding.Withdrawal, error) {
	return s.d.Funding.RequestWithdrawal(ctx, funding.WithdrawalRequest{
		ID: "wiz_" + id, Customer: c.Customer, Login: login, MethodID: methodID, Amount: amount, Details: nonNil(details),
		Confirmed: confirmed,
	})
}

// Confirmation is the outcome of a right code: the wizard (done) and the
// withdrawal funding recorded.
type Confirmation struct {
	Wizard     Wizard
	Withdrawal Transaction
}

// Confirm checks the code for the user's wizard and, when it is right,
// requests the withdrawal that was submitted. Confirming a wizard that is
// already done answers as the first confirmation did, so a retry is safe.
//
// It returns errs.NotFound for an unknown wizard or another user's;
// errs.Conflict when no withdrawal awaits a code; errs.Invalid for a wrong
// code while attempts remain (the message says how many); errs.RateLimited
// when the attempts are used up and errs.Expired when the code or the wizard
// expired (the wizard is then cancelled); and the errors of
// funding.RequestWithdrawal.
func (s *Service) Confirm(ctx context.Context, userID, id, code string) (Confirmation, error) {
	const op = "withdrawwizard.Confirm"
	w, err := s.Get(ctx, userID, id)
	if err != nil {
		return Confirmation{}, errs.Wrap(op, err)
	}
	switch w.State {
	case StateDone:
		return s.confirmed(ctx, op, w)
	case StateOpen:
		return Confirmation{Wizard: w}, errs.E(errs.Conflict, op, "submit the withdrawal before confirming it")
	case StateCancelled:
		return Confirmation{Wizard: w}, errs.E(errs.Conflict, op, "the wizard was cancelled; start a new one")
	}
	if code == "" {
		return Confirmation{Wizard: w}, fieldErr(op, "data.code", "is required")
	}
	if !s.d.Clock.Now().Before(w.ExpiresAt) {
		_ = s.setState(ctx, w.UUID, StateAwaitingCode, StateCancelled, "")
		return Confirmation{Wizard: w}, errs.E(errs.Expired, op, "the wizard has expired; start a new one")
	}
	_, verr := s.d.TwoFactor.Verify(ctx, userID, Purpose, w.UUID, code)
	if errs.CodeOf(verr) == errs.Conflict {
		// Verified before (a confirmation whose withdrawal request failed):
		// request again, funding recognises the same id.
		if ch, err := s.d.TwoFactor.Challenge(ctx, userID, Purpose, w.UUID); err == nil && ch.State == twofactor.StateVerified {
			verr = nil
		}
	}
	switch errs.CodeOf(verr) {
	case "":
	case errs.Expired, errs.RateLimited:
		if err := s.setState(ctx, w.UUID, StateAwaitingCode, StateCancelled, ""); err != nil {
			return Confirmation{Wizard: w}, errs.Wrap(op, err)
		}
		w.State = StateCancelled
		return Confirmation{Wizard: w}, errs.Wrap(op, verr)
	default:
		return Confirmation{Wizard: w}, errs.Wrap(op, verr)
	}
	c, err := s.d.Customers(ctx, userID)
	if err != nil {
		return Confirmation{Wizard: w}, errs.Wrap(op, err)
	}
	wd, err := s.request(ctx, w.UUID, c, w.Login, w.MethodID, w.Amount, w.Details, true)
	if err != nil {
		return Confirmation{Wizard: w}, errs.Wrap(op, err)
	}
	if err := s.setState(ctx, w.UUID, StateAwaitingCode, StateDone, wd.ID); err != nil {
		return Confirmation{Wizard: w}, errs.Wrap(op, err)
	}
	w.State, w.WithdrawalID = StateDone, wd.ID
	return Confirmation{Wizard: w, Withdrawal: s.transactionOf(wd)}, nil
}

// confirmed answers a repeated confirmation of a done wizard with the
// withdrawal as funding has it now.
func (s *Service) confirmed(ctx context.Context, op string, w Wizard) (Confirmation, error) {
	wd, err := s.d.Funding.Withdrawal(ctx, w.UserID, w.WithdrawalID)
	if err != nil {
		return Confirmation{Wizard: w}, errs.Wrap(op, err)
	}
	return Confirmation{Wizard: w, Withdrawal: s.transactionOf(wd)}, nil
}
