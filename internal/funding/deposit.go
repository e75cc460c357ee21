package funding

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// DepositStatus is where a deposit is.
type DepositStatus string

// The deposit statuses. Processing is never stored: it is what the trader
// sees while the push to the platform is in doubt or the payment waits for
// an operator's review.
const (
	DepositCreated         DepositStatus = "created"          // recorded; the payment is not at the provider yet
	DepositAwaitingPayment DepositStatus = "awaiting_payment" // at the provider, waiting for the customer or the money
	DepositPaid            DepositStatus = "paid"             // the money arrived and is booked (passed through in one step to crediting)
	DepositCrediting       DepositStatus = "crediting"        // the DEPOSIT push to the platform is on its way
	DepositCompleted       DepositStatus = "completed"        // final: on the trading account
	DepositDeclined        DepositStatus = "declined"         // final: the provider declined (card declined, cancelled)
	DepositExpired         DepositStatus = "expired"          // the payment did not come in time (money that arrives later is still credited)
	DepositFailed          DepositStatus = "failed"           // final: an error at the provider or in the request
	DepositProcessing      DepositStatus = "processing"       // shown only: push in doubt or payment under review
	DepositReversed        DepositStatus = "reversed"         // final: the platform refused the credit; the money waits in suspense for an operator
	DepositRejected        DepositStatus = "rejected"         // final: an operator rejected a deposit held for review; the money waits in suspense for a refund
)

// Final reports whether the deposit can no longer change on its own.
// (An expired deposit whose money arrives after all is still credited.)
func (s DepositStatus) Final() bool {
	switch s {
	case DepositCompleted, DepositDeclined, DepositExpired, DepositFailed, DepositReversed, DepositRejected:
		return true
	}
	return false
}

// Flags that put a deposit or withdrawal on the operators' task list.
const (
	FlagPaymentReview   = "payment_review"   // the provider reported another amount; an operator must decide the payment
	FlagPlatformRefused = "platform_refused" // the platform refused a deposit; the money is in suspense
	FlagReturnRefused   = "return_refused"   // the platform refused to take back a withdrawal's money; it is in suspense
)

// Next is what a screen does after starting a deposit: send the browser to
// RedirectURL (a hosted page), show Instructions (bank details, a crypto
// address), or nothing (Kind "none": the outcome is known; "" while the
// payment has not reached the provider).
type Next struct {
	Kind         psp.NextKind
	RedirectURL  string
	Instructions *psp.Instructions
}

// Deposit is one deposit into a trading account.
type Deposit struct {
	ID       string // "dep_" + UUIDv7
	UserID   string
	Login    int64
	MethodID string
	Kind     psp.MethodKind
	Provider string
	// Status is what the trader sees (Processing while a push is in
	// doubt); State is the stored state.
	Status DepositStatus
	State  DepositStatus
	// Amount is what the customer pays, in the payment currency; Fee and
	// Net are in that currency too. Credit is what reaches the trading
	// account, in its currency.
	Amount    money.Amount
	Fee       money.Amount
	FeePaidBy payments.Payer
	Net       money.Amount
	Credit    money.Amount
	// FXRate is the rate applied to Net (IsSet false without conversion).
	FXRate    money.Rate
	PaymentID string
	PushID    string // the DEPOSIT push, once paid
	Next      Next
	// Failure is the PAYMENT_FAILED body for a declined, failed, expired or
	// reversed deposit.
	Failure *payments.ErrorBody
	// Flag is non-empty while an operator must look at the deposit.
	Flag string
	// HoldRule and HoldNote name the compliance rule that holds the deposit
	// for review and explain it (empty when not held); a held deposit
	// stays paid with FlagReviewHold until ReleaseDeposit or RejectDeposit.
	HoldRule, HoldNote string
	ExpiresAt          time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
	FinalAt            time.Time

	requestID, requestHash string
	lang, returnURL        string
	email, country         string
}

// DepositOptions is what the deposit screen offers for one account.
type DepositOptions struct {
	Account AccountView
	// Methods are those the customer may use (country, KYC level); each
	// lists its currencies in Rules(payments.Deposit).Currencies(). A
	// currency other than the account's is converted.
	Methods []payments.Method
}

