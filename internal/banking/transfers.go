package banking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Transfer is one cash transfer (a "transaction" of seed 003).
type Transfer struct {
	OrderID       string // "<unix millis>_<bank id>", as in the seed
	UserID        string
	Login         int64 // the trading account
	BankID        string
	BankName      string
	Type          TransferType
	Amount        money.Amount
	Status        TransferStatus
	FailureReason string
	ClientRef     string // the client's Idempotency-Key, if it sent one
	BrokerRef     string // our reference towards the bank rail
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TransferRequest is a cash-transfer instruction.
type TransferRequest struct {
	UserID string
	Type   TransferType
	Amount string // exact decimal, in the trading account's currency
	BankID string
	// Login is the trading account; 0 picks the user's first trading
	// account.
	Login     int64
	ClientRef string
}

// MinDepositUnits is the smallest deposit in major units of the account's
// currency ($10).
const MinDepositUnits = 10

// CashTransfer validates and records a transfer instruction. Deposits to a
// bank still awaiting micro-deposit confirmation are SCHEDULED; everything
// else starts PENDING. Errors carry the seed's messages:
//
//   - errs.Invalid: instruction type, amount (not a positive exact decimal
//     in the account's currency), MsgMinimumDeposit;
//   - errs.NotFound: MsgBankNotFound (unknown, someone else's, unlinked or
//     rejected bank), or an unknown trading account;
//   - errs.Forbidden: MsgTradingOnly for a signal account, MsgBankNotVerified
//     for a bank not verified enough for this instruction;
//   - errs.Insufficient: MsgInsufficient;
//   - errs.Unavailable when the balance cannot be read.
func (s *Service) CashTransfer(ctx context.Context, req TransferRequest) (Transfer, error) {
	const op = "banking.CashTransfer"
	if req.Type != Deposit && req.Type != Withdrawal {
		return Transfer{}, errs.E(errs.Invalid, op, "instructionType must be DEPOSIT or WITHDRAWAL")
	}
	if req.BankID == "" {
		return Transfer{}, errs.E(errs.Invalid, op, "bankId is required")
	}
	acc, err := s.tradingAccount(ctx, req.UserID, req.Login)
	if err != nil {
		return Transfer{}, err
	}
	cur, err := money.LookupCurrency(acc.Currency)
	if err != nil {
		return Transfer{}, errs.Wrap(op, err)
	}
	amount, err := money.ParsePositive(req.Amount, cur)
	if err != nil {
		return Transfer{}, errs.Wrap(op, err)
	}
	if req.Type == Deposit && amount.Minor() < MinDepositUnits*pow10(cur.Digits) {
		return Transfer{}, errs.E(errs.Invalid, op, MsgMinimumDeposit)
	}
	bank, err := s.Bank(ctx, req.UserID, req.BankID)
	if err != nil {
		return Transfer{}, err
	}
	status := Pending
	switch bank.Status {
	case BankPendingDelete, BankRejected:
		return Transfer{}, errs.E(errs.NotFound, op, MsgBankNotFound)
	case BankPending:
		return Transfer{}, errs.E(errs.Forbidden, op, MsgBankNotVerified)
	case BankPendingVerification:
		if req.Type == Withdrawal {
			return Transfer{}, errs.E(errs.Forbidden, op, MsgBankNotVerified)
		}
		status = Scheduled
	}
	var withdrawable money.Amount
	if req.Type == Withdrawal {
		if withdrawable, err = s.balances.Withdrawable(ctx, req.UserID, acc.Login, cur); err != nil {
			return Transfer{}, errs.Wrap(op, err)
		}
	}
	ref, err := uuid.NewV7()
	if err != nil {
		return Transfer{}, errs.Wrap(op, err)
	}
	now := s.now()
	t := Transfer{UserID: req.UserID, Login: acc.Login, BankID: bank.ID, BankName: bank.BankName, Type: req.Type, Amount: amount,
		Status: status, ClientRef: req.ClientRef, BrokerRef: "bt_" + ref.String(), CreatedAt: now, UpdatedAt: now}
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		if req.Type == Withdrawal {
			if err := s.checkFunds(ctx, tx, acc.Login, withdrawable, amount); err != nil {
				return err
			}
		}
		// Bank still linked? (It may have been unlinked meanwhile.)
		var st string
		if err := tx.QueryRow(ctx, `SELECT status FROM banking_banks WHERE id = ?`+tx.ForUpdate(), bank.ID).Scan(&st); err != nil {
			return errs.Wrap(op, err)
		}
		if BankStatus(st) == BankPendingDelete || BankStatus(st) == BankRejected {
			return errs.E(errs.NotFound, op, MsgBankNotFound)
		}
		for ms := now.UnixMilli(); ; ms++ {
			t.OrderID = fmt.Sprintf("%d_%s", ms, bank.ID)
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM banking_transfers WHERE order_id = ?`, t.OrderID).Scan(&n); err != nil {
				return errs.Wrap(op, err)
			}
			if n == 0 {
				break
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO banking_transfers (order_id, user_id, login, bank_id, transaction_type, amount_minor, currency,
			status, client_ref, broker_ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.OrderID, t.UserID, t.Login, t.BankID, string(t.Type), amount.Minor(), cur.Code, string(t.Status), t.ClientRef, t.BrokerRef,
			sqlstore.Micros(now), sqlstore.Micros(now))
		return errs.Wrap(op, err)
	})
	if err != nil {
		return Transfer{}, err
	}
	if req.Type == Withdrawal && s.funds != nil {
		return s.startWithdrawal(ctx, t, bank)
	}
	return t, nil
}

// withdrawalRequestID is the funding request id of a cash-transfer
// withdrawal.
func withdrawalRequestID(orderID string) string { return "bank:" + orderID }

// startWithdrawal requests the funding withdrawal of an accepted
// WITHDRAWAL, idempotently on its order id. A refusal (not enough money,
// a method or detail funding refuses) fails the transfer and is returned
// (not enough money with MsgInsufficient); when funding cannot be reached
// the transfer stays PENDING and SyncWithdrawals asks again.
func (s *Service) startWithdrawal(ctx context.Context, t Transfer, bank Bank) (Transfer, error) {
	const op = "banking.CashTransfer"
	cust, err := s.custs(ctx, t.UserID)
	if err != nil {
		s.log.WarnContext(ctx, "cash-transfer withdrawal not requested yet; retried later", "order", t.OrderID, "err", err)
		return t, nil
	}
	details := map[string]string{funding.DetailIBAN: bank.IBAN, funding.DetailHolderName: bank.HolderName}
	if bank.BIC != "" {
		details[funding.DetailBIC] = bank.BIC
	}
	_, err = s.funds.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: withdrawalRequestID(t.OrderID), Customer: cust, Login: t.Login,
		MethodID: "bank-transfer", Amount: t.Amount, Details: details, Confirmed: true})
	switch code := errs.CodeOf(err); {
	case err == nil:
		return t, nil
	case code == errs.Unavailable || code == errs.Internal:
		s.log.WarnContext(ctx, "cash-transfer withdrawal not requested yet; retried later", "order", t.OrderID, "err", err)
		return t, nil
	default:
		if ferr := s.finish(ctx, t.OrderID, Failed, errs.MessageOf(err)); ferr != nil {
			return Transfer{}, errs.Wrap(op, ferr)
		}
		if code == errs.Insufficient {
			return Transfer{}, errs.E(errs.Insufficient, op, MsgInsufficient)
		}
		return Transfer{}, errs.Wrap(op, err)
	}
}

// finish moves a PENDING transfer to SUCCESS or FAILED; a transfer that
// is no longer PENDING is left alone.
func (s *Service) finish(ctx context.Context, orderID string, to TransferStatus, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE banking_transfers SET status = ?, failure_reason = ?, updated_at = ? WHERE order_id = ? AND status = ?`,
		string(to), reason, sqlstore.Micros(s.now()), orderID, string(Pending))
	return err
}

// SyncWithdrawals copies the outcome of the funding withdrawals of PENDING
// cash-transfer withdrawals: completed is SUCCESS; rejected, failed or
// returned is FAILED (funding gives the money back). A withdrawal funding
// does not know yet is requested again. Run it from a periodic job; it
// returns how many transfers it finished, and a database error if the
// transfers cannot be read. Without Options.Funds it does nothing.
func (s *Service) SyncWithdrawals(ctx context.Context) (int, error) {
	const op = "banking.SyncWithdrawals"
	if s.funds == nil {
		return 0, nil
	}
	pending, err := s.pendingWithdrawals(ctx)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	n := 0
	for _, t := range pending {
		w, err := s.funds.WithdrawalByRequest(ctx, t.UserID, withdrawalRequestID(t.OrderID))
		if errs.Is(err, errs.NotFound) {
			if bank, berr := s.bankAny(ctx, t.BankID); berr == nil {
				_, _ = s.startWithdrawal(ctx, t, bank)
			}
			continue
		}
		if err != nil {
			s.log.WarnContext(ctx, "cash-transfer withdrawal not read", "order", t.OrderID, "err", err)
			continue
		}
		to, reason := Pending, ""
		switch w.Status {
		case funding.WithdrawalCompleted:
			to = Success
		case funding.WithdrawalRejected, funding.WithdrawalFailed, funding.WithdrawalReturned:
			to, reason = Failed, "withdrawal "+string(w.Status)
		}
		if to == Pending {
			continue
		}
		if err := s.finish(ctx, t.OrderID, to, reason); err != nil {
			return n, errs.Wrap(op, err)
		}
		n++
	}
	return n, nil
}

func (s *Service) pendingWithdrawals(ctx context.Context) ([]Transfer, error) {
	rows, err := s.db.Query(ctx, transferSelect+` WHERE t.transaction_type = ? AND t.status = ? ORDER BY t.created_at LIMIT 500`,
		string(Withdrawal), string(Pending))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Transfer
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// bankAny returns a bank whatever its owner or status.
func (s *Service) bankAny(ctx context.Context, bankID string) (Bank, error) {
	return scanBank(s.db.QueryRow(ctx, `SELECT `+bankColumns+` FROM banking_banks WHERE id = ?`, bankID))
}

// checkFunds serialises withdrawals of one login and refuses one that the
// withdrawable balance, less the withdrawals already accepted and not
// settled, does not cover.
func (s *Service) checkFunds(ctx context.Context, tx *sqlstore.Tx, login int64, withdrawable, amount money.Amount) error {
	const op = "banking.checkFunds"
	if tx.Dialect() == sqlstore.Postgres {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, login); err != nil {
			return errs.Wrap(op, err)
		}
	}
	// With Funds, accepted withdrawals are funding withdrawals, which the
	// withdrawable amount already counts (and funding checks again).
	var open int64
	if s.funds == nil {
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(amount_minor), 0) FROM banking_transfers
			WHERE login = ? AND transaction_type = ? AND status IN (?, ?)`, login, string(Withdrawal), string(Scheduled), string(Pending)).Scan(&open); err != nil {
			return errs.Wrap(op, err)
		}
	}
	if withdrawable.Minor()-open < amount.Minor() {
		return errs.E(errs.Insufficient, op, MsgInsufficient)
	}
	return nil
}

// tradingAccount returns the user's trading account login (or the first
// one when login is 0). It returns errs.NotFound for an account the user
// does not own and errs.Forbidden (MsgTradingOnly) for a signal account.
func (s *Service) tradingAccount(ctx context.Context, userID string, login int64) (identity.Account, error) {
	const op = "banking.tradingAccount"
	accounts, err := s.accounts.Accounts(ctx, userID)
	if err != nil {
		return identity.Account{}, errs.Wrap(op, err)
	}
	sawSignal := false
	for _, a := range accounts {
		if login != 0 && a.Login != login {
			continue
		}
		if a.Kind == identity.KindSignal {
			sawSignal = true
			continue
		}
		return a, nil
	}
	if sawSignal {
		return identity.Account{}, errs.E(errs.Forbidden, op, MsgTradingOnly)
	}
	if login != 0 {
		return identity.Account{}, errs.E(errs.NotFound, op, "Trading account not found")
	}
	return identity.Account{}, errs.E(errs.NotFound, op, "You have no trading account to fund")
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

// Settle records the bank rail's outcome of a PENDING transfer: SUCCESS,
// or FAILED with a reason. With Options.Funds, a DEPOSIT settled SUCCESS is
// credited to its trading account in the same transaction (funding's
// BankDepositTx, idempotent on the order id), and a FAILED one books
// nothing. It returns errs.NotFound for an unknown order, errs.Conflict for
// a transfer that is not PENDING or for a WITHDRAWAL while Funds is set (its
// status follows its funding withdrawal: SyncWithdrawals), and the errors
// of Funds.
func (s *Service) Settle(ctx context.Context, orderID string, ok bool, reason string) (Transfer, error) {
	const op = "banking.Settle"
	to := Success
	if !ok {
		to = Failed
	}
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var status, typ, userID, cur string
		var login, minor int64
		err := tx.QueryRow(ctx, `SELECT status, transaction_type, user_id, login, amount_minor, currency FROM banking_transfers
			WHERE order_id = ?`+tx.ForUpdate(), orderID).Scan(&status, &typ, &userID, &login, &minor, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, MsgTransactionNF)
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		if TransferStatus(status) != Pending {
			return errs.Ef(errs.Conflict, op, "the transfer is %s, not PENDING", status)
		}
		if !ok && s.funds != nil && TransferType(typ) == Withdrawal {
			return errs.E(errs.Conflict, op, "a cash-transfer withdrawal follows its funding withdrawal (cashier withdrawals approve or reject)")
		}
		if ok && s.funds != nil {
			switch TransferType(typ) {
			case Withdrawal:
				return errs.E(errs.Conflict, op, "a cash-transfer withdrawal follows its funding withdrawal (cashier withdrawals approve or reject)")
			case Deposit:
				c, err := money.LookupCurrency(cur)
				if err != nil {
					return errs.Wrap(op, err)
				}
				if _, err := s.funds.BankDepositTx(ctx, tx, funding.BankCredit{ID: orderID, UserID: userID, Login: login,
					Amount: money.New(minor, c)}); err != nil {
					return errs.Wrap(op, err)
				}
			}
		}
		_, err = tx.Exec(ctx, `UPDATE banking_transfers SET status = ?, failure_reason = ?, updated_at = ? WHERE order_id = ?`,
			string(to), reason, sqlstore.Micros(s.now()), orderID)
		return errs.Wrap(op, err)
	})
	if err != nil {
		return Transfer{}, err
	}
	return s.transfer(ctx, `t.order_id = ?`, orderID)
}

const transferSelect = `SELECT t.order_id, t.user_id, t.login, t.bank_id, b.bank_name, t.transaction_type, t.amount_minor, t.currency,
	t.status, t.failure_reason, t.client_ref, t.broker_ref, t.created_at, t.updated_at
	FROM banking_transfers t JOIN banking_banks b ON b.id = t.bank_id`

func scanTransfer(row interface{ Scan(...any) error }) (Transfer, error) {
	var t Transfer
	var typ, status, cur string
	var minor, created, updated int64
	if err := row.Scan(&t.OrderID, &t.UserID, &t.Login, &t.BankID, &t.BankName, &typ, &minor, &cur, &status, &t.FailureReason,
		&t.ClientRef, &t.BrokerRef, &created, &updated); err != nil {
		return Transfer{}, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return Transfer{}, err
	}
	t.Type, t.Status, t.Amount = TransferType(typ), TransferStatus(status), money.New(minor, c)
	t.CreatedAt, t.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
	return t, nil
}

func (s *Service) transfer(ctx context.Context, where string, args ...any) (Transfer, error) {
	t, err := scanTransfer(s.db.QueryRow(ctx, transferSelect+` WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, errs.E(errs.NotFound, "banking.Transaction", MsgTransactionNF)
	}
	if err != nil {
		return Transfer{}, errs.Wrap("banking.Transaction", err)
	}
	return t, nil
}

