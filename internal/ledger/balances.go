package ledger

import (
	"context"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Balance returns an account's current balance, or errs.NotFound.
func (l *Ledger) Balance(ctx context.Context, accountID string) (Balance, error) {
	a, err := l.Account(ctx, accountID)
	if err != nil {
		return Balance{}, err
	}
	return a.Balance(), nil
}

// BalanceAt returns an account's posted balance as it was at instant t
// (transfers posted at or before t), seen from its normal side. It returns
// errs.NotFound for an unknown account.
func (l *Ledger) BalanceAt(ctx context.Context, accountID string, t time.Time) (money.Amount, error) {
	const op = "ledger.BalanceAt"
	a, err := getAccount(ctx, l.db, accountID, false)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	net, err := netPosted(ctx, l.db, accountID, t)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	return money.New(a.sign()*net, a.Currency), nil
}

// netPosted is credits minus debits of the account up to and including t.
func netPosted(ctx context.Context, q querier, accountID string, t time.Time) (int64, error) {
	var credits, debits int64
	err := q.QueryRow(ctx, `SELECT
		COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE credit_account_id = ? AND moves_balance = 1 AND posted_at <= ?), 0),
		COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE debit_account_id = ? AND moves_balance = 1 AND posted_at <= ?), 0)`,
		accountID, sqlstore.Micros(t), accountID, sqlstore.Micros(t)).Scan(&credits, &debits)
	return credits - debits, err
}

// StatementLine is one posted movement on an account.
type StatementLine struct {
	TransferID string
	Code       string
	Metadata   string
	PostedAt   time.Time
	// Amount is signed from the account's normal side: positive grows the
	// balance.
	Amount  money.Amount
	Balance money.Amount // the balance after this line
}

// Statement is an account's posted movements over a period.
type Statement struct {
	AccountID string
	From, To  time.Time
	Opening   money.Amount // balance just before From
	Lines     []StatementLine
	Closing   money.Amount // balance at To (or after the last line when truncated)
	Truncated bool         // more lines exist than the limit allowed
}

// Statement lists the posted movements of an account with From <= posted_at
// < To, oldest first, with a running balance; at most limit lines. It
// returns errs.NotFound for an unknown account and errs.Invalid for an
// empty period.
func (l *Ledger) Statement(ctx context.Context, accountID string, from, to time.Time, limit int) (Statement, error) {
	const op = "ledger.Statement"
	if !from.Before(to) {
		return Statement{}, errs.E(errs.Invalid, op, "statement period is empty")
	}
	if limit <= 0 {
		limit = 1000
	}
	a, err := getAccount(ctx, l.db, accountID, false)
	if err != nil {
		return Statement{}, errs.Wrap(op, err)
	}
	opening, err := netPosted(ctx, l.db, accountID, from.Add(-time.Microsecond))
	if err != nil {
		return Statement{}, errs.Wrap(op, err)
	}
	rows, err := l.db.Query(ctx, `SELECT id, code, metadata, posted_at, amount, credit_account_id = ? FROM ledger_transfers
		WHERE (debit_account_id = ? OR credit_account_id = ?) AND moves_balance = 1 AND posted_at >= ? AND posted_at < ?
		ORDER BY posted_at, seq LIMIT ?`, accountID, accountID, accountID, sqlstore.Micros(from), sqlstore.Micros(to), limit+1)
	if err != nil {
		return Statement{}, errs.Wrap(op, err)
	}
	defer rows.Close()
	st := Statement{AccountID: accountID, From: from, To: to, Opening: money.New(a.sign()*opening, a.Currency)}
	running := a.sign() * opening
	for rows.Next() {
		var (
			line     StatementLine
			posted   int64
			amount   int64
			isCredit bool
		)
		if err := rows.Scan(&line.TransferID, &line.Code, &line.Metadata, &posted, &amount, &isCredit); err != nil {
			return Statement{}, errs.Wrap(op, err)
		}
		if len(st.Lines) == limit {
			st.Truncated = true
			break
		}
		signed := amount
		if !isCredit {
			signed = -amount
		}
		signed *= a.sign()
		running += signed
		line.PostedAt = sqlstore.FromMicros(posted)
		line.Amount, line.Balance = money.New(signed, a.Currency), money.New(running, a.Currency)
		st.Lines = append(st.Lines, line)
	}
	if err := rows.Err(); err != nil {
		return Statement{}, errs.Wrap(op, err)
	}
	st.Closing = money.New(running, a.Currency)
	return st, nil
}