// DepositOptions returns the account (balance read from the platform when it
// answers) and the deposit methods the customer may use. It returns the
// errors of AccountDirectory.AccountOf (errs.Forbidden for someone else's
// account).
func (s *Service) DepositOptions(ctx context.Context, u Customer, login int64) (DepositOptions, error) {
	const op = "funding.DepositOptions"
	acct, cur, err := s.account(ctx, u.UserID, login)
	if err != nil {
		return DepositOptions{}, errs.Wrap(op, err)
	}
	view := AccountView{Login: login, Currency: cur, Balance: money.Zero(cur), Withdrawable: money.Zero(cur), Kind: string(acct.Kind)}
	if pa, err := s.platform.Account(ctx, login); err == nil && pa.Currency == cur {
		reserved, err := s.reservedNow(ctx, login, cur)
		if err != nil {
			return DepositOptions{}, errs.Wrap(op, err)
		}
		view.Balance, view.Withdrawable, view.BalanceKnown = pa.Balance, money.New(max(pa.Withdrawable.Minor()-reserved.Minor(), 0), cur), true
	} else if err != nil {
		s.log.WarnContext(ctx, "platform account read failed; the deposit screen shows no balance", "login", login, "err", err)
	}
	methods := s.payments.Methods().Available(payments.Filter{Direction: payments.Deposit, Country: u.Country, KYCLevel: u.KYCLevel})
	return DepositOptions{Account: view, Methods: methods}, nil
}

// QuoteDeposit prices a deposit of amount (what the customer pays, in one of
// the method's currencies) into the account: the fee, the net amount and,
// when the currencies differ, the conversion into the account's currency.
// It returns the errors of AccountDirectory.AccountOf, of
// payments.Catalog.Eligible (errs.Forbidden for country or KYC level) and of
// payments.Service.PriceDeposit (an errs.Invalid error wrapping a
// *payments.LimitError for an amount outside the limits; errs.Unavailable
// when no exchange rate is known).
func (s *Service) QuoteDeposit(ctx context.Context, u Customer, login int64, methodID string, amount money.Amount) (payments.Price, error) {
	const op = "funding.QuoteDeposit"
	_, cur, err := s.account(ctx, u.UserID, login)
	if err != nil {
		return payments.Price{}, errs.Wrap(op, err)
	}
	if err := s.payments.Methods().Eligible(methodID, payments.Filter{Direction: payments.Deposit, Currency: amount.Currency().Code, Country: u.Country, KYCLevel: u.KYCLevel}); err != nil {
		return payments.Price{}, errs.Wrap(op, err)
	}
	price, err := s.payments.PriceDeposit(ctx, methodID, amount, cur, u.Lang)
	return price, errs.Wrap(op, err)
}

// DepositRequest asks for a deposit.
type DepositRequest struct {
	// ID is the idempotency key (the screen's form token): the same ID with
	// the same details returns the same deposit.
	ID       string
	Customer Customer
	Login    int64
	MethodID string
	// Amount is what the customer pays, in one of the method's currencies.
	Amount money.Amount
	// ReturnURL is where the provider's hosted page sends the browser back.
	ReturnURL string
	Lang      string
}

