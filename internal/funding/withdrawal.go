package funding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// WithdrawalStatus is where a withdrawal is.
type WithdrawalStatus string

// The withdrawal statuses. Processing is never stored: it is what the
// trader sees while a push (the debit or the return) is in doubt.
const (
	WithdrawalRequested        WithdrawalStatus = "requested"         // checked and recorded (passed through at once)
	WithdrawalAwaiting2FA      WithdrawalStatus = "awaiting_2fa"      // the amount is reserved; waiting for the e-mailed code
	WithdrawalDebiting         WithdrawalStatus = "debiting"          // the WITHDRAW push to the platform is on its way
	WithdrawalHeld             WithdrawalStatus = "held"              // taken from the platform, held by the cashier (passed through at once)
	WithdrawalAwaitingApproval WithdrawalStatus = "awaiting_approval" // waiting for an operator
	WithdrawalApproved         WithdrawalStatus = "approved"          // the payout is being sent
	WithdrawalPayoutSent       WithdrawalStatus = "payout_sent"       // at the provider
	WithdrawalCompleted        WithdrawalStatus = "completed"         // final: paid out
	WithdrawalRejected         WithdrawalStatus = "rejected"          // an operator refused it; the money goes back to the trading account
	WithdrawalFailed           WithdrawalStatus = "failed"            // it failed; money already taken goes back (ReturnPushID set)
	WithdrawalReturned         WithdrawalStatus = "returned"          // final: the money is back on the trading account
	WithdrawalProcessing       WithdrawalStatus = "processing"        // shown only: a push is in doubt
)

// Withdrawal is one withdrawal from a trading account.
type Withdrawal struct {
	ID       string // "wd_" + UUIDv7
	UserID   string
	Login    int64
	MethodID string
	Kind     psp.MethodKind
	Provider string
	// Status is what the trader sees (Processing while a push is in
	// doubt); State is the stored state.
	Status WithdrawalStatus
	State  WithdrawalStatus
	// Amount is taken from the trading account, in its currency, which is
	// also the payout currency. Net is what the customer receives; Fee is
	// the method's fee (taken from Amount when the client pays it).
	Amount    money.Amount
	Fee       money.Amount
	FeePaidBy payments.Payer
	Net       money.Amount
	// Destination describes where the money goes, masked for display
	// ("IBAN GB33 … 5555", "visa •••• 4242").
	Destination string
	PaymentID   string
	// DebitPushID is the WITHDRAW push; ReturnPushID the DEPOSIT push that
	// returns the money after a rejection or a failed payout.
	DebitPushID  string
	ReturnPushID string
	AutoApproved bool
	DecidedBy    string // the operator who approved or rejected
	Reason       string // the operator's reason for a rejection (for operators; Failure is the trader's message)
	// Code is set while the withdrawal waits for its e-mailed code.
	Code *CodeStatus
	// Failure explains a failed or rejected withdrawal.
	Failure *payments.ErrorBody
	// Flag is non-empty while an operator must look at the withdrawal.
	Flag string
	// HoldRule and HoldNote name the compliance rule that holds the
	// withdrawal for an operator's approval and explain it (empty when no
	// rule held it).
	HoldRule, HoldNote string
	// FirstApprovedBy is the first of two approvers of a withdrawal above
	// Config.FourEyesAbove; NeedsSecondApproval reports that such a
	// withdrawal waits for its second approver.
	FirstApprovedBy     string
	FirstApprovedAt     time.Time
	NeedsSecondApproval bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
	FinalAt             time.Time

	requestID, requestHash string
	customer               Customer
	destination            psp.Destination
	codeHash               string
	codeExpiresAt          time.Time
	codeAttempts           int
	codeSent               bool
}

// CodeStatus says how long a withdrawal's code is valid and how many wrong
// attempts remain.
type CodeStatus struct {
	ExpiresAt    time.Time
	AttemptsLeft int
	Sent         bool // the e-mail went out
}

// SavedCard is a card an earlier deposit was paid with, which card
// withdrawals can pay out to.
type SavedCard struct {
	ID    string // the deposit's payment id; pass it as Details["card"]
	Brand string
	Last4 string
}

// WithdrawalOptions is what the withdrawal screen offers for one account.
type WithdrawalOptions struct {
	// Account has the platform's balance and what may be withdrawn now.
	Account AccountView
	// Methods are the withdrawal methods in the account's currency the
	// customer may use (country, KYC level).
	Methods []payments.Method
	// Cards are the cards the customer deposited with, newest first.
	Cards []SavedCard
}

// Detail keys of WithdrawalRequest.Details, by method kind.
const (
	DetailIBAN       = "iban"       // bank_transfer, required
	DetailBIC        = "bic"        // bank_transfer, optional
	DetailHolderName = "holderName" // bank_transfer, required
	DetailWalletID   = "walletId"   // ewallet, required
	DetailCard       = "card"       // card, optional: a SavedCard.ID (default: the newest)
)

// FieldError is the cause inside the errs.Invalid error CheckDetails returns:
// the detail at fault and what is wrong with it, for screens that show the
// problem next to the field.
type FieldError struct {
	Field   string
	Problem string
}

// Error says which detail is wrong and how, e.g. "iban: is not a valid IBAN".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// CheckDetails checks the method-specific details of a withdrawal (see the
// Detail keys): an IBAN with a valid checksum and the holder's name for a
// bank transfer, a wallet id for an e-wallet. It returns an errs.Invalid
// error wrapping a *FieldError for the first problem, including a detail the
// kind does not use, and for a kind that cannot be paid out to.
func CheckDetails(kind psp.MethodKind, details map[string]string) error {
	const op = "funding.CheckDetails"
	bad := func(field, problem string) error {
		fe := &FieldError{Field: field, Problem: problem}
		return &errs.Error{Code: errs.Invalid, Op: op, Message: fe.Error(), Err: fe}
	}
	allowed := map[psp.MethodKind][]string{
		psp.BankTransfer: {DetailIBAN, DetailBIC, DetailHolderName},
		psp.EWallet:      {DetailWalletID},
		psp.Card:         {DetailCard},
	}[kind]
	if allowed == nil {
		return errs.Ef(errs.Invalid, op, "withdrawals by %s are not supported", kind)
	}
	for k := range details {
		if !slices.Contains(allowed, k) {
			return bad(k, "is not used by this method")
		}
	}
	switch kind {
	case psp.BankTransfer:
		if !psp.ValidIBAN(details[DetailIBAN]) {
			return bad(DetailIBAN, "is not a valid IBAN")
		}
		if strings.TrimSpace(details[DetailHolderName]) == "" {
			return bad(DetailHolderName, "is required")
		}
		if bic := strings.TrimSpace(details[DetailBIC]); bic != "" && (len(bic) != 8 && len(bic) != 11) {
			return bad(DetailBIC, "must have 8 or 11 characters")
		}
	case psp.EWallet:
		if w := strings.TrimSpace(details[DetailWalletID]); w == "" || len(w) > 200 {
			return bad(DetailWalletID, "is required")
		}
	}
	return nil
}

// destinationRecord is how a destination is stored: the provider's fields
// and the masked label shown to people.
type destinationRecord struct {
	psp.Destination
	Label string `json:"label,omitempty"`
}

