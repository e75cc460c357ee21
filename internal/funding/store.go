package funding

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// StatusChange is one entry of a deposit's or withdrawal's history.
type StatusChange struct {
	Seq    int
	From   string
	To     string
	Reason string // why, e.g. a decline code, "auto_approved", "late_payment"
	Actor  string // the operator, for operator decisions; "" for the system
	Detail string
	At     time.Time
}

// newIDs returns a new funding id with prefix ("dep_" or "wd_") and the
// payment id that goes with it ("pay_" and the same UUIDv7), so that the
// payment of a deposit or withdrawal is found again from its id alone.
func newIDs(prefix string) (id, paymentID string, err error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", "", errs.Wrap("funding.newID", err)
	}
	return prefix + u.String(), payments.IDPrefix + u.String(), nil
}

func requestHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkRequestID checks an idempotency key from a screen or API.
func checkRequestID(op, id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "\x00\r\n") {
		return errs.E(errs.Invalid, op, "a request id of 1 to 128 characters is required")
	}
	return nil
}

// addHistory records a status change of owner in tx.
func addHistory(ctx context.Context, tx *sqlstore.Tx, ownerID string, c StatusChange) error {
	_, err := tx.Exec(ctx, `INSERT INTO funding_history (owner_id, seq, from_status, to_status, reason, actor, detail, at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM funding_history WHERE owner_id = ?), ?, ?, ?, ?, ?, ?)`,
		ownerID, ownerID, c.From, c.To, c.Reason, c.Actor, c.Detail, sqlstore.Micros(c.At))
	return errs.Wrap("funding.history", err)
}