// StartDeposit records a deposit and starts its payment at the provider.
// The returned deposit's Next says what the screen does. Calling it again
// with the same ID returns the same deposit (and starts the payment if it is
// not started yet).
//
// It returns errs.Invalid for a malformed request; errs.Conflict when the
// ID was used with other details; the errors of QuoteDeposit; and, when the
// provider cannot be reached, errs.Unavailable with the deposit (still
// created: call again with the same ID).
func (s *Service) StartDeposit(ctx context.Context, req DepositRequest) (Deposit, error) {
	const op = "funding.StartDeposit"
	if err := checkRequestID(op, req.ID); err != nil {
		return Deposit{}, err
	}
	if req.Amount.Sign() <= 0 {
		return Deposit{}, errs.E(errs.Invalid, op, "the amount must be greater than zero")
	}
	hash := requestHash(strconv.FormatInt(req.Login, 10), req.MethodID, req.Amount.String())
	if d, err := loadDeposit(ctx, s.db, false, "user_id = ? AND request_id = ?", req.Customer.UserID, req.ID); err == nil {
		if d.requestHash != hash {
			return Deposit{}, errs.E(errs.Conflict, op, "this deposit request was already made with other details")
		}
		return s.advanceDeposit(ctx, d, req.Customer)
	} else if !errs.Is(err, errs.NotFound) {
		return Deposit{}, errs.Wrap(op, err)
	}
	price, err := s.QuoteDeposit(ctx, req.Customer, req.Login, req.MethodID, req.Amount)
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	m, err := s.payments.Methods().Method(req.MethodID)
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	if err := checkReturnURL(m.Kind, req.ReturnURL); err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	id, paymentID, err := newIDs("dep_")
	if err != nil {
		return Deposit{}, err
	}
	now := s.clock.Now()
	d := Deposit{
		ID: id, UserID: req.Customer.UserID, Login: req.Login, MethodID: m.ID, Kind: m.Kind, Provider: m.Provider,
		Status: DepositCreated, State: DepositCreated, Amount: price.Gross, Fee: price.Fee, FeePaidBy: price.PaidBy, Net: price.Net,
		Credit: price.Account, PaymentID: paymentID, ExpiresAt: now.Add(s.cfg.DepositExpiry), CreatedAt: now, UpdatedAt: now,
		requestID: req.ID, requestHash: hash, lang: req.Lang, returnURL: req.ReturnURL,
		email: req.Customer.Email, country: strings.ToUpper(req.Customer.Country),
	}
	if price.FX != nil {
		d.FXRate = price.FX.Rate
	}
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		v, err := s.screen(ctx, tx, Check{Kind: KindDeposit, Stage: StageRequest, ID: d.ID, Customer: req.Customer, Login: d.Login,
			MethodID: d.MethodID, MethodKind: string(d.Kind), Amount: d.Amount, AccountAmount: d.Credit})
		if err != nil {
			return err
		}
		d.HoldRule, d.HoldNote = "", ""
		if v.Hold {
			d.HoldRule, d.HoldNote = v.Rule, v.Explanation
		}
		res, err := tx.Exec(ctx, `INSERT INTO funding_deposits (id, request_id, request_hash, user_id, login, method_id, method_kind, provider,
			payment_id, status, currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, credit_minor, fx_rate,
			lang, return_url, expires_at, created_at, updated_at, email, country, hold_rule, hold_note)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, request_id) DO NOTHING`,
			d.ID, d.requestID, d.requestHash, d.UserID, d.Login, d.MethodID, string(d.Kind), d.Provider,
			d.PaymentID, string(d.State), d.Amount.Currency().Code, d.Amount.Minor(), d.Fee.Minor(), string(d.FeePaidBy), d.Net.Minor(),
			d.Credit.Currency().Code, d.Credit.Minor(), rateText(d.FXRate), d.lang, d.returnURL,
			sqlstore.Micros(d.ExpiresAt), sqlstore.Micros(now), sqlstore.Micros(now), d.email, d.country, d.HoldRule, d.HoldNote)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// The same request won a race with this one.
			d, err = loadDeposit(ctx, tx, false, "user_id = ? AND request_id = ?", req.Customer.UserID, req.ID)
			if err == nil && d.requestHash != hash {
				return errs.E(errs.Conflict, op, "this deposit request was already made with other details")
			}
			return err
		}
		created := StatusChange{To: string(DepositCreated), Detail: "deposit of " + d.Amount.String() + " by " + d.MethodID, At: now}
		if d.HoldRule != "" {
			created.Reason, created.Detail = "hold:"+d.HoldRule, created.Detail+"; held for review when paid: "+d.HoldNote
		}
		if err := addHistory(ctx, tx, d.ID, created); err != nil {
			return err
		}
		if err := s.emitDeposit(ctx, tx, d, created); err != nil {
			return err
		}
		_, err = jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: JobDepositExpiry, Payload: idPayload{ID: d.ID}, DedupKey: d.ID, RunAt: d.ExpiresAt, MaxAttempts: 1000})
		return err
	})
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	return s.advanceDeposit(ctx, d, req.Customer)
}

// checkReturnURL checks the URL a hosted page sends the browser back to:
// required for the kinds that redirect (card, e-wallet), and absolute
// http(s) when given.
func checkReturnURL(kind psp.MethodKind, raw string) error {
	if raw == "" && kind != psp.Card && kind != psp.EWallet {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errs.E(errs.Invalid, "funding.checkReturnURL", "the return URL must be an absolute http or https URL")
	}
	return nil
}

func rateText(r money.Rate) string {
	if !r.IsSet() {
		return ""
	}
	return r.String()
}