// WithdrawalOptions returns the account with its balance and withdrawable
// amount read from the platform, the methods the customer may use and the
// saved cards. It returns the errors of AccountDirectory.AccountOf and of
// the platform (errs.Unavailable when it cannot be read).
func (s *Service) WithdrawalOptions(ctx context.Context, u Customer, login int64) (WithdrawalOptions, error) {
	const op = "funding.WithdrawalOptions"
	acct, cur, err := s.account(ctx, u.UserID, login)
	if err != nil {
		return WithdrawalOptions{}, errs.Wrap(op, err)
	}
	pa, err := s.platformAccount(ctx, login, cur)
	if err != nil {
		return WithdrawalOptions{}, errs.Wrap(op, err)
	}
	reserved, err := s.reservedNow(ctx, login, cur)
	if err != nil {
		return WithdrawalOptions{}, errs.Wrap(op, err)
	}
	free := pa.Withdrawable.Minor() - reserved.Minor()
	view := AccountView{Login: login, Currency: cur, Balance: pa.Balance, Withdrawable: money.New(max(free, 0), cur), BalanceKnown: true, Kind: string(acct.Kind)}
	cards, err := s.savedCards(ctx, u.UserID, login, "")
	if err != nil {
		return WithdrawalOptions{}, errs.Wrap(op, err)
	}
	methods := s.payments.Methods().Available(payments.Filter{Direction: payments.Withdrawal, Currency: cur.Code, Country: u.Country, KYCLevel: u.KYCLevel})
	return WithdrawalOptions{Account: view, Methods: methods, Cards: cards}, nil
}

func (s *Service) platformAccount(ctx context.Context, login int64, cur money.Currency) (platform.Account, error) {
	const op = "funding.platformAccount"
	pa, err := s.platform.Account(ctx, login)
	if err != nil {
		return platform.Account{}, &errs.Error{Code: errs.CodeOf(err), Op: op, Message: "the trading account could not be read; please try again", Err: err}
	}
	if pa.Currency != cur {
		return platform.Account{}, errs.Ef(errs.Internal, op, "trading account %d is in %s on the platform but %s here", login, pa.Currency.Code, cur.Code)
	}
	return pa, nil
}

// reservedNow is the money withdrawals have reserved on a login and not
// yet taken from the platform: the pending debits of its platform account.
func (s *Service) reservedNow(ctx context.Context, login int64, cur money.Currency) (money.Amount, error) {
	a, err := s.ledger.Account(ctx, s.PlatformAccountID(login))
	if errs.Is(err, errs.NotFound) {
		return money.Zero(cur), nil
	}
	if err != nil {
		return money.Amount{}, err
	}
	return a.Balance().PendingOut, nil
}

// savedCards lists the cards the customer paid deposits into login with at
// provider (any provider when empty), newest first, one per card token.
func (s *Service) savedCards(ctx context.Context, userID string, login int64, provider string) ([]SavedCard, error) {
	ps, err := s.payments.List(ctx, payments.ListFilter{CustomerID: userID, AccountID: strconv.FormatInt(login, 10),
		Status: payments.Succeeded, Direction: payments.Deposit, Limit: 200})
	if err != nil {
		return nil, err
	}
	var out []SavedCard
	seen := map[string]bool{}
	for _, p := range ps {
		if p.Kind != psp.Card || p.Instrument.Token == "" || seen[p.Instrument.Token] || (provider != "" && p.Provider != provider) {
			continue
		}
		seen[p.Instrument.Token] = true
		out = append(out, SavedCard{ID: p.ID, Brand: p.Instrument.Brand, Last4: p.Instrument.Last4})
	}
	return out, nil
}

// destination turns checked details into the provider's destination and a
// masked label.
func (s *Service) destination(ctx context.Context, u Customer, login int64, m payments.Method, details map[string]string) (destinationRecord, error) {
	const op = "funding.destination"
	if err := CheckDetails(m.Kind, details); err != nil {
		return destinationRecord{}, err
	}
	switch m.Kind {
	case psp.BankTransfer:
		iban := psp.NormalizeIBAN(details[DetailIBAN])
		return destinationRecord{
			Destination: psp.Destination{IBAN: iban, BIC: strings.ToUpper(strings.TrimSpace(details[DetailBIC])), HolderName: strings.TrimSpace(details[DetailHolderName])},
			Label:       "IBAN " + iban[:4] + " … " + iban[len(iban)-4:],
		}, nil
	case psp.EWallet:
		id := strings.TrimSpace(details[DetailWalletID])
		return destinationRecord{Destination: psp.Destination{WalletID: id}, Label: "wallet " + maskWallet(id)}, nil
	}
	// A card: one the customer deposited with at this method's provider.
	cards, err := s.savedCards(ctx, u.UserID, login, m.Provider)
	if err != nil {
		return destinationRecord{}, errs.Wrap(op, err)
	}
	want := details[DetailCard]
	for _, c := range cards {
		if want != "" && c.ID != want {
			continue
		}
		p, err := s.payments.Get(ctx, c.ID)
		if err != nil {
			return destinationRecord{}, errs.Wrap(op, err)
		}
		return destinationRecord{Destination: psp.Destination{CardToken: p.Instrument.Token}, Label: c.Brand + " •••• " + c.Last4}, nil
	}
	fe := &FieldError{Field: DetailCard, Problem: "card withdrawals go to a card you deposited with; none was found"}
	return destinationRecord{}, &errs.Error{Code: errs.Invalid, Op: op, Message: fe.Error(), Err: fe}
}

func maskWallet(id string) string {
	if at := strings.IndexByte(id, '@'); at > 1 {
		return id[:1] + "…" + id[at:]
	}
	if len(id) > 4 {
		return "…" + id[len(id)-4:]
	}
	return id
}

// InsufficientFundsError is the cause inside the errs.Insufficient error of
// RequestWithdrawal when the amount is more than may be withdrawn.
type InsufficientFundsError struct {
	Available, Requested money.Amount
	Body                 payments.ErrorBody // INSUFFICIENT_FUNDS with both amounts
}

// Error names both amounts.
func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("insufficient funds for withdrawal: %s available, %s requested", e.Available, e.Requested)
}

// AsInsufficient returns the INSUFFICIENT_FUNDS body (availableBalance,
// requestedAmount, currency) inside an error of RequestWithdrawal, if it is
// one.
func AsInsufficient(err error) (*payments.ErrorBody, bool) {
	var ie *InsufficientFundsError
	if !errors.As(err, &ie) {
		return nil, false
	}
	b := ie.Body
	return &b, true
}

func insufficient(op string, available, requested money.Amount) error {
	body, err := payments.InsufficientFunds(available, requested)
	if err != nil {
		return errs.Wrap(op, err)
	}
	ie := &InsufficientFundsError{Available: available, Requested: requested, Body: body}
	return &errs.Error{Code: errs.Insufficient, Op: op, Message: body.Message, Err: ie}
}

