package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Report is the outcome of Verify.
type Report struct {
	Accounts   int
	Transfers  int
	Currencies int
	Problems   []string
}

// OK reports whether the ledger is clean.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// String renders the report for people.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledger: %d accounts, %d transfers, %d currencies\n", r.Accounts, r.Transfers, r.Currencies)
	if r.OK() {
		b.WriteString("ledger: clean: every currency sums to zero and every balance equals its transfers\n")
		return b.String()
	}
	fmt.Fprintf(&b, "ledger: %d problems\n", len(r.Problems))
	for _, p := range r.Problems {
		b.WriteString("  - " + p + "\n")
	}
	return b.String()
}

// Verify checks the ledger's invariants in one consistent snapshot: per
// currency the posted balances sum to zero and pending debits equal pending
// credits; each account's cached sums equal the sums of its transfers; each
// account is within its bounds; each transfer's currency is its accounts'.
// It returns an error only when the check itself could not run.
func Verify(ctx context.Context, db *sqlstore.DB) (Report, error) {
	const op = "ledger.Verify"
	var r Report
	err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
		r = Report{}
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM ledger_accounts").Scan(&r.Accounts); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM ledger_transfers").Scan(&r.Transfers); err != nil {
			return err
		}
		// Per-currency sums.
		rows, err := tx.Query(ctx, currencySumsQuery)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cur string
			var posted, pending int64
			var n int
			if err := rows.Scan(&cur, &posted, &pending, &n); err != nil {
				_ = rows.Close()
				return err
			}
			r.Currencies++
			if posted != 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: posted balances sum to %d minor units, not 0", cur, posted))
			}
			if pending != 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: pending credits and debits differ by %d minor units", cur, pending))
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// Cached sums against the transfers.
		rows, err = tx.Query(ctx, cachedSumsQuery)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var dp, cp, dpend, cpend, sdp, scp, sdpend, scpend int64
			if err := rows.Scan(&id, &dp, &cp, &dpend, &cpend, &sdp, &scp, &sdpend, &scpend); err != nil {
				_ = rows.Close()
				return err
			}
			for _, c := range []struct {
				name         string
				cached, real int64
			}{{"posted debits", dp, sdp}, {"posted credits", cp, scp}, {"pending debits", dpend, sdpend}, {"pending credits", cpend, scpend}} {
				if c.cached != c.real {
					r.Problems = append(r.Problems, fmt.Sprintf("account %s: cached %s %d differ from its transfers' %d", id, c.name, c.cached, c.real))
				}
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// Bounds.
		rows, err = tx.Query(ctx, "SELECT "+accountColumns+" FROM ledger_accounts WHERE lower_bound IS NOT NULL OR upper_bound IS NOT NULL ORDER BY id")
		if err != nil {
			return err
		}
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				_ = rows.Close()
				return err
			}
			posted, out, in := a.normalised()
			if a.Lower != nil && posted-out < *a.Lower {
				r.Problems = append(r.Problems, fmt.Sprintf("account %s: available %d is below its lower bound %d", a.ID, posted-out, *a.Lower))
			}
			if a.Upper != nil && posted+in > *a.Upper {
				r.Problems = append(r.Problems, fmt.Sprintf("account %s: balance with pending credits %d is above its upper bound %d", a.ID, posted+in, *a.Upper))
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// Currencies of transfers against their accounts.
		var mismatched int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_transfers t
			JOIN ledger_accounts d ON d.id = t.debit_account_id JOIN ledger_accounts c ON c.id = t.credit_account_id
			WHERE t.currency <> d.currency OR t.currency <> c.currency`).Scan(&mismatched); err != nil {
			return err
		}
		if mismatched > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d transfers are in another currency than their accounts", mismatched))
		}
		return nil
	})
	if err != nil {
		return Report{}, errs.Wrap(op, err)
	}
	return r, nil
}

const currencySumsQuery = `SELECT currency, SUM(credits_posted - debits_posted), SUM(credits_pending - debits_pending), COUNT(*)
	FROM ledger_accounts GROUP BY currency ORDER BY currency`

const cachedSumsQuery = `SELECT a.id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
	COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.debit_account_id = a.id AND t.moves_balance = 1), 0),
	COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.credit_account_id = a.id AND t.moves_balance = 1), 0),
	COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.debit_account_id = a.id AND t.status = 'pending'), 0),
	COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.credit_account_id = a.id AND t.status = 'pending'), 0)
	FROM ledger_accounts a ORDER BY a.id`