// advanceDeposit creates and starts the payment of a created deposit (both
// are idempotent by the payment id) and returns the deposit as it is then.
func (s *Service) advanceDeposit(ctx context.Context, d Deposit, c Customer) (Deposit, error) {
	const op = "funding.StartDeposit"
	if d.State != DepositCreated {
		return s.depositView(ctx, d)
	}
	p, err := s.payments.CreateDeposit(ctx, payments.DepositRequest{
		ID: d.PaymentID, MethodID: d.MethodID, Amount: d.Amount, AccountCurrency: d.Credit.Currency(),
		Customer:  payments.Customer{ID: d.UserID, AccountID: strconv.FormatInt(d.Login, 10), Email: c.Email, Country: c.Country, KYCLevel: c.KYCLevel},
		ReturnURL: d.returnURL, Lang: d.lang,
	})
	switch {
	case errs.Is(err, errs.Unavailable):
		return d, errs.Wrap(op, err)
	case err != nil:
		// The provider side refused the request for good: the deposit fails.
		body := payments.PaymentFailed(errs.MessageOf(err), true)
		body.Reason = "request_refused"
		if ferr := s.failCreatedDeposit(ctx, d.ID, &body); ferr != nil {
			return Deposit{}, errs.Wrap(op, ferr)
		}
		return Deposit{}, errs.Wrap(op, err)
	}
	if p.Gross != d.Amount || p.Fee != d.Fee || p.Net != d.Net || p.AccountAmount != d.Credit {
		// The price moved between the quote and the payment (a new rate):
		// the payment's figures are the ones that count.
		if err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE funding_deposits SET gross_minor = ?, fee_minor = ?, net_minor = ?, credit_minor = ?, fx_rate = ?
				WHERE id = ? AND status = ?`, p.Gross.Minor(), p.Fee.Minor(), p.Net.Minor(), p.AccountAmount.Minor(), fxRateOf(p), d.ID, string(DepositCreated))
			return err
		}); err != nil {
			return Deposit{}, errs.Wrap(op, err)
		}
	}
	if _, err := s.payments.Start(ctx, d.PaymentID); err != nil {
		d, lerr := s.GetDeposit(ctx, d.ID)
		if lerr != nil {
			return Deposit{}, errs.Wrap(op, lerr)
		}
		return d, errs.Wrap(op, err)
	}
	return s.GetDeposit(ctx, d.ID)
}

func fxRateOf(p payments.Payment) string {
	if p.FX == nil {
		return ""
	}
	return p.FX.Rate.String()
}

func (s *Service) failCreatedDeposit(ctx context.Context, id string, body *payments.ErrorBody) error {
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		d, err := loadDeposit(ctx, tx, true, "id = ?", id)
		if err != nil || d.State != DepositCreated {
			return err
		}
		d.Failure = body
		return s.moveDeposit(ctx, tx, &d, DepositFailed, StatusChange{Reason: body.Reason, Detail: body.Message})
	})
}

// Deposit returns the customer's deposit. It returns errs.NotFound for an
// unknown id or someone else's deposit.
func (s *Service) Deposit(ctx context.Context, customerUserID, depositID string) (Deposit, error) {
	d, err := loadDeposit(ctx, s.db, false, "id = ? AND user_id = ?", depositID, customerUserID)
	if err != nil {
		return Deposit{}, errs.Wrap("funding.Deposit", err)
	}
	return s.depositView(ctx, d)
}

// GetDeposit returns any deposit, for operators. It returns errs.NotFound
// for an unknown id.
func (s *Service) GetDeposit(ctx context.Context, depositID string) (Deposit, error) {
	d, err := loadDeposit(ctx, s.db, false, "id = ?", depositID)
	if err != nil {
		return Deposit{}, errs.Wrap("funding.GetDeposit", err)
	}
	return s.depositView(ctx, d)
}

// Deposits returns the customer's deposits, newest first, at most limit
// (default 50, at most 500).
func (s *Service) Deposits(ctx context.Context, customerUserID string, limit int) ([]Deposit, error) {
	ds, err := listDeposits(ctx, s.db, "user_id = ?", clampLimit(limit), customerUserID)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i], err = s.depositView(ctx, ds[i]); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// DepositHistory returns the status changes of the customer's deposit,
// oldest first. It returns errs.NotFound for someone else's deposit.
func (s *Service) DepositHistory(ctx context.Context, customerUserID, depositID string) ([]StatusChange, error) {
	if _, err := loadDeposit(ctx, s.db, false, "id = ? AND user_id = ?", depositID, customerUserID); err != nil {
		return nil, errs.Wrap("funding.DepositHistory", err)
	}
	return history(ctx, s.db, depositID)
}

// depositView fills in what the trader sees: Processing while the push is
// delayed (in doubt, or waiting to be sent again after a send that did not
// settle it) or the payment under review, and the payment's next step.
func (s *Service) depositView(ctx context.Context, d Deposit) (Deposit, error) {
	d.Status = d.State
	if d.State == DepositCrediting && d.PushID != "" {
		p, err := s.push.Get(ctx, d.PushID)
		if err != nil {
			return Deposit{}, errs.Wrap("funding.Deposit", err)
		}
		if p.Delayed() {
			d.Status = DepositProcessing
		}
	}
	if d.State == DepositPaid && d.Flag == FlagReviewHold {
		d.Status = DepositProcessing
	}
	if d.State == DepositCreated || d.State == DepositAwaitingPayment {
		if d.Flag == FlagPaymentReview {
			d.Status = DepositProcessing
		}
		p, err := s.payments.Get(ctx, d.PaymentID)
		switch {
		case errs.Is(err, errs.NotFound):
		case err != nil:
			return Deposit{}, errs.Wrap("funding.Deposit", err)
		default:
			d.Next = Next{Kind: p.Next, RedirectURL: p.RedirectURL, Instructions: p.Instructions}
		}
	}
	return d, nil
}

// moveDeposit records d's move to status to (its other fields as set by the
// caller) and the history entry, in tx.
func (s *Service) moveDeposit(ctx context.Context, tx *sqlstore.Tx, d *Deposit, to DepositStatus, c StatusChange) error {
	now := s.clock.Now()
	c.From, c.To, c.At = string(d.State), string(to), now
	d.State, d.Status, d.UpdatedAt = to, to, now
	if to.Final() && d.FinalAt.IsZero() {
		d.FinalAt = now
	}
	if to == DepositPaid || to == DepositCrediting {
		d.FinalAt = time.Time{} // money that arrived late re-opens an expired deposit
	}
	if err := s.saveDeposit(ctx, tx, *d); err != nil {
		return err
	}
	if err := addHistory(ctx, tx, d.ID, c); err != nil {
		return err
	}
	return s.emitDeposit(ctx, tx, *d, c)
}

func (s *Service) saveDeposit(ctx context.Context, tx *sqlstore.Tx, d Deposit) error {
	_, err := tx.Exec(ctx, `UPDATE funding_deposits SET status = ?, gross_minor = ?, fee_minor = ?, net_minor = ?, credit_minor = ?,
		push_id = ?, failure = ?, flag = ?, expires_at = ?, updated_at = ?, final_at = ?, hold_rule = ?, hold_note = ? WHERE id = ?`,
		string(d.State), d.Amount.Minor(), d.Fee.Minor(), d.Net.Minor(), d.Credit.Minor(), d.PushID, encodeFailure(d.Failure), d.Flag,
		sqlstore.Micros(d.ExpiresAt), sqlstore.Micros(d.UpdatedAt), sqlstore.NullMicros(d.FinalAt), d.HoldRule, d.HoldNote, d.ID)
	return errs.Wrap("funding.saveDeposit", err)
}

// depositPaymentChanged moves a deposit after its payment's status change,
// inside the transaction that records it.
func (s *Service) depositPaymentChanged(ctx context.Context, tx *sqlstore.Tx, d Deposit, p payments.Payment) error {
	open := d.State == DepositCreated || d.State == DepositAwaitingPayment
	switch p.Status {
	case payments.Pending, payments.Authorised:
		if d.State != DepositCreated {
			return nil
		}
		if p.Instructions != nil && p.Instructions.ExpiresAt.After(d.ExpiresAt) {
			d.ExpiresAt = p.Instructions.ExpiresAt // a bank transfer waits as long as the provider does
		}
		return s.moveDeposit(ctx, tx, &d, DepositAwaitingPayment, StatusChange{Detail: "payment started at " + p.Provider})
	case payments.Review:
		if !open {
			return nil
		}
		d.Flag = FlagPaymentReview
		return s.moveDeposit(ctx, tx, &d, d.State, StatusChange{Reason: FlagPaymentReview, Detail: p.Message})
	case payments.Succeeded:
		if !open && d.State != DepositExpired {
			return nil
		}
		return s.depositPaid(ctx, tx, d, p)
	case payments.Declined, payments.Failed, payments.Expired:
		if !open {
			return nil
		}
		body, _ := payments.FailureOf(p)
		d.Failure, d.Flag = &body, ""
		to := map[payments.Status]DepositStatus{payments.Declined: DepositDeclined, payments.Failed: DepositFailed, payments.Expired: DepositExpired}[p.Status]
		return s.moveDeposit(ctx, tx, &d, to, StatusChange{Reason: p.Reason, Detail: p.Message})
	}
	return nil
}

// depositPaid books a deposit whose money arrived and enqueues its push,
// in the transaction that records the payment's success:
//
//	Dr psp clearing / Cr customer         net        (same currency)
//	Dr psp clearing / Cr fx[P]; Dr fx[A] / Cr customer   (conversion)
//	Dr psp clearing / Cr fee income       fee        (client pays), or
//	Dr fee expense  / Cr psp clearing     fee        (broker pays)
//	hold: Dr customer / Cr platform       credit     (posted when the push is applied)
func (s *Service) depositPaid(ctx context.Context, tx *sqlstore.Tx, d Deposit, p payments.Payment) error {
	const op = "funding.depositPaid"
	gross, fee, net, credit, err := s.depositAmounts(p)
	if err != nil {
		return errs.Wrap(op, err)
	}
	pc, ac := gross.Currency(), credit.Currency()
	ch := chart{s.cfg.Platform}
	ids, err := s.ensure(ctx, tx, ch.customer(d.Login, ac), ch.platformAccount(d.Login, ac), pspClearing(p.Provider, pc))
	if err != nil {
		return err
	}
	customer, platformAcct, clearing := ids[0], ids[1], ids[2]
	meta := "deposit " + d.ID
	var ts []ledger.Transfer
	if pc == ac {
		ts = append(ts, ledger.Transfer{ID: d.ID + ":paid", Debit: clearing, Credit: customer, Amount: net, Code: "deposit.paid", Metadata: meta})
	} else {
		fx, err := s.ensure(ctx, tx, fxAccount(pc), fxAccount(ac))
		if err != nil {
			return err
		}
		ts = append(ts,
			ledger.Transfer{ID: d.ID + ":paid", Debit: clearing, Credit: fx[0], Amount: net, Code: "deposit.paid", Metadata: meta},
			ledger.Transfer{ID: d.ID + ":fx", Debit: fx[1], Credit: customer, Amount: credit, Code: "deposit.fx", Metadata: meta + " at " + fxRateOf(p)})
	}
	if fee.Sign() > 0 {
		if p.FeePaidBy == payments.PaidByBroker {
			fe, err := s.ensure(ctx, tx, feeExpense(pc))
			if err != nil {
				return err
			}
			ts = append(ts, ledger.Transfer{ID: d.ID + ":fee", Debit: fe[0], Credit: clearing, Amount: fee, Code: "deposit.fee.broker", Metadata: meta})
		} else {
			fi, err := s.ensure(ctx, tx, feeIncome(pc))
			if err != nil {
				return err
			}
			ts = append(ts, ledger.Transfer{ID: d.ID + ":fee", Debit: clearing, Credit: fi[0], Amount: fee, Code: "deposit.fee", Metadata: meta})
		}
	}
	hold := d.HoldRule != ""
	if d.MethodID != bankRailMethod {
		v, err := s.screen(ctx, tx, Check{Kind: KindDeposit, Stage: StagePaid, ID: d.ID,
			Customer: Customer{UserID: d.UserID, Country: d.country, Lang: d.lang, Email: d.email}, Login: d.Login,
			MethodID: d.MethodID, MethodKind: string(d.Kind), Amount: gross, AccountAmount: credit, CardCountry: p.Instrument.Country,
			Destination: destinationKey(psp.Destination{CardToken: p.Instrument.Token})})
		if err != nil {
			return err
		}
		if v.Hold && !hold {
			hold, d.HoldRule, d.HoldNote = true, v.Rule, v.Explanation
		}
	}
	if !hold {
		ts = append(ts, creditHold(d, customer, platformAcct, credit))
	}
	if _, err := s.ledger.PostTx(ctx, tx, ts...); err != nil {
		return errs.Wrap(op, err)
	}
	reason := ""
	if d.State == DepositExpired {
		reason = "late_payment"
	}
	d.Amount, d.Fee, d.Net, d.Credit, d.Failure, d.Flag = gross, fee, net, credit, nil, ""
	if hold {
		d.Flag = FlagReviewHold
		return s.moveDeposit(ctx, tx, &d, DepositPaid, StatusChange{Reason: "hold:" + d.HoldRule,
			Detail: "received " + gross.String() + "; held for review: " + d.HoldNote})
	}
	if err := s.moveDeposit(ctx, tx, &d, DepositPaid, StatusChange{Reason: reason, Detail: "received " + gross.String() + ", crediting " + credit.String()}); err != nil {
		return err
	}
	return s.startCredit(ctx, tx, &d, StatusChange{})
}

// creditHold is the pending transfer that moves a paid deposit's credit
// from the customer's account to the platform's (posted when the platform
// has it).
func creditHold(d Deposit, customer, platformAcct string, credit money.Amount) ledger.Transfer {
	return ledger.Transfer{ID: d.ID + ":credit:hold", Action: ledger.Hold, Debit: customer, Credit: platformAcct, Amount: credit,
		Code: "deposit.credit.hold", Metadata: "deposit " + d.ID}
}

// startCredit enqueues a paid deposit's DEPOSIT push and moves it to
// crediting, in tx (the credit hold is booked by then).
func (s *Service) startCredit(ctx context.Context, tx *sqlstore.Tx, d *Deposit, c StatusChange) error {
	pushID := d.ID + ":credit"
	if _, err := s.push.EnqueueTx(ctx, tx, push.Request{ID: pushID, Owner: OwnerDeposit, OwnerID: d.ID, Change: platform.BalanceChange{
		Login: d.Login, Type: platform.Deposit, Amount: d.Credit, Comment: "OpenCashier deposit " + d.ID,
		ExternalNote: "Deposit by " + kindWords(d.Kind), Source: string(d.Kind),
	}}); err != nil {
		return errs.Wrap("funding.startCredit", err)
	}
	s.afterCommit(tx)
	d.PushID = pushID
	if c.Detail == "" {
		c.Detail = "DEPOSIT push " + pushID + " enqueued"
	}
	return s.moveDeposit(ctx, tx, d, DepositCrediting, c)
}

// depositAmounts returns what a succeeded payment books. Normally these are
// the payment's own figures; when an operator accepted another amount than
// was asked for (a review), the fee is applied to what was received and the
// net converted at the payment's recorded rate.
func (s *Service) depositAmounts(p payments.Payment) (gross, fee, net, credit money.Amount, err error) {
	const op = "funding.depositAmounts"
	gross, fee, net, credit = p.Gross, p.Fee, p.Net, p.AccountAmount
	if p.Received.Currency().Code == "" || p.Received == p.Gross {
		return gross, fee, net, credit, nil
	}
	if p.Received.Currency() != p.Gross.Currency() || p.Received.Sign() <= 0 {
		return gross, fee, net, credit, errs.Ef(errs.Invalid, op, "payment %s received %s instead of %s: book it by hand", p.ID, p.Received, p.Gross)
	}
	m, err := s.payments.Methods().Method(p.MethodID)
	if err != nil || m.Deposit == nil {
		return gross, fee, net, credit, errs.Ef(errs.Invalid, op, "payment %s: method %s no longer offers deposits", p.ID, p.MethodID)
	}
	gross = p.Received
	if fee, err = m.Deposit.Fee.Apply(gross); err != nil {
		return gross, fee, net, credit, errs.Wrap(op, err)
	}
	net = gross
	if p.FeePaidBy == payments.PaidByClient {
		if net, err = gross.Sub(fee); err != nil || net.Sign() <= 0 {
			return gross, fee, net, credit, errs.Ef(errs.Invalid, op, "payment %s: the fee %s takes all of the %s received", p.ID, fee, gross)
		}
	}
	credit = net
	if p.FX != nil {
		if credit, err = money.Convert(net, p.AccountAmount.Currency(), p.FX.Rate, payments.ConvertRounding); err != nil {
			return gross, fee, net, credit, errs.Wrap(op, err)
		}
	}
	return gross, fee, net, credit, nil
}

// depositPushSettled completes or reverses a deposit when its DEPOSIT push
// settles (push.Owner), in the push's settling transaction:
//
//	applied:     post the hold Dr customer / Cr platform
//	not applied: void the hold; Dr customer / Cr suspense (flagged)
//
// A push settles as not applied only when the platform refused it for good
// (rejected) or when it was proved not applied and the push service had no
// send left (resolved_not_applied by look-up; the service sends a push
// proved not applied again, within its bounds, before that), or when an
// operator decided so.
func (s *Service) depositPushSettled(ctx context.Context, tx *sqlstore.Tx, p push.Push) error {
	const op = "funding.depositPushSettled"
	d, err := loadDeposit(ctx, tx, true, "id = ?", p.OwnerID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if d.State != DepositCrediting || p.ID != d.PushID {
		return nil
	}
	meta := "deposit " + d.ID
	if p.State.WasApplied() {
		if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: d.ID + ":credit:post", Action: ledger.PostPending,
			PendingID: d.ID + ":credit:hold", Code: "deposit.credit", Metadata: meta}); err != nil {
			return errs.Wrap(op, err)
		}
		return s.moveDeposit(ctx, tx, &d, DepositCompleted, StatusChange{Reason: string(p.State),
			Detail: "on the trading account, balanceHistoryId " + strconv.FormatInt(p.BalanceHistoryID, 10)})
	}
	ch := chart{s.cfg.Platform}
	ids, err := s.ensure(ctx, tx, suspense(d.Credit.Currency()))
	if err != nil {
		return err
	}
	if _, err := s.ledger.PostTx(ctx, tx,
		ledger.Transfer{ID: d.ID + ":credit:void", Action: ledger.VoidPending, PendingID: d.ID + ":credit:hold", Code: "deposit.credit.void", Metadata: meta},
		ledger.Transfer{ID: d.ID + ":reverse", Debit: ch.customer(d.Login, d.Credit.Currency()).ID, Credit: ids[0], Amount: d.Credit,
			Code: "deposit.reversed", Metadata: meta}); err != nil {
		return errs.Wrap(op, err)
	}
	message := "The trading platform did not accept the deposit. Your payment is safe; our team will contact you."
	if p.State == push.ResolvedNotApplied {
		message = "The trading platform could not be reached to credit the deposit. Your payment is safe; our team will contact you."
	}
	body := payments.PaymentFailed(message, false)
	body.Reason = FlagPlatformRefused
	d.Failure, d.Flag = &body, FlagPlatformRefused
	s.log.WarnContext(ctx, "platform refused a deposit; the money is in suspense for an operator", "deposit", d.ID, "push", p.ID, "state", p.State)
	return s.moveDeposit(ctx, tx, &d, DepositReversed, StatusChange{Reason: string(p.State), Detail: notAppliedDetail(p)})
}

// kindWords names a method kind for notes the trader sees.
func kindWords(k psp.MethodKind) string {
	switch k {
	case psp.Card:
		return "card"
	case psp.BankTransfer:
		return "bank transfer"
	case psp.EWallet:
		return "e-wallet"
	case psp.Crypto:
		return "crypto"
	}
	return string(k)
}

// expireDeposit is the deposit expiry job: a deposit still waiting for its
// payment when it expires becomes expired (after one last look at the
// provider, so that a payment that just went through is booked instead).
func (s *Service) expireDeposit(ctx context.Context, id string) error {
	const op = "funding.expireDeposit"
	d, err := loadDeposit(ctx, s.db, false, "id = ?", id)
	if errs.Is(err, errs.NotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if d.State != DepositCreated && d.State != DepositAwaitingPayment {
		return nil
	}
	if wait := d.ExpiresAt.Sub(s.clock.Now()); wait > 0 {
		return jobs.Retry(wait, errs.Ef(errs.Unavailable, op, "deposit %s expires at %s", id, d.ExpiresAt.Format(time.RFC3339)))
	}
	if _, err := s.payments.Poll(ctx, d.PaymentID); err != nil && !errs.Is(err, errs.NotFound) {
		s.log.WarnContext(ctx, "last status poll before expiry failed", "deposit", id, "err", err)
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		d, err := loadDeposit(ctx, tx, true, "id = ?", id)
		if err != nil {
			return err
		}
		if (d.State != DepositCreated && d.State != DepositAwaitingPayment) || s.clock.Now().Before(d.ExpiresAt) {
			return nil
		}
		body := payments.PaymentFailed("The payment was not completed in time. Please try again.", true)
		body.Reason = "expired"
		d.Failure = &body
		return s.moveDeposit(ctx, tx, &d, DepositExpired, StatusChange{Reason: "expired", Detail: "no payment by " + d.ExpiresAt.Format(time.RFC3339)})
	})
}