// WithdrawalRequest asks for a withdrawal.
type WithdrawalRequest struct {
	// ID is the idempotency key: the same ID with the same details returns
	// the same withdrawal.
	ID       string
	Customer Customer
	Login    int64
	MethodID string
	// Amount is taken from the trading account, in its currency.
	Amount money.Amount
	// Details are the method's destination fields (see the Detail keys).
	Details map[string]string
	// Confirmed says the caller has already confirmed this withdrawal with
	// the customer's second factor (the client API's withdrawal wizard):
	// Config.Require2FA then e-mails no further code and the withdrawal
	// starts at once.
	Confirmed bool
}

// RequestWithdrawal checks and records a withdrawal: the method (country,
// KYC level, limits via payments), the destination details, and the amount
// against what the platform says may be withdrawn less what other
// withdrawals have reserved. The amount is then reserved by a ledger hold;
// with Config.Require2FA (and a request that is not Confirmed) the
// withdrawal waits for the code e-mailed to the customer
// (ConfirmWithdrawal), otherwise the WITHDRAW push is enqueued at once. Calling it again with the same ID returns the same withdrawal (and
// sends the code again if the e-mail failed).
//
// It returns errs.Invalid for a malformed request or details (wrapping a
// *FieldError) or an amount outside the limits (wrapping a
// *payments.LimitError); errs.Forbidden for a country or KYC level the
// method excludes or someone else's account; errs.Conflict when the ID was
// used with other details; errs.Insufficient wrapping an
// *InsufficientFundsError (see AsInsufficient); errs.Unavailable when the
// platform cannot be read, or (with the withdrawal) when the code could not
// be e-mailed.
func (s *Service) RequestWithdrawal(ctx context.Context, req WithdrawalRequest) (Withdrawal, error) {
	const op = "funding.RequestWithdrawal"
	if err := checkRequestID(op, req.ID); err != nil {
		return Withdrawal{}, err
	}
	if req.Amount.Sign() <= 0 {
		return Withdrawal{}, errs.E(errs.Invalid, op, "the amount must be greater than zero")
	}
	detailsJSON, _ := json.Marshal(req.Details)
	hash := requestHash(strconv.FormatInt(req.Login, 10), req.MethodID, req.Amount.String(), string(detailsJSON))
	if w, err := loadWithdrawal(ctx, s.db, false, "user_id = ? AND request_id = ?", req.Customer.UserID, req.ID); err == nil {
		return s.repeatedRequest(ctx, w, hash)
	} else if !errs.Is(err, errs.NotFound) {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	needCode := s.cfg.Require2FA && !req.Confirmed
	if needCode && req.Customer.Email == "" {
		return Withdrawal{}, errs.E(errs.Invalid, op, "the customer's e-mail address is needed to send the withdrawal code")
	}
	_, cur, err := s.account(ctx, req.Customer.UserID, req.Login)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	if req.Amount.Currency() != cur {
		return Withdrawal{}, errs.Ef(errs.Invalid, op, "the amount must be in the account's currency, %s", cur.Code)
	}
	u := req.Customer
	cat := s.payments.Methods()
	if err := cat.Eligible(req.MethodID, payments.Filter{Direction: payments.Withdrawal, Currency: cur.Code, Country: u.Country, KYCLevel: u.KYCLevel}); err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	m, err := cat.Method(req.MethodID)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	dest, err := s.destination(ctx, u, req.Login, m, req.Details)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	price, err := s.payments.PriceWithdrawal(ctx, m.ID, req.Amount, cur, u.Lang)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	// Withdrawals that are reserved but not yet debited now may be debited
	// while the platform is read; those are counted as reserved either way.
	before, err := s.reservedIDs(ctx, s.db, req.Login)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	pa, err := s.platformAccount(ctx, req.Login, cur)
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	id, paymentID, err := newIDs("wd_")
	if err != nil {
		return Withdrawal{}, err
	}
	destJSON, _ := json.Marshal(dest)
	var (
		w    Withdrawal
		code string
	)
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		code = ""
		now := s.clock.Now()
		if err := s.lockLogin(ctx, tx, req.Login, cur, now); err != nil {
			return err
		}
		if existing, err := loadWithdrawal(ctx, tx, false, "user_id = ? AND request_id = ?", u.UserID, req.ID); err == nil {
			w = existing // the same request won a race with this one
			return nil
		}
		reserved, err := s.reservedTx(ctx, tx, req.Login, cur, before)
		if err != nil {
			return err
		}
		available := money.New(max(pa.Withdrawable.Minor()-reserved, 0), cur)
		if req.Amount.Minor() > available.Minor() {
			return insufficient(op, available, req.Amount)
		}
		v, err := s.screen(ctx, tx, Check{Kind: KindWithdrawal, Stage: StageRequest, ID: id, Customer: u, Login: req.Login,
			MethodID: m.ID, MethodKind: string(m.Kind), Amount: req.Amount, AccountAmount: req.Amount, Destination: destinationKey(dest.Destination)})
		if err != nil {
			return err
		}
		w = Withdrawal{
			ID: id, UserID: u.UserID, Login: req.Login, MethodID: m.ID, Kind: m.Kind, Provider: m.Provider,
			State: WithdrawalRequested, Status: WithdrawalRequested, Amount: req.Amount, Fee: price.Fee, FeePaidBy: price.PaidBy, Net: price.Net,
			Destination: dest.Label, PaymentID: paymentID, CreatedAt: now, UpdatedAt: now,
			requestID: req.ID, requestHash: hash, customer: u, destination: dest.Destination,
		}
		if v.Hold {
			w.HoldRule, w.HoldNote = v.Rule, v.Explanation
		}
		if _, err := tx.Exec(ctx, `INSERT INTO funding_withdrawals (id, request_id, request_hash, user_id, email, country, kyc_level, lang,
			login, method_id, method_kind, provider, payment_id, status, currency, amount_minor, fee_minor, fee_paid_by, net_minor,
			destination, created_at, updated_at, hold_rule, hold_note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.requestID, w.requestHash, w.UserID, u.Email, u.Country, u.KYCLevel, u.Lang,
			w.Login, w.MethodID, string(w.Kind), w.Provider, w.PaymentID, string(w.State), cur.Code, w.Amount.Minor(), w.Fee.Minor(),
			string(w.FeePaidBy), w.Net.Minor(), string(destJSON), sqlstore.Micros(now), sqlstore.Micros(now), w.HoldRule, w.HoldNote); err != nil {
			return err
		}
		requested := StatusChange{To: string(WithdrawalRequested),
			Detail: fmt.Sprintf("%s to %s; %s withdrawable, %s reserved by other withdrawals", w.Amount, w.Destination, pa.Withdrawable, money.New(reserved, cur)), At: now}
		if w.HoldRule != "" {
			requested.Reason, requested.Detail = "hold:"+w.HoldRule, requested.Detail+"; held for approval: "+w.HoldNote
		}
		if err := addHistory(ctx, tx, w.ID, requested); err != nil {
			return err
		}
		if err := s.emitWithdrawal(ctx, tx, w, requested); err != nil {
			return err
		}
		ch := chart{s.cfg.Platform}
		ids, err := s.ensure(ctx, tx, ch.platformAccount(w.Login, cur), ch.customer(w.Login, cur))
		if err != nil {
			return err
		}
		if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":debit:hold", Action: ledger.Hold, Debit: ids[0], Credit: ids[1],
			Amount: w.Amount, Code: "withdrawal.debit.hold", Metadata: "withdrawal " + w.ID}); err != nil {
			return err
		}
		if !needCode {
			return s.startDebit(ctx, tx, &w, StatusChange{})
		}
		if code, err = newCode(); err != nil {
			return err
		}
		w.codeHash, w.codeExpiresAt = hashCode(w.ID, code), now.Add(s.cfg.CodeTTL)
		if _, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: JobCodeExpiry, Payload: idPayload{ID: w.ID}, DedupKey: w.ID, RunAt: w.codeExpiresAt, MaxAttempts: 100}); err != nil {
			return err
		}
		s.afterCommit(tx)
		return s.moveWithdrawal(ctx, tx, &w, WithdrawalAwaiting2FA, StatusChange{Detail: "code e-mailed to the customer"})
	})
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	if code != "" {
		return s.sendCode(ctx, w, code)
	}
	return s.withdrawalView(ctx, w)
}

// repeatedRequest answers a request whose ID exists: the same withdrawal,
// with its code sent again if the e-mail failed the first time.
func (s *Service) repeatedRequest(ctx context.Context, w Withdrawal, hash string) (Withdrawal, error) {
	const op = "funding.RequestWithdrawal"
	if w.requestHash != hash {
		return Withdrawal{}, errs.E(errs.Conflict, op, "this withdrawal request was already made with other details")
	}
	if w.State != WithdrawalAwaiting2FA || w.codeSent {
		return s.withdrawalView(ctx, w)
	}
	code, err := newCode()
	if err != nil {
		return Withdrawal{}, err
	}
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		cur, err := loadWithdrawal(ctx, tx, true, "id = ?", w.ID)
		if err != nil {
			return err
		}
		if cur.State != WithdrawalAwaiting2FA || cur.codeSent {
			w, code = cur, ""
			return nil
		}
		w = cur
		w.codeHash, w.codeExpiresAt = hashCode(w.ID, code), s.clock.Now().Add(s.cfg.CodeTTL)
		_, err = tx.Exec(ctx, `UPDATE funding_withdrawals SET code_hash = ?, code_expires_at = ? WHERE id = ?`,
			w.codeHash, sqlstore.Micros(w.codeExpiresAt), w.ID)
		return err
	})
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	if code == "" {
		return s.withdrawalView(ctx, w)
	}
	return s.sendCode(ctx, w, code)
}

// sendCode e-mails the code and records that it went out. If the e-mail
// fails, it returns the withdrawal with an errs.Unavailable error; the same
// request again sends a new code.
func (s *Service) sendCode(ctx context.Context, w Withdrawal, code string) (Withdrawal, error) {
	const op = "funding.sendCode"
	msg := codeMessage(w, code, s.cfg.CodeTTL)
	if err := s.mailer.Send(ctx, msg); err != nil {
		s.log.WarnContext(ctx, "withdrawal code e-mail failed", "withdrawal", w.ID, "err", err)
		v, verr := s.withdrawalView(ctx, w)
		if verr != nil {
			return Withdrawal{}, verr
		}
		return v, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the confirmation code could not be e-mailed; please try again", Err: err}
	}
	if _, err := s.db.Exec(ctx, `UPDATE funding_withdrawals SET code_sent = 1 WHERE id = ?`, w.ID); err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	w.codeSent = true
	return s.withdrawalView(ctx, w)
}

// lockLogin takes the row lock that serialises withdrawal requests on one
// trading account (the row is created on first use).
func (s *Service) lockLogin(ctx context.Context, tx *sqlstore.Tx, login int64, cur money.Currency, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO funding_logins (login, currency, created_at) VALUES (?, ?, ?) ON CONFLICT (login) DO NOTHING`,
		login, cur.Code, sqlstore.Micros(now)); err != nil {
		return errs.Wrap("funding.lockLogin", err)
	}
	var got int64
	err := tx.QueryRow(ctx, `SELECT login FROM funding_logins WHERE login = ?`+tx.ForUpdate(), login).Scan(&got)
	return errs.Wrap("funding.lockLogin", err)
}

// reservedStates are the states in which a withdrawal holds money that the
// platform has not yet given up.
var reservedStates = []string{string(WithdrawalAwaiting2FA), string(WithdrawalDebiting)}

// reservedIDs lists the withdrawals on login that reserve money now.
func (s *Service) reservedIDs(ctx context.Context, q querier, login int64) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id FROM funding_withdrawals WHERE login = ? AND status IN (?, ?)`, login, reservedStates[0], reservedStates[1])
	if err != nil {
		return nil, errs.Wrap("funding.reservedIDs", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, errs.Wrap("funding.reservedIDs", err)
		}
		ids = append(ids, id)
	}
	return ids, errs.Wrap("funding.reservedIDs", rows.Err())
}

// reservedTx is, under the login's lock, the money withdrawals reserve
// against the platform's withdrawable amount read a moment ago: the ledger's
// pending debits of the platform account, plus the withdrawals that were
// reserving before the read and have since been debited (the read may or may
// not show their debit, so they count).
func (s *Service) reservedTx(ctx context.Context, tx *sqlstore.Tx, login int64, cur money.Currency, before []string) (int64, error) {
	const op = "funding.reserved"
	var pending int64
	a, err := s.ledger.AccountTx(ctx, tx, s.PlatformAccountID(login))
	switch {
	case errs.Is(err, errs.NotFound):
	case err != nil:
		return 0, errs.Wrap(op, err)
	default:
		pending = a.Balance().PendingOut.Minor()
	}
	if len(before) == 0 {
		return pending, nil
	}
	args := []any{string(WithdrawalAwaiting2FA), string(WithdrawalDebiting), string(WithdrawalFailed)}
	for _, id := range before {
		args = append(args, id)
	}
	var since int64
	err = tx.QueryRow(ctx, `SELECT COALESCE(SUM(amount_minor), 0) FROM funding_withdrawals
		WHERE status NOT IN (?, ?) AND NOT (status = ? AND return_push_id = '') AND id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(before)), ",")+`)`,
		args...).Scan(&since)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	return pending + since, nil
}

