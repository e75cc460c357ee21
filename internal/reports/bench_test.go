package reports_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// seedRows writes users, deposits and withdrawals straight into the
// tables with the columns funding and identity write: driving thousands
// through the services would measure them, not the reports. One row in
// five is a withdrawal; rows are a minute apart.
func seedRows(b *testing.B, db *sqlstore.DB, rows, users int) {
	b.Helper()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
		for u := range users {
			if _, err := tx.Exec(ctx, `INSERT INTO identity_users (id, email, email_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				fmt.Sprintf("usr_%04d", u), fmt.Sprintf("user%d@example.com", u), fmt.Sprintf("user%d@example.com", u), 0, 0); err != nil {
				return err
			}
		}
		dep, err := tx.Prepare(ctx, `INSERT INTO funding_deposits (id, request_id, request_hash, user_id, login, method_id, method_kind, provider,
			payment_id, status, currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, credit_minor, expires_at, created_at, updated_at)
			VALUES (?, ?, 'h', ?, ?, 'card', 'card', 'sandbox', ?, ?, 'USD', ?, 280, 'client', ?, 'USD', ?, 0, ?, ?)`)
		if err != nil {
			return err
		}
		defer dep.Close()
		wd, err := tx.Prepare(ctx, `INSERT INTO funding_withdrawals (id, request_id, request_hash, user_id, login, method_id, method_kind, provider,
			payment_id, status, currency, amount_minor, fee_minor, fee_paid_by, net_minor, destination, created_at, updated_at)
			VALUES (?, ?, 'h', ?, ?, 'bank-transfer', 'bank_transfer', 'sandbox', ?, ?, 'USD', ?, 500, 'client', ?, 'IBAN', ?, ?)`)
		if err != nil {
			return err
		}
		defer wd.Close()
		for i := range rows {
			id := uuid.Must(uuid.NewV7()).String()
			user, login := fmt.Sprintf("usr_%04d", i%users), int64(9000000+i%users)
			at := sqlstore.Micros(start.Add(time.Duration(i) * time.Minute))
			gross := int64(1000 + (i%500)*100)
			if i%5 == 4 {
				_, err = wd.ExecContext(ctx, "wd_"+id, fmt.Sprint(i), user, login, "pay_"+id, []string{"completed", "awaiting_approval", "returned"}[i%3],
					gross, gross-500, at, at)
			} else {
				_, err = dep.ExecContext(ctx, "dep_"+id, fmt.Sprint(i), user, login, "pay_"+id, []string{"completed", "declined", "awaiting_payment", "completed"}[i%4],
					gross, gross-280, gross-280, at, at)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSearch(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		const rows = 5000
		seedRows(b, db, rows, 200)
		rep, err := reports.New(db)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		// The cursor of the tenth page of 50.
		deep := reports.Filter{}
		for range 10 {
			p, err := rep.Search(ctx, deep)
			if err != nil {
				b.Fatal(err)
			}
			deep.Cursor = p.Next
		}
		for _, c := range []struct {
			name string
			f    reports.Filter
		}{
			{"first page", reports.Filter{}},
			{"tenth page", deep},
			{"one user", reports.Filter{UserID: "usr_0042"}},
			{"e-mail", reports.Filter{Email: "user42@example.com"}},
			{"completed withdrawals", reports.Filter{Kind: reports.KindWithdrawal, Status: []string{"completed"}}},
			{"amount range in a month", reports.Filter{MinAmount: mustAmount("100.00", usd), MaxAmount: mustAmount("200.00", usd),
				From: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}},
		} {
			b.Run(c.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := rep.Search(ctx, c.f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("CSV of %d rows", rows), func(b *testing.B) {
			for b.Loop() {
				if err := rep.WriteCSV(ctx, io.Discard, reports.Filter{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}, schemas...)
}
