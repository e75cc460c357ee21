package loadtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestSeedWritesBalancedHistory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		var progress []int
		if err := Seed(ctx, db, SeedSpec{Accounts: 30, Deposits: 2300, Progress: func(n int) { progress = append(progress, n) }}); err != nil {
			t.Fatal(err)
		}
		if len(progress) == 0 || progress[len(progress)-1] != 2300 || !slices.IsSorted(progress) {
			t.Errorf("progress = %v, want a rising count up to 2300", progress)
		}
		// More deposits on the same accounts, then more accounts after them.
		if err := Seed(ctx, db, SeedSpec{Deposits: 100}); err != nil {
			t.Fatal(err)
		}
		if err := Seed(ctx, db, SeedSpec{Accounts: 5}); err != nil {
			t.Fatal(err)
		}
		count := func(q string, args ...any) int {
			t.Helper()
			var n int
			if err := db.QueryRow(ctx, q, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM identity_accounts`:                              35,
			`SELECT COUNT(*) FROM identity_accounts WHERE login >= 70000030`:      5,
			`SELECT COUNT(*) FROM funding_deposits WHERE status = 'completed'`:    2400,
			`SELECT COUNT(*) FROM funding_history`:                                5 * 2400,
			`SELECT COUNT(*) FROM payments WHERE status = 'succeeded'`:            2400,
			`SELECT COUNT(*) FROM pushes WHERE state = 'applied'`:                 2400,
			`SELECT COUNT(*) FROM jobs WHERE state = 'done'`:                      7 * 2400,
			`SELECT COUNT(*) FROM ledger_transfers`:                               3 * 2400,
			`SELECT COUNT(*) FROM compliance_activity WHERE status = 'completed'`: 2400,
		} {
			if got := count(q); got != want {
				t.Errorf("%s = %d, want %d", q, got, want)
			}
		}
		rep, err := ledger.Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Errorf("ledger after seeding:\n%s", rep)
		}
		var platform, net int64
		if err := db.QueryRow(ctx, `SELECT SUM(credits_posted - debits_posted) FROM ledger_accounts WHERE id LIKE 'platform:%'`).Scan(&platform); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT SUM(credit_minor) FROM funding_deposits`).Scan(&net); err != nil {
			t.Fatal(err)
		}
		if platform != net {
			t.Errorf("the platform accounts hold %d, the deposits credited %d", platform, net)
		}
		in, err := Inspect(ctx, db, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Settled() || len(in.Review) > 0 || len(in.Lost) > 0 || len(in.Dead) > 0 || in.Deposits["completed"] != 2400 {
			t.Errorf("the seeded history is not settled and final: %+v", in)
		}
		if err := Seed(ctx, db, SeedSpec{Accounts: -1}); err == nil {
			t.Error("Seed with a negative count: no error")
		}
	}, ledger.Schema, jobs.Schema, push.Schema, identity.Schema, payments.Schema, funding.Schema, compliance.Schema)
}

func TestSeedNeedsAccountsForDeposits(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, ledger.Schema, jobs.Schema, push.Schema, identity.Schema, payments.Schema, funding.Schema, compliance.Schema)
	if err := Seed(context.Background(), db, SeedSpec{Deposits: 1}); err == nil {
		t.Error("deposits without seeded accounts: no error")
	}
}