// startDebit enqueues the WITHDRAW push of a withdrawal whose amount is
// held, in tx.
func (s *Service) startDebit(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, c StatusChange) error {
	pushID := w.ID + ":debit"
	if _, err := s.push.EnqueueTx(ctx, tx, push.Request{ID: pushID, Owner: OwnerWithdrawal, OwnerID: w.ID, Change: platform.BalanceChange{
		Login: w.Login, Type: platform.Withdraw, Amount: w.Amount, Comment: "OpenCashier withdrawal " + w.ID,
		ExternalNote: "Withdrawal by " + kindWords(w.Kind), Source: string(w.Kind),
	}}); err != nil {
		return errs.Wrap("funding.startDebit", err)
	}
	s.afterCommit(tx)
	w.DebitPushID = pushID
	if c.Detail == "" {
		c.Detail = "WITHDRAW push " + pushID + " enqueued"
	}
	return s.moveWithdrawal(ctx, tx, w, WithdrawalDebiting, c)
}

// ConfirmWithdrawal checks the code e-mailed for a withdrawal and, when it
// is right, sends the WITHDRAW push. A wrong code counts an attempt; the
// last allowed wrong attempt, or a code past its expiry, cancels the
// withdrawal and releases the reserved amount.
//
// It returns errs.NotFound for someone else's withdrawal; errs.Conflict when
// the withdrawal is not waiting for a code; errs.Invalid for a wrong code
// (the message says how many attempts are left); errs.RateLimited when the
// attempts are used up; errs.Expired when the code has expired.
func (s *Service) ConfirmWithdrawal(ctx context.Context, customerUserID, withdrawalID, code string) (Withdrawal, error) {
	const op = "funding.ConfirmWithdrawal"
	var (
		w      Withdrawal
		result error
	)
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		result = nil
		var err error
		w, err = loadWithdrawal(ctx, tx, true, "id = ? AND user_id = ?", withdrawalID, customerUserID)
		if err != nil {
			return err
		}
		if w.State != WithdrawalAwaiting2FA {
			return errs.Ef(errs.Conflict, op, "the withdrawal is %s, not waiting for a code", w.State)
		}
		now := s.clock.Now()
		if !now.Before(w.codeExpiresAt) {
			result = errs.E(errs.Expired, op, "the code has expired; the withdrawal was cancelled, please start again")
			return s.failBeforeDebit(ctx, tx, &w, "code_expired", "The confirmation code expired before it was entered.")
		}
		if !codeMatches(w.ID, strings.TrimSpace(code), w.codeHash) {
			w.codeAttempts++
			if _, err := tx.Exec(ctx, `UPDATE funding_withdrawals SET code_attempts = ? WHERE id = ?`, w.codeAttempts, w.ID); err != nil {
				return err
			}
			left := s.cfg.CodeAttempts - w.codeAttempts
			if left > 0 {
				result = errs.Ef(errs.Invalid, op, "the code is not right; %d attempts left", left)
				return nil
			}
			result = errs.E(errs.RateLimited, op, "too many wrong codes; the withdrawal was cancelled, please start again")
			return s.failBeforeDebit(ctx, tx, &w, "code_attempts_exhausted", "Too many wrong confirmation codes were entered.")
		}
		if _, err := tx.Exec(ctx, `UPDATE funding_withdrawals SET code_hash = '' WHERE id = ?`, w.ID); err != nil {
			return err
		}
		w.codeHash = ""
		return s.startDebit(ctx, tx, &w, StatusChange{Reason: "code_confirmed"})
	})
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	v, err := s.withdrawalView(ctx, w)
	if err != nil {
		return Withdrawal{}, err
	}
	return v, result
}