func history(ctx context.Context, db *sqlstore.DB, ownerID string) ([]StatusChange, error) {
	const op = "funding.History"
	rows, err := db.Query(ctx, `SELECT seq, from_status, to_status, reason, actor, detail, at FROM funding_history WHERE owner_id = ? ORDER BY seq`, ownerID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []StatusChange
	for rows.Next() {
		var c StatusChange
		var at int64
		if err := rows.Scan(&c.Seq, &c.From, &c.To, &c.Reason, &c.Actor, &c.Detail, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		c.At = sqlstore.FromMicros(at)
		out = append(out, c)
	}
	return out, errs.Wrap(op, rows.Err())
}

func encodeFailure(b *payments.ErrorBody) string {
	if b == nil {
		return ""
	}
	raw, _ := json.Marshal(b)
	return string(raw)
}

func decodeFailure(s string) (*payments.ErrorBody, error) {
	if s == "" {
		return nil, nil
	}
	b := new(payments.ErrorBody)
	if err := json.Unmarshal([]byte(s), b); err != nil {
		return nil, errs.Wrap("funding.decodeFailure", err)
	}
	return b, nil
}

type rowScanner interface{ Scan(dest ...any) error }

const depositColumns = `id, request_id, request_hash, user_id, login, method_id, method_kind, provider, payment_id, status,
	currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, credit_minor, fx_rate, push_id,
	failure, flag, lang, return_url, expires_at, created_at, updated_at, final_at, email, country, hold_rule, hold_note`

func scanDeposit(row rowScanner) (Deposit, error) {
	var (
		d                               Deposit
		kind, status, paidBy, cur, acur string
		gross, fee, net, credit         int64
		rate, failure                   string
		expires, created, updated       int64
		final                           sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.requestID, &d.requestHash, &d.UserID, &d.Login, &d.MethodID, &kind, &d.Provider, &d.PaymentID, &status,
		&cur, &gross, &fee, &paidBy, &net, &acur, &credit, &rate, &d.PushID,
		&failure, &d.Flag, &d.lang, &d.returnURL, &expires, &created, &updated, &final, &d.email, &d.country, &d.HoldRule, &d.HoldNote); err != nil {
		return Deposit{}, err
	}
	pc, err := money.LookupCurrency(cur)
	if err != nil {
		return Deposit{}, err
	}
	ac, err := money.LookupCurrency(acur)
	if err != nil {
		return Deposit{}, err
	}
	d.Kind, d.State, d.FeePaidBy = psp.MethodKind(kind), DepositStatus(status), payments.Payer(paidBy)
	d.Status = d.State
	d.Amount, d.Fee, d.Net, d.Credit = money.New(gross, pc), money.New(fee, pc), money.New(net, pc), money.New(credit, ac)
	if rate != "" {
		if d.FXRate, err = money.ParseRate(rate); err != nil {
			return Deposit{}, err
		}
	}
	if d.Failure, err = decodeFailure(failure); err != nil {
		return Deposit{}, err
	}
	d.ExpiresAt, d.CreatedAt, d.UpdatedAt, d.FinalAt = sqlstore.FromMicros(expires), sqlstore.FromMicros(created), sqlstore.FromMicros(updated), sqlstore.FromNullMicros(final)
	return d, nil
}

type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadDeposit reads one deposit by a condition ("id = ?"), locking it in a
// transaction when lock is set. It returns errs.NotFound when none matches.
func loadDeposit(ctx context.Context, q querier, lock bool, where string, args ...any) (Deposit, error) {
	query := "SELECT " + depositColumns + " FROM funding_deposits WHERE " + where
	if tx, ok := q.(*sqlstore.Tx); ok && lock {
		query += tx.ForUpdate()
	}
	d, err := scanDeposit(q.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Deposit{}, errs.E(errs.NotFound, "funding.Deposit", "deposit not found")
	}
	return d, errs.Wrap("funding.loadDeposit", err)
}

func listDeposits(ctx context.Context, q querier, where string, limit int, args ...any) ([]Deposit, error) {
	const op = "funding.listDeposits"
	rows, err := q.Query(ctx, "SELECT "+depositColumns+" FROM funding_deposits WHERE "+where+" ORDER BY id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Deposit
	for rows.Next() {
		d, err := scanDeposit(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, d)
	}
	return out, errs.Wrap(op, rows.Err())
}

const withdrawalColumns = `id, request_id, request_hash, user_id, email, country, kyc_level, lang, login, method_id, method_kind, provider,
	payment_id, status, currency, amount_minor, fee_minor, fee_paid_by, net_minor, destination, auto_approved, decided_by, reason,
	debit_push_id, return_push_id, code_hash, code_expires_at, code_attempts, code_sent, failure, flag, created_at, updated_at, final_at,
	hold_rule, hold_note, first_approved_by, first_approved_at`

func scanWithdrawal(row rowScanner) (Withdrawal, error) {
	var (
		w                              Withdrawal
		kind, status, cur, paidBy      string
		amount, fee, net               int64
		destination, failure           string
		auto, codeSent                 int
		codeExpires, final, firstAt    sql.NullInt64
		created, updated               int64
		requestID, requestHash, region string
	)
	if err := row.Scan(&w.ID, &requestID, &requestHash, &w.UserID, &w.customer.Email, &region, &w.customer.KYCLevel, &w.customer.Lang,
		&w.Login, &w.MethodID, &kind, &w.Provider, &w.PaymentID, &status, &cur, &amount, &fee, &paidBy, &net, &destination,
		&auto, &w.DecidedBy, &w.Reason, &w.DebitPushID, &w.ReturnPushID, &w.codeHash, &codeExpires, &w.codeAttempts, &codeSent,
		&failure, &w.Flag, &created, &updated, &final, &w.HoldRule, &w.HoldNote, &w.FirstApprovedBy, &firstAt); err != nil {
		return Withdrawal{}, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return Withdrawal{}, err
	}
	w.requestID, w.requestHash = requestID, requestHash
	w.customer.UserID, w.customer.Country = w.UserID, region
	w.Kind, w.State, w.FeePaidBy = psp.MethodKind(kind), WithdrawalStatus(status), payments.Payer(paidBy)
	w.Status = w.State
	w.Amount, w.Fee, w.Net = money.New(amount, c), money.New(fee, c), money.New(net, c)
	var dest destinationRecord
	if err := json.Unmarshal([]byte(destination), &dest); err != nil {
		return Withdrawal{}, err
	}
	w.destination, w.Destination = dest.Destination, dest.Label
	w.AutoApproved, w.codeSent = auto != 0, codeSent != 0
	w.codeExpiresAt = sqlstore.FromNullMicros(codeExpires)
	if w.Failure, err = decodeFailure(failure); err != nil {
		return Withdrawal{}, err
	}
	w.CreatedAt, w.UpdatedAt, w.FinalAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated), sqlstore.FromNullMicros(final)
	w.FirstApprovedAt = sqlstore.FromNullMicros(firstAt)
	return w, nil
}

func loadWithdrawal(ctx context.Context, q querier, lock bool, where string, args ...any) (Withdrawal, error) {
	query := "SELECT " + withdrawalColumns + " FROM funding_withdrawals WHERE " + where
	if tx, ok := q.(*sqlstore.Tx); ok && lock {
		query += tx.ForUpdate()
	}
	w, err := scanWithdrawal(q.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Withdrawal{}, errs.E(errs.NotFound, "funding.Withdrawal", "withdrawal not found")
	}
	return w, errs.Wrap("funding.loadWithdrawal", err)
}

func listWithdrawals(ctx context.Context, q querier, where string, limit int, args ...any) ([]Withdrawal, error) {
	const op = "funding.listWithdrawals"
	rows, err := q.Query(ctx, "SELECT "+withdrawalColumns+" FROM funding_withdrawals WHERE "+where+" ORDER BY id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Withdrawal
	for rows.Next() {
		w, err := scanWithdrawal(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, w)
	}
	return out, errs.Wrap(op, rows.Err())
}

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return 50
	case limit > 500:
		return 500
	}
	return limit
}
