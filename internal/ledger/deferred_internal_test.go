package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// lockedElsewhere reports whether another transaction holds a lock on the
// account's row that an update of its sums would wait for, by trying to
// take that lock (FOR NO KEY UPDATE, what an UPDATE of non-key columns
// takes) with NOWAIT from a transaction of its own (PostgreSQL). The
// FOR KEY SHARE lock that inserting a transfer takes on its accounts (the
// foreign key) does not count: it does not conflict.
func lockedElsewhere(t *testing.T, db *sqlstore.DB, id string) bool {
	t.Helper()
	ctx := context.Background()
	err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var got string
		return tx.QueryRow(ctx, "SELECT id FROM ledger_accounts WHERE id = ? FOR NO KEY UPDATE NOWAIT", id).Scan(&got)
	})
	var state interface{ SQLState() string }
	switch {
	case err == nil:
		return false
	case errors.As(err, &state) && state.SQLState() == "55P03": // lock_not_available
		return true
	default:
		t.Fatalf("probing the lock of %s: %v", id, err)
		return false
	}
}

// TestLocksOfABooking checks on PostgreSQL which rows a booking locks and
// when: the bounded account at once, the unbounded one only in the stage
// before the commit. The bounded account is created by another
// transaction between the booking's locking read and its unlocked one, so
// that the booking finds it bounded only then; it must still be locked and
// its bound checked.
func TestLocksOfABooking(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		if db.Dialect() != sqlstore.Postgres {
			t.Skip("SQLite has one writer: there are no row locks, and no other transaction commits while a booking runs")
		}
		ctx := context.Background()
		usd := money.MustCurrency("USD")
		l := New(db, clock.NewFake(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)))
		if _, err := l.CreateAccount(ctx, AccountSpec{ID: "psp", Kind: "psp_clearing", Currency: usd, Normal: DebitNormal}); err != nil {
			t.Fatal(err)
		}
		zero := int64(0)
		late := AccountSpec{ID: "customer:late", Kind: "customer", Currency: usd, Normal: CreditNormal, Lower: &zero}
		testHookBetweenReads = func() {
			testHookBetweenReads = nil
			if _, err := l.CreateAccount(ctx, late); err != nil {
				t.Errorf("creating %s between the reads: %v", late.ID, err)
			}
		}
		t.Cleanup(func() { testHookBetweenReads = nil })

		var atCommit map[string]bool
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			_, err := l.PostTx(ctx, tx, Transfer{ID: "overdraft", Debit: late.ID, Credit: "psp", Amount: money.New(1, usd)})
			if errs.CodeOf(err) != errs.Insufficient {
				t.Errorf("debit of the late account: err = %v, want EINSUFFICIENT (its bound checked)", err)
			}
			if testHookBetweenReads != nil {
				t.Error("the booking did not read the accounts twice")
			}
			if _, err := l.PostTx(ctx, tx, Transfer{ID: "deposit", Debit: "psp", Credit: late.ID, Amount: money.New(500, usd)}); err != nil {
				return err
			}
			if !lockedElsewhere(t, db, late.ID) {
				t.Error("the bounded account is not locked after booking")
			}
			if lockedElsewhere(t, db, "psp") {
				t.Error("the unbounded account is locked after booking, before the commit stage")
			}
			tx.BeforeCommit(sqlstore.StageAudit, func(context.Context, *sqlstore.Tx) error {
				atCommit = map[string]bool{"psp": lockedElsewhere(t, db, "psp")}
				return nil
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !atCommit["psp"] {
			t.Error("the unbounded account's sums were not written (and locked) before the audit stage")
		}
		a, err := l.Account(ctx, late.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b := a.Balance(); b.Posted.Minor() != 500 {
			t.Errorf("%s = %s, want 5.00", late.ID, b.Posted.Decimal())
		}
		r, err := Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("invariants broken:\n%s", r)
		}
	}, Schema)
}