// failBeforeDebit cancels a withdrawal that has not reached the platform:
// the hold is voided and nothing is returned.
func (s *Service) failBeforeDebit(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, reason, message string) error {
	if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":debit:void", Action: ledger.VoidPending, PendingID: w.ID + ":debit:hold",
		Code: "withdrawal.debit.void", Metadata: "withdrawal " + w.ID}); err != nil {
		return errs.Wrap("funding.failBeforeDebit", err)
	}
	body := payments.PaymentFailed(message, true)
	body.Reason = reason
	w.Failure = &body
	return s.moveWithdrawal(ctx, tx, w, WithdrawalFailed, StatusChange{Reason: reason, Detail: message})
}

// expireCode is the code expiry job: a withdrawal still waiting for its
// code when the code expires is cancelled and its reservation released.
func (s *Service) expireCode(ctx context.Context, id string) error {
	var wait time.Duration
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		wait = 0
		w, err := loadWithdrawal(ctx, tx, true, "id = ?", id)
		if err != nil || w.State != WithdrawalAwaiting2FA {
			return err
		}
		if wait = w.codeExpiresAt.Sub(s.clock.Now()); wait > 0 {
			return nil
		}
		return s.failBeforeDebit(ctx, tx, &w, "code_expired", "The confirmation code expired before it was entered.")
	})
	if errs.Is(err, errs.NotFound) {
		return jobs.Permanent(err)
	}
	if err == nil && wait > 0 {
		return jobs.Retry(wait, errs.Ef(errs.Unavailable, "funding.expireCode", "the code of %s expires later", id))
	}
	return err
}

// Withdrawal returns the customer's withdrawal. It returns errs.NotFound
// for an unknown id or someone else's withdrawal.
func (s *Service) Withdrawal(ctx context.Context, customerUserID, withdrawalID string) (Withdrawal, error) {
	w, err := loadWithdrawal(ctx, s.db, false, "id = ? AND user_id = ?", withdrawalID, customerUserID)
	if err != nil {
		return Withdrawal{}, errs.Wrap("funding.Withdrawal", err)
	}
	return s.withdrawalView(ctx, w)
}

// GetWithdrawal returns any withdrawal, for operators. It returns
// errs.NotFound for an unknown id.
func (s *Service) GetWithdrawal(ctx context.Context, withdrawalID string) (Withdrawal, error) {
	w, err := loadWithdrawal(ctx, s.db, false, "id = ?", withdrawalID)
	if err != nil {
		return Withdrawal{}, errs.Wrap("funding.GetWithdrawal", err)
	}
	return s.withdrawalView(ctx, w)
}

