package funding

import (
	"context"
	"strconv"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// BankRailProvider names the bank rail in the ledger: money a bank rail
// has collected for the broker and not yet handed over is on the clearing
// account "psp:bank:<currency>".
const BankRailProvider = "bank"

// BankCredit is money a bank rail collected from a customer's linked bank
// for a trading account (a seed 003 cash-transfer DEPOSIT that settled).
type BankCredit struct {
	// ID is the bank transfer's own id (banking's order id): crediting the
	// same ID again returns the same deposit and books nothing.
	ID     string
	UserID string
	Login  int64
	// Amount is what arrived, in the trading account's currency; there
	// is no fee and no conversion.
	Amount money.Amount
}

// BankDeposit credits a trading account with money that arrived through a
// bank rail, exactly as a paid card deposit is credited: in one
// transaction it records a deposit (method "bank-rail"), books
// Dr psp:bank clearing / Cr customer and the hold Dr customer / Cr platform,
// and enqueues the DEPOSIT push, which posts the hold once the platform
// applies it (or reverses it to suspense if the platform refuses). The
// deposit's request id is "bank:" + c.ID, so a retry with the same ID
// returns the first deposit and books nothing.
//
// It returns errs.Invalid for an empty or over-long ID, an amount that is
// not positive or not in the account's currency; errs.Conflict when the ID
// was credited with another account or amount; the errors of the account
// look-up (errs.NotFound or errs.Forbidden for someone else's account); and
// database errors.
func (s *Service) BankDeposit(ctx context.Context, c BankCredit) (Deposit, error) {
	const op = "funding.BankDeposit"
	var id string
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		id, err = s.BankDepositTx(ctx, tx, c)
		return err
	})
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	d, err := loadDeposit(ctx, s.db, false, "id = ?", id)
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	return s.depositView(ctx, d)
}

// BankDepositTx is BankDeposit inside the caller's transaction tx (on the
// same database), so that a bank transfer's settlement and its credit
// commit together. It returns the deposit's id and the errors of
// BankDeposit.
func (s *Service) BankDepositTx(ctx context.Context, tx *sqlstore.Tx, c BankCredit) (string, error) {
	const op = "funding.BankDeposit"
	reqID := "bank:" + c.ID
	if err := checkRequestID(op, reqID); err != nil || c.ID == "" {
		return "", errs.E(errs.Invalid, op, "a bank transfer id of 1 to 123 characters is required")
	}
	if c.Amount.Sign() <= 0 {
		return "", errs.E(errs.Invalid, op, "the amount must be greater than zero")
	}
	_, cur, err := s.account(ctx, c.UserID, c.Login)
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	if c.Amount.Currency() != cur {
		return "", errs.Ef(errs.Invalid, op, "the amount must be in the account's currency, %s", cur.Code)
	}
	hash := requestHash(strconv.FormatInt(c.Login, 10), bankRailMethod, c.Amount.String())
	existing, err := loadDeposit(ctx, tx, true, "user_id = ? AND request_id = ?", c.UserID, reqID)
	if err == nil {
		if existing.requestHash != hash {
			return "", errs.E(errs.Conflict, op, "this bank transfer was already credited with another account or amount")
		}
		return existing.ID, nil
	}
	if !errs.Is(err, errs.NotFound) {
		return "", errs.Wrap(op, err)
	}
	id, paymentID, err := newIDs("dep_")
	if err != nil {
		return "", err
	}
	now := s.clock.Now()
	zero := money.Zero(cur)
	d := Deposit{
		ID: id, UserID: c.UserID, Login: c.Login, MethodID: bankRailMethod, Kind: psp.BankTransfer, Provider: BankRailProvider,
		Status: DepositCreated, State: DepositCreated, Amount: c.Amount, Fee: zero, FeePaidBy: payments.PaidByClient, Net: c.Amount,
		Credit: c.Amount, PaymentID: paymentID, ExpiresAt: now, CreatedAt: now, UpdatedAt: now,
		requestID: reqID, requestHash: hash,
	}
	if _, err := tx.Exec(ctx, `INSERT INTO funding_deposits (id, request_id, request_hash, user_id, login, method_id, method_kind, provider,
		payment_id, status, currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, credit_minor, fx_rate,
		lang, return_url, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.requestID, d.requestHash, d.UserID, d.Login, d.MethodID, string(d.Kind), d.Provider,
		d.PaymentID, string(d.State), cur.Code, d.Amount.Minor(), 0, string(d.FeePaidBy), d.Net.Minor(),
		cur.Code, d.Credit.Minor(), "", "", "", sqlstore.Micros(now), sqlstore.Micros(now), sqlstore.Micros(now)); err != nil {
		return "", errs.Wrap(op, err)
	}
	created := StatusChange{To: string(DepositCreated), Detail: "bank transfer " + c.ID + " of " + c.Amount.String(), At: now}
	if err := addHistory(ctx, tx, d.ID, created); err != nil {
		return "", errs.Wrap(op, err)
	}
	if err := s.emitDeposit(ctx, tx, d, created); err != nil {
		return "", errs.Wrap(op, err)
	}
	if err := s.depositPaid(ctx, tx, d, payments.Payment{ID: paymentID, Provider: BankRailProvider, MethodID: bankRailMethod,
		Gross: c.Amount, Fee: zero, FeePaidBy: payments.PaidByClient, Net: c.Amount, AccountAmount: c.Amount}); err != nil {
		return "", errs.Wrap(op, err)
	}
	return d.ID, nil
}

// bankRailMethod is the method id of deposits that arrived by a bank rail.
const bankRailMethod = "bank-rail"

// WithdrawalByRequest returns the customer's withdrawal made with request
// id requestID (WithdrawalRequest.ID), so a caller that derives the id from
// its own record (a seed 003 cash transfer) can follow it. It returns
// errs.NotFound when there is none.
func (s *Service) WithdrawalByRequest(ctx context.Context, customerUserID, requestID string) (Withdrawal, error) {
	w, err := loadWithdrawal(ctx, s.db, false, "user_id = ? AND request_id = ?", customerUserID, requestID)
	if err != nil {
		return Withdrawal{}, errs.Wrap("funding.WithdrawalByRequest", err)
	}
	return s.withdrawalView(ctx, w)
}
