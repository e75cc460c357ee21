package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const accountColumns = "id, kind, currency, normal, lower_bound, upper_bound, debits_posted, credits_posted, debits_pending, credits_pending, metadata, created_at"

// CreateAccount creates an account. Creating it again with the same spec
// returns the existing account; with another spec it fails with
// errs.Conflict. An invalid spec fails with errs.Invalid.
func (l *Ledger) CreateAccount(ctx context.Context, spec AccountSpec) (Account, error) {
	var a Account
	err := l.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		a, err = l.CreateAccountTx(ctx, tx, spec)
		return err
	})
	return a, err
}

// CreateAccountTx is CreateAccount inside the caller's transaction.
func (l *Ledger) CreateAccountTx(ctx context.Context, tx *sqlstore.Tx, spec AccountSpec) (Account, error) {
	const op = "ledger.CreateAccount"
	if err := validateSpec(spec); err != nil {
		return Account{}, err
	}
	now := l.clock.Now()
	res, err := tx.Exec(ctx, `INSERT INTO ledger_accounts (`+accountColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?) ON CONFLICT (id) DO NOTHING`,
		spec.ID, spec.Kind, spec.Currency.Code, string(spec.Normal), nullable(spec.Lower), nullable(spec.Upper), spec.Metadata, sqlstore.Micros(now))
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	a, err := pendingOf(tx).account(getAccount(ctx, tx, spec.ID, false))
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && !sameSpec(a.AccountSpec, spec) {
		return Account{}, errs.Ef(errs.Conflict, op, "account %s exists with other settings", spec.ID)
	}
	return a, nil
}

func validateSpec(s AccountSpec) error {
	const op = "ledger.CreateAccount"
	switch {
	case s.ID == "" || len(s.ID) > 128:
		return errs.E(errs.Invalid, op, "account id must be 1 to 128 bytes")
	case s.Kind == "":
		return errs.E(errs.Invalid, op, "account kind is required")
	case s.Currency.Code == "":
		return errs.E(errs.Invalid, op, "account currency is required")
	case s.Normal != CreditNormal && s.Normal != DebitNormal:
		return errs.Ef(errs.Invalid, op, "account normal side must be credit or debit, not %q", s.Normal)
	case s.Lower != nil && s.Upper != nil && *s.Lower > *s.Upper:
		return errs.E(errs.Invalid, op, "account lower bound is above its upper bound")
	}
	return nil
}

func sameSpec(a, b AccountSpec) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && a.Kind == b.Kind && a.Currency == b.Currency && a.Normal == b.Normal &&
		eq(a.Lower, b.Lower) && eq(a.Upper, b.Upper) && a.Metadata == b.Metadata
}

func nullable(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

type scanner interface{ Scan(dest ...any) error }

func scanAccount(s scanner) (Account, error) {
	var (
		a            Account
		cur, normal  string
		lower, upper sql.NullInt64
		created      int64
	)
	if err := s.Scan(&a.ID, &a.Kind, &cur, &normal, &lower, &upper, &a.debitsPosted, &a.creditsPosted,
		&a.debitsPending, &a.creditsPending, &a.Metadata, &created); err != nil {
		return Account{}, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return Account{}, fmt.Errorf("account %s has unknown currency %q: %w", a.ID, cur, err)
	}
	a.Currency, a.Normal, a.CreatedAt = c, Side(normal), sqlstore.FromMicros(created)
	if lower.Valid {
		a.Lower = &lower.Int64
	}
	if upper.Valid {
		a.Upper = &upper.Int64
	}
	return a, nil
}

type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getAccount(ctx context.Context, q querier, id string, forUpdate bool) (Account, error) {
	query := "SELECT " + accountColumns + " FROM ledger_accounts WHERE id = ?"
	if tx, ok := q.(*sqlstore.Tx); ok && forUpdate {
		query += tx.ForUpdate()
	}
	a, err := scanAccount(q.QueryRow(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, errs.Ef(errs.NotFound, "ledger.Account", "account %s not found", id)
	}
	return a, err
}

// Account returns the account with its current balance, or errs.NotFound.
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	a, err := getAccount(ctx, l.db, id, false)
	return a, errs.Wrap("ledger.Account", err)
}

// AccountTx returns the account inside the caller's transaction, with
// what the transaction has booked on it so far (an unbounded account's
// sums are written only just before the commit; see PostTx). It does not
// lock the account. It returns errs.NotFound for an unknown account.
func (l *Ledger) AccountTx(ctx context.Context, tx *sqlstore.Tx, id string) (Account, error) {
	a, err := pendingOf(tx).account(getAccount(ctx, tx, id, false))
	return a, errs.Wrap("ledger.Account", err)
}

// Accounts lists accounts whose id starts with prefix (all when empty), in
// id order.
func (l *Ledger) Accounts(ctx context.Context, prefix string) ([]Account, error) {
	rows, err := l.db.Query(ctx, "SELECT "+accountColumns+" FROM ledger_accounts WHERE id LIKE ? ESCAPE '\\' ORDER BY id", likePrefix(prefix))
	if err != nil {
		return nil, errs.Wrap("ledger.Accounts", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, errs.Wrap("ledger.Accounts", err)
		}
		out = append(out, a)
	}
	return out, errs.Wrap("ledger.Accounts", rows.Err())
}

func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