// Withdrawals returns the customer's withdrawals, newest first, at most
// limit (default 50, at most 500).
func (s *Service) Withdrawals(ctx context.Context, customerUserID string, limit int) ([]Withdrawal, error) {
	ws, err := listWithdrawals(ctx, s.db, "user_id = ?", clampLimit(limit), customerUserID)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if ws[i], err = s.withdrawalView(ctx, ws[i]); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// PendingApprovals returns the withdrawals waiting for an operator, oldest
// first, at most limit (default 50, at most 500).
func (s *Service) PendingApprovals(ctx context.Context, limit int) ([]Withdrawal, error) {
	rows, err := s.db.Query(ctx, "SELECT "+withdrawalColumns+" FROM funding_withdrawals WHERE status = ? ORDER BY id LIMIT ?",
		string(WithdrawalAwaitingApproval), clampLimit(limit))
	if err != nil {
		return nil, errs.Wrap("funding.PendingApprovals", err)
	}
	defer rows.Close()
	var out []Withdrawal
	for rows.Next() {
		w, err := scanWithdrawal(rows)
		if err != nil {
			return nil, errs.Wrap("funding.PendingApprovals", err)
		}
		out = append(out, w)
	}
	return out, errs.Wrap("funding.PendingApprovals", rows.Err())
}

// WithdrawalHistory returns the status changes of the customer's
// withdrawal, oldest first. It returns errs.NotFound for someone else's.
func (s *Service) WithdrawalHistory(ctx context.Context, customerUserID, withdrawalID string) ([]StatusChange, error) {
	if _, err := loadWithdrawal(ctx, s.db, false, "id = ? AND user_id = ?", withdrawalID, customerUserID); err != nil {
		return nil, errs.Wrap("funding.WithdrawalHistory", err)
	}
	return history(ctx, s.db, withdrawalID)
}

// withdrawalView fills in what the trader sees: Processing while a push is
// delayed (in doubt, or waiting to be sent again after a send that did not
// settle it), and the code's state.
func (s *Service) withdrawalView(ctx context.Context, w Withdrawal) (Withdrawal, error) {
	w.Status = w.State
	pushID := ""
	switch {
	case w.State == WithdrawalDebiting:
		pushID = w.DebitPushID
	case (w.State == WithdrawalRejected || w.State == WithdrawalFailed) && w.ReturnPushID != "":
		pushID = w.ReturnPushID
	}
	if pushID != "" {
		p, err := s.push.Get(ctx, pushID)
		if err != nil {
			return Withdrawal{}, errs.Wrap("funding.Withdrawal", err)
		}
		if p.Delayed() {
			w.Status = WithdrawalProcessing
		}
	}
	w.NeedsSecondApproval = w.State == WithdrawalAwaitingApproval && w.FirstApprovedBy != "" && s.needsTwoApprovers(w)
	w.Code = nil
	if w.State == WithdrawalAwaiting2FA {
		w.Code = &CodeStatus{ExpiresAt: w.codeExpiresAt, AttemptsLeft: max(s.cfg.CodeAttempts-w.codeAttempts, 0), Sent: w.codeSent}
	}
	return w, nil
}

// moveWithdrawal records w's move to status to (its other fields as set by
// the caller) and the history entry, in tx.
func (s *Service) moveWithdrawal(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, to WithdrawalStatus, c StatusChange) error {
	now := s.clock.Now()
	c.From, c.To, c.At = string(w.State), string(to), now
	w.State, w.Status, w.UpdatedAt = to, to, now
	final := to == WithdrawalCompleted || to == WithdrawalReturned || (to == WithdrawalFailed && w.ReturnPushID == "")
	if final && w.FinalAt.IsZero() {
		w.FinalAt = now
	}
	auto := 0
	if w.AutoApproved {
		auto = 1
	}
	if _, err := tx.Exec(ctx, `UPDATE funding_withdrawals SET status = ?, fee_minor = ?, net_minor = ?, auto_approved = ?, decided_by = ?, reason = ?,
		debit_push_id = ?, return_push_id = ?, code_hash = ?, code_expires_at = ?, failure = ?, flag = ?, updated_at = ?, final_at = ?,
		hold_rule = ?, hold_note = ?, first_approved_by = ?, first_approved_at = ? WHERE id = ?`,
		string(w.State), w.Fee.Minor(), w.Net.Minor(), auto, w.DecidedBy, w.Reason, w.DebitPushID, w.ReturnPushID, w.codeHash,
		sqlstore.NullMicros(w.codeExpiresAt), encodeFailure(w.Failure), w.Flag, sqlstore.Micros(now), sqlstore.NullMicros(w.FinalAt),
		w.HoldRule, w.HoldNote, w.FirstApprovedBy, sqlstore.NullMicros(w.FirstApprovedAt), w.ID); err != nil {
		return errs.Wrap("funding.saveWithdrawal", err)
	}
	if err := addHistory(ctx, tx, w.ID, c); err != nil {
		return err
	}
	return s.emitWithdrawal(ctx, tx, *w, c)
}

// withdrawalPushSettled moves a withdrawal when its WITHDRAW push or its
// return DEPOSIT push settles (push.Owner), in the push's settling
// transaction:
//
//	debit applied:      post the hold Dr platform / Cr customer; held; then approved (auto) or awaiting_approval
//	debit not applied:  void the hold; failed
//	return applied:     post the hold Dr customer / Cr platform; returned
//	return not applied: void it; Dr customer / Cr suspense (flagged)
//
// As for deposits, a push settles as not applied only after a refusal for
// good, an operator's decision, or proofs that it was not applied with no
// send left (the push service sends it again before that).
func (s *Service) withdrawalPushSettled(ctx context.Context, tx *sqlstore.Tx, p push.Push) error {
	const op = "funding.withdrawalPushSettled"
	w, err := loadWithdrawal(ctx, tx, true, "id = ?", p.OwnerID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	meta := "withdrawal " + w.ID
	switch {
	case p.ID == w.DebitPushID && w.State == WithdrawalDebiting:
		if !p.State.WasApplied() {
			if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":debit:void", Action: ledger.VoidPending, PendingID: w.ID + ":debit:hold",
				Code: "withdrawal.debit.void", Metadata: meta}); err != nil {
				return errs.Wrap(op, err)
			}
			message := "The trading platform refused the withdrawal, for example because the free margin is too low. Nothing was taken from your account."
			if p.State == push.ResolvedNotApplied {
				message = "The trading platform could not be reached. Nothing was taken from your account; please try again later."
			}
			body := payments.PaymentFailed(message, true)
			body.Reason = "platform_refused"
			w.Failure = &body
			return s.moveWithdrawal(ctx, tx, &w, WithdrawalFailed, StatusChange{Reason: string(p.State), Detail: notAppliedDetail(p)})
		}
		if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":debit:post", Action: ledger.PostPending, PendingID: w.ID + ":debit:hold",
			Code: "withdrawal.debit", Metadata: meta}); err != nil {
			return errs.Wrap(op, err)
		}
		if err := s.moveWithdrawal(ctx, tx, &w, WithdrawalHeld, StatusChange{Reason: string(p.State),
			Detail: "taken from the trading account, balanceHistoryId " + strconv.FormatInt(p.BalanceHistoryID, 10)}); err != nil {
			return err
		}
		if w.HoldRule != "" {
			return s.moveWithdrawal(ctx, tx, &w, WithdrawalAwaitingApproval, StatusChange{Reason: "hold:" + w.HoldRule, Detail: w.HoldNote})
		}
		if !s.autoApproves(w) {
			return s.moveWithdrawal(ctx, tx, &w, WithdrawalAwaitingApproval, StatusChange{Detail: "above the auto-approval rules"})
		}
		w.AutoApproved = true
		return s.approve(ctx, tx, &w, StatusChange{Reason: "auto_approved"})
	case p.ID == w.ReturnPushID && (w.State == WithdrawalRejected || w.State == WithdrawalFailed):
		if p.State.WasApplied() {
			if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":return:post", Action: ledger.PostPending, PendingID: w.ID + ":return:hold",
				Code: "withdrawal.return", Metadata: meta}); err != nil {
				return errs.Wrap(op, err)
			}
			return s.moveWithdrawal(ctx, tx, &w, WithdrawalReturned, StatusChange{Reason: string(p.State),
				Detail: "back on the trading account, balanceHistoryId " + strconv.FormatInt(p.BalanceHistoryID, 10)})
		}
		if w.Flag == FlagReturnRefused {
			return nil
		}
		cur := w.Amount.Currency()
		ids, err := s.ensure(ctx, tx, suspense(cur))
		if err != nil {
			return err
		}
		if _, err := s.ledger.PostTx(ctx, tx,
			ledger.Transfer{ID: w.ID + ":return:void", Action: ledger.VoidPending, PendingID: w.ID + ":return:hold", Code: "withdrawal.return.void", Metadata: meta},
			ledger.Transfer{ID: w.ID + ":return:suspense", Debit: chart{s.cfg.Platform}.customer(w.Login, cur).ID, Credit: ids[0], Amount: w.Amount,
				Code: "withdrawal.return.suspense", Metadata: meta}); err != nil {
			return errs.Wrap(op, err)
		}
		w.Flag = FlagReturnRefused
		s.log.WarnContext(ctx, "platform refused to take back a withdrawal's money; it is in suspense for an operator", "withdrawal", w.ID, "push", p.ID)
		return s.moveWithdrawal(ctx, tx, &w, w.State, StatusChange{Reason: FlagReturnRefused, Detail: notAppliedDetail(p)})
	}
	return nil
}