// Transaction returns one of the user's transfers. It returns errs.NotFound
// with MsgTransactionNF for an unknown order or one of another user.
func (s *Service) Transaction(ctx context.Context, userID, orderID string) (Transfer, error) {
	return s.transfer(ctx, `t.order_id = ? AND t.user_id = ?`, orderID, userID)
}

// Query selects transfers. Limit must be 1–100 and Offset not negative;
// Type and Status are optional filters.
type Query struct {
	Limit, Offset int
	Type          TransferType
	Status        TransferStatus
}

// Limits of Query.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Page is one page of transfers with the total that matched.
type Page struct {
	Results []Transfer
	Total   int
	Limit   int
	Offset  int
	HasMore bool
}

// Transactions lists the user's transfers, newest first. It returns
// errs.Invalid for a limit outside 1–100, a negative offset, or an unknown
// type (MsgInvalidType) or status (MsgInvalidStatus).
func (s *Service) Transactions(ctx context.Context, userID string, q Query) (Page, error) {
	const op = "banking.Transactions"
	switch {
	case q.Limit < 1 || q.Limit > MaxLimit:
		return Page{}, errs.Ef(errs.Invalid, op, "limit must be between 1 and %d", MaxLimit)
	case q.Offset < 0:
		return Page{}, errs.E(errs.Invalid, op, "offset must not be negative")
	case q.Type != "" && q.Type != Deposit && q.Type != Withdrawal:
		return Page{}, errs.E(errs.Invalid, op, MsgInvalidType)
	case q.Status != "" && q.Status != Scheduled && q.Status != Pending && q.Status != Success && q.Status != Failed:
		return Page{}, errs.E(errs.Invalid, op, MsgInvalidStatus)
	}
	where := []string{"t.user_id = ?"}
	args := []any{userID}
	if q.Type != "" {
		where, args = append(where, "t.transaction_type = ?"), append(args, string(q.Type))
	}
	if q.Status != "" {
		where, args = append(where, "t.status = ?"), append(args, string(q.Status))
	}
	cond := strings.Join(where, " AND ")
	p := Page{Results: []Transfer{}, Limit: q.Limit, Offset: q.Offset}
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM banking_transfers t WHERE `+cond, args...).Scan(&p.Total); err != nil {
		return Page{}, errs.Wrap(op, err)
	}
	rows, err := s.db.Query(ctx, transferSelect+` WHERE `+cond+` ORDER BY t.created_at DESC, t.order_id DESC LIMIT ? OFFSET ?`,
		append(args, q.Limit, q.Offset)...)
	if err != nil {
		return Page{}, errs.Wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			return Page{}, errs.Wrap(op, err)
		}
		p.Results = append(p.Results, t)
	}
	if err := rows.Err(); err != nil {
		return Page{}, errs.Wrap(op, err)
	}
	p.HasMore = q.Offset+len(p.Results) < p.Total
	return p, nil
}
