// Package reports is the back office's read model of the money flows:
// search over deposits and withdrawals with keyset paging, CSV export, the
// whole timeline of one transaction, the dashboard's daily figures,
// approval times, decline reasons and deposit funnel, and the dashboard's
// charts as inline SVG.
//
// It owns no tables. It reads, with plain SQL through internal/sqlstore,
// the tables of four other packages and therefore depends on their schemas:
//
//   - internal/funding (00400): funding_deposits, funding_withdrawals and
//     funding_history — the transactions, their stored state and flag, and
//     every status change with its actor and reason;
//   - internal/payments (00300): payments, payment_status_history and
//     payment_events — the payment behind a transaction, its status changes
//     and the provider's events kept verbatim, and decline codes;
//   - internal/push (00100): pushes and push_events — the balance changes
//     sent to the trading platform and what became of them;
//   - internal/identity (00200): identity_users (e-mail addresses) and
//     identity_tokens of kind "cashier" (cashier sessions: a screen opened).
//
// A change to one of those schemas must keep this package's queries
// working; its tests run every query on SQLite and PostgreSQL against the
// real migrations, over data that the real services created (funding with
// the sandbox provider and the cTrader simulator), so a schema change that
// breaks a report fails them.
//
// Money is never a float: amounts are money.Amount read from minor units,
// and percentages are integer basis points.
package reports

import (
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Service answers the back office's questions about deposits and
// withdrawals. It is safe for concurrent use.
type Service struct {
	db *sqlstore.DB
	// csvBatch is how many rows WriteCSV reads per query.
	csvBatch int
}

// New returns a Service reading db, whose schema must include the funding,
// payments, push and identity tables. It returns errs.Invalid without a
// database.
func New(db *sqlstore.DB) (*Service, error) {
	if db == nil {
		return nil, errs.E(errs.Invalid, "reports.New", "a database is required")
	}
	return &Service{db: db, csvBatch: defaultCSVBatch}, nil
}

// amount builds an Amount from stored minor units and a currency code. A
// code this process does not know is an internal error: the row was written
// by a service that knew it.
func amount(op string, minor int64, code string) (money.Amount, error) {
	cur, err := money.LookupCurrency(code)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, errs.Ef(errs.Internal, op, "stored currency %q is not known", code))
	}
	a, err := money.FromMinor(minor, cur)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	return a, nil
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// utcDay returns the start of t's day in UTC.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