// notAppliedDetail is the history detail of a push that settled as not
// applied: which push, how many sends it took.
func notAppliedDetail(p push.Push) string {
	sends := "1 send"
	if p.Sends != 1 {
		sends = strconv.Itoa(p.Sends) + " sends"
	}
	return "the platform did not apply push " + p.ID + " (" + sends + ")"
}

// needsTwoApprovers reports whether w is above Config.FourEyesAbove.
func (s *Service) needsTwoApprovers(w Withdrawal) bool {
	limit, ok := s.cfg.FourEyesAbove[w.Amount.Currency().Code]
	return ok && w.Amount.Minor() > limit.Minor()
}

// autoApproves applies the auto-approval rules of Config.
func (s *Service) autoApproves(w Withdrawal) bool {
	limit, ok := s.cfg.AutoApproveWithdrawalsUpTo[w.Amount.Currency().Code]
	if !ok || (len(s.cfg.AutoApproveMethods) > 0 && !slices.Contains(s.cfg.AutoApproveMethods, w.MethodID)) {
		return false
	}
	return w.Amount.Minor() <= limit.Minor()
}

// approve moves w to approved and enqueues its payout, in tx.
func (s *Service) approve(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, c StatusChange) error {
	if _, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: JobPayout, Payload: idPayload{ID: w.ID}, DedupKey: w.ID, MaxAttempts: 100}); err != nil {
		return errs.Wrap("funding.approve", err)
	}
	s.afterCommit(tx)
	return s.moveWithdrawal(ctx, tx, w, WithdrawalApproved, c)
}

// ApproveWithdrawal lets an operator approve a withdrawal that waits for
// approval; its payout is then sent. A withdrawal above
// Config.FourEyesAbove needs two approvals by different operators: the
// first is recorded (FirstApprovedBy) and the withdrawal keeps waiting. It
// returns errs.Invalid without an operator name, errs.NotFound for an
// unknown id, errs.Conflict when the withdrawal is not awaiting approval and
// errs.Forbidden when the first approver tries to give the second approval.
func (s *Service) ApproveWithdrawal(ctx context.Context, id, by string) (Withdrawal, error) {
	const op = "funding.ApproveWithdrawal"
	if strings.TrimSpace(by) == "" {
		return Withdrawal{}, errs.E(errs.Invalid, op, "the operator must be named")
	}
	var w Withdrawal
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if w, err = loadWithdrawal(ctx, tx, true, "id = ?", id); err != nil {
			return err
		}
		if w.State != WithdrawalAwaitingApproval {
			return errs.Ef(errs.Conflict, op, "the withdrawal is %s, not awaiting approval", w.State)
		}
		if s.needsTwoApprovers(w) {
			switch w.FirstApprovedBy {
			case "":
				w.FirstApprovedBy, w.FirstApprovedAt = by, s.clock.Now()
				return s.moveWithdrawal(ctx, tx, &w, w.State, StatusChange{Reason: "first_approval", Actor: by,
					Detail: "above the four-eyes amount; a second approver must be another person"})
			case by:
				return errs.E(errs.Forbidden, op, "you gave the first approval; the second approver must be another person")
			}
		}
		w.DecidedBy = by
		c := StatusChange{Reason: "approved", Actor: by}
		if w.FirstApprovedBy != "" {
			c.Detail = "second approval; first by " + w.FirstApprovedBy
		}
		return s.approve(ctx, tx, &w, c)
	})
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	return s.withdrawalView(ctx, w)
}

// RejectWithdrawal lets an operator refuse a withdrawal that waits for
// approval; the money goes back to the trading account (a DEPOSIT push).
// It returns errs.Invalid without an operator name or a reason,
// errs.NotFound for an unknown id and errs.Conflict when the withdrawal is
// not awaiting approval.
func (s *Service) RejectWithdrawal(ctx context.Context, id, by, reason string) (Withdrawal, error) {
	const op = "funding.RejectWithdrawal"
	if strings.TrimSpace(by) == "" || strings.TrimSpace(reason) == "" {
		return Withdrawal{}, errs.E(errs.Invalid, op, "the operator and a reason are required")
	}
	var w Withdrawal
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if w, err = loadWithdrawal(ctx, tx, true, "id = ?", id); err != nil {
			return err
		}
		if w.State != WithdrawalAwaitingApproval {
			return errs.Ef(errs.Conflict, op, "the withdrawal is %s, not awaiting approval", w.State)
		}
		w.DecidedBy, w.Reason = by, reason
		// The operator's reason stays in Reason; the trader's message is neutral.
		body := payments.PaymentFailed("The withdrawal was not approved. The money goes back to your trading account.", false)
		body.Reason = "rejected"
		w.Failure = &body
		return s.startReturn(ctx, tx, &w, WithdrawalRejected, StatusChange{Reason: "rejected", Actor: by, Detail: reason})
	})
	if err != nil {
		return Withdrawal{}, errs.Wrap(op, err)
	}
	return s.withdrawalView(ctx, w)
}

// startReturn moves w to status to and sends its money back to the trading
// account, in tx: hold Dr customer / Cr platform, and a DEPOSIT push.
func (s *Service) startReturn(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, to WithdrawalStatus, c StatusChange) error {
	const op = "funding.startReturn"
	cur := w.Amount.Currency()
	ch := chart{s.cfg.Platform}
	if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: w.ID + ":return:hold", Action: ledger.Hold,
		Debit: ch.customer(w.Login, cur).ID, Credit: ch.platformAccount(w.Login, cur).ID, Amount: w.Amount,
		Code: "withdrawal.return.hold", Metadata: "withdrawal " + w.ID}); err != nil {
		return errs.Wrap(op, err)
	}
	pushID := w.ID + ":return"
	if _, err := s.push.EnqueueTx(ctx, tx, push.Request{ID: pushID, Owner: OwnerWithdrawal, OwnerID: w.ID, Change: platform.BalanceChange{
		Login: w.Login, Type: platform.Deposit, Amount: w.Amount, Comment: "OpenCashier withdrawal " + w.ID + " returned",
		ExternalNote: "Withdrawal returned", Source: string(w.Kind),
	}}); err != nil {
		return errs.Wrap(op, err)
	}
	s.afterCommit(tx)
	w.ReturnPushID = pushID
	if c.Detail == "" {
		c.Detail = "DEPOSIT push " + pushID + " returns the money"
	} else {
		c.Detail += "; DEPOSIT push " + pushID + " returns the money"
	}
	return s.moveWithdrawal(ctx, tx, w, to, c)
}

// sendPayout is the payout job: it records the payout at payments, moves the
// withdrawal to payout_sent with the payout's bookings, then starts the
// payout at the provider. Each step is idempotent, so the job may run again.
func (s *Service) sendPayout(ctx context.Context, id string) error {
	const op = "funding.sendPayout"
	w, err := loadWithdrawal(ctx, s.db, false, "id = ?", id)
	if errs.Is(err, errs.NotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if w.State != WithdrawalApproved && w.State != WithdrawalPayoutSent {
		return nil
	}
	c := w.customer
	p, err := s.payments.CreatePayout(ctx, payments.PayoutRequest{
		ID: w.PaymentID, MethodID: w.MethodID, Debit: w.Amount, Currency: w.Amount.Currency(), Destination: w.destination,
		Customer: payments.Customer{ID: w.UserID, AccountID: strconv.FormatInt(w.Login, 10), Email: c.Email, Country: c.Country, KYCLevel: c.KYCLevel},
		Lang:     c.Lang,
	})
	switch {
	case errs.Is(err, errs.Unavailable):
		return err // retried with backoff
	case err != nil:
		// The payout cannot be made as asked (the method's rules changed):
		// the money goes back.
		s.log.WarnContext(ctx, "payout refused before reaching the provider; returning the money", "withdrawal", id, "err", err)
		why := errs.MessageOf(err)
		return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			w, err := loadWithdrawal(ctx, tx, true, "id = ?", id)
			if err != nil || w.State != WithdrawalApproved {
				return err
			}
			body := payments.PaymentFailed("The payout could not be made: "+why+". The money goes back to your trading account.", false)
			body.Reason = "payout_refused"
			w.Failure = &body
			return s.startReturn(ctx, tx, &w, WithdrawalFailed, StatusChange{Reason: "payout_refused", Detail: why})
		})
	}
	if err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		w, err := loadWithdrawal(ctx, tx, true, "id = ?", id)
		if err != nil || w.State != WithdrawalApproved {
			return err
		}
		return s.payoutSent(ctx, tx, &w, p)
	}); err != nil {
		return errs.Wrap(op, err)
	}
	if _, err := s.payments.Start(ctx, w.PaymentID); err != nil {
		return errs.Wrap(op, err) // retried; Start is idempotent
	}
	return nil
}

// payoutSent books the payout's holds and moves w to payout_sent, in tx:
//
//	hold: Dr customer / Cr psp clearing   net
//	hold: Dr customer / Cr fee income     fee   (client pays)
func (s *Service) payoutSent(ctx context.Context, tx *sqlstore.Tx, w *Withdrawal, p payments.Payment) error {
	const op = "funding.payoutSent"
	cur := w.Amount.Currency()
	if p.Net.Currency() != cur || p.AccountAmount != w.Amount {
		return errs.Ef(errs.Internal, op, "payout %s is for %s in %s, the withdrawal %s", p.ID, p.AccountAmount, p.Net.Currency().Code, w.Amount)
	}
	ch := chart{s.cfg.Platform}
	ids, err := s.ensure(ctx, tx, ch.customer(w.Login, cur), pspClearing(p.Provider, cur), feeIncome(cur))
	if err != nil {
		return err
	}
	meta := "withdrawal " + w.ID
	ts := []ledger.Transfer{{ID: w.ID + ":payout:hold", Action: ledger.Hold, Debit: ids[0], Credit: ids[1], Amount: p.Net, Code: "withdrawal.payout.hold", Metadata: meta}}
	if p.FeePaidBy == payments.PaidByClient && p.Fee.Sign() > 0 {
		ts = append(ts, ledger.Transfer{ID: w.ID + ":payout:fee:hold", Action: ledger.Hold, Debit: ids[0], Credit: ids[2], Amount: p.Fee, Code: "withdrawal.fee.hold", Metadata: meta})
	}
	if _, err := s.ledger.PostTx(ctx, tx, ts...); err != nil {
		return errs.Wrap(op, err)
	}
	w.Fee, w.Net = p.Fee, p.Net
	return s.moveWithdrawal(ctx, tx, w, WithdrawalPayoutSent, StatusChange{Detail: "payout " + p.ID + " of " + p.Net.String() + " to " + w.Destination})
}

// withdrawalPaymentChanged moves a withdrawal after its payout's status
// change, inside the transaction that records it:
//
//	succeeded: post the holds; Dr fee expense / Cr psp clearing (broker pays the fee); completed
//	declined, failed, expired: void the holds; failed; the money goes back (startReturn)
func (s *Service) withdrawalPaymentChanged(ctx context.Context, tx *sqlstore.Tx, w Withdrawal, p payments.Payment) error {
	const op = "funding.withdrawalPaymentChanged"
	if w.State != WithdrawalApproved && w.State != WithdrawalPayoutSent {
		return nil
	}
	if w.State == WithdrawalApproved && p.Status != payments.Created {
		if err := s.payoutSent(ctx, tx, &w, p); err != nil {
			return err
		}
	}
	meta := "withdrawal " + w.ID
	feeHold := p.FeePaidBy == payments.PaidByClient && p.Fee.Sign() > 0
	switch p.Status {
	case payments.Review:
		w.Flag = FlagPaymentReview
		return s.moveWithdrawal(ctx, tx, &w, w.State, StatusChange{Reason: FlagPaymentReview, Detail: p.Message})
	case payments.Succeeded:
		ts := []ledger.Transfer{{ID: w.ID + ":payout:post", Action: ledger.PostPending, PendingID: w.ID + ":payout:hold", Code: "withdrawal.payout", Metadata: meta}}
		if feeHold {
			ts = append(ts, ledger.Transfer{ID: w.ID + ":payout:fee:post", Action: ledger.PostPending, PendingID: w.ID + ":payout:fee:hold", Code: "withdrawal.fee", Metadata: meta})
		}
		if p.FeePaidBy == payments.PaidByBroker && p.Fee.Sign() > 0 {
			ids, err := s.ensure(ctx, tx, feeExpense(p.Fee.Currency()), pspClearing(p.Provider, p.Fee.Currency()))
			if err != nil {
				return err
			}
			ts = append(ts, ledger.Transfer{ID: w.ID + ":payout:fee", Debit: ids[0], Credit: ids[1], Amount: p.Fee, Code: "withdrawal.fee.broker", Metadata: meta})
		}
		if _, err := s.ledger.PostTx(ctx, tx, ts...); err != nil {
			return errs.Wrap(op, err)
		}
		w.Flag = ""
		return s.moveWithdrawal(ctx, tx, &w, WithdrawalCompleted, StatusChange{Detail: "paid out " + p.Net.String() + " by " + p.Provider})
	case payments.Declined, payments.Failed, payments.Expired:
		ts := []ledger.Transfer{{ID: w.ID + ":payout:void", Action: ledger.VoidPending, PendingID: w.ID + ":payout:hold", Code: "withdrawal.payout.void", Metadata: meta}}
		if feeHold {
			ts = append(ts, ledger.Transfer{ID: w.ID + ":payout:fee:void", Action: ledger.VoidPending, PendingID: w.ID + ":payout:fee:hold", Code: "withdrawal.fee.void", Metadata: meta})
		}
		if _, err := s.ledger.PostTx(ctx, tx, ts...); err != nil {
			return errs.Wrap(op, err)
		}
		body, _ := payments.FailureOf(p)
		body.Message += " The money goes back to your trading account."
		w.Failure, w.Flag = &body, ""
		return s.startReturn(ctx, tx, &w, WithdrawalFailed, StatusChange{Reason: p.Reason, Detail: "payout " + string(p.Status) + ": " + p.Message})
	}
	return nil
}
