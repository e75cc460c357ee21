package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// The fixture's psp:clearing:USD is unbounded: its sums are written just
// before the commit. These tests check that nobody can tell.

// TestConcurrentPostingsToOneUnboundedAccountAddUp has 16 goroutines book
// deposits, fees, holds and their settlements on the same unbounded
// clearing and fee accounts, each in a transaction that does more work
// after booking; the shared accounts must end with exactly the sum of what
// was booked, and the ledger must verify.
func TestConcurrentPostingsToOneUnboundedAccountAddUp(t *testing.T) {
	const (
		workers = 16
		perWork = 40
	)
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: "fees:income:USD", Kind: "fee_income", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
			t.Fatal(err)
		}
		type totals struct{ clearing, fees, customers, clearingPendingIn int64 }
		results := make([]totals, workers)
		var wg sync.WaitGroup
		failures := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				customer := []string{"customer:alice", "customer:bob"}[w%2]
				rng := rand.New(rand.NewPCG(uint64(w), 11))
				var got totals
				for i := range perWork {
					id := fmt.Sprintf("w%d-%d", w, i)
					amt, fee := 100+rng.Int64N(10000), 1+rng.Int64N(99)
					refund := 1 + rng.Int64N(amt-fee)
					var inTx totals
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						inTx = totals{}
						// Deposit: the clearing account grows by amt, the
						// customer gets amt-fee, fee income gets fee.
						if _, err := f.l.PostTx(ctx, tx,
							ledger.Transfer{ID: id + ":paid", Debit: "psp:clearing:USD", Credit: customer, Amount: money.New(amt-fee, usd)},
							ledger.Transfer{ID: id + ":fee", Debit: "psp:clearing:USD", Credit: "fees:income:USD", Amount: money.New(fee, usd)},
						); err != nil {
							return err
						}
						inTx.clearing, inTx.fees, inTx.customers = amt, fee, amt-fee
						// A hold back to the clearing account, posted in part
						// (even ids) or left pending (odd ones).
						if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: id + ":hold", Action: ledger.Hold, Debit: customer, Credit: "psp:clearing:USD", Amount: money.New(refund, usd)}); err != nil {
							return err
						}
						if i%2 == 0 {
							part := 1 + rng.Int64N(refund)
							if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: id + ":post", Action: ledger.PostPending, PendingID: id + ":hold", Amount: money.New(part, usd)}); err != nil {
								return err
							}
							inTx.clearing -= part
							inTx.customers -= part
						} else {
							inTx.clearingPendingIn += refund
						}
						// More work after booking, as a deposit does.
						_, err := tx.Exec(ctx, "UPDATE ledger_accounts SET metadata = metadata WHERE id = ?", customer)
						return err
					})
					if err != nil {
						failures <- fmt.Errorf("%s: %w", id, err)
						return
					}
					got.clearing += inTx.clearing
					got.fees += inTx.fees
					got.customers += inTx.customers
					got.clearingPendingIn += inTx.clearingPendingIn
				}
				results[w] = got
			}()
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Fatal(err)
		}
		var want totals
		for _, r := range results {
			want.clearing += r.clearing
			want.fees += r.fees
			want.customers += r.customers
			want.clearingPendingIn += r.clearingPendingIn
		}
		clearing, fees := f.balance(t, "psp:clearing:USD"), f.balance(t, "fees:income:USD")
		alice, bob := f.balance(t, "customer:alice"), f.balance(t, "customer:bob")
		got := totals{clearing: clearing.Posted.Minor(), fees: fees.Posted.Minor(),
			customers: alice.Posted.Minor() + bob.Posted.Minor(), clearingPendingIn: clearing.PendingOut.Minor()}
		// The clearing account is debit-normal: money held towards it is
		// pending credit, which Balance shows as PendingOut.
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(totals{})); diff != "" {
			t.Errorf("balances (-booked +ledger):\n%s", diff)
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestRolledBackTransactionLeavesUnboundedAccountUntouched books on the
// unbounded clearing account and then fails the transaction, once by the
// caller's own error after more work and once by the bound of the other
// account in a later booking of the same transaction.
func TestRolledBackTransactionLeavesUnboundedAccountUntouched(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "fund", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10")}); err != nil {
			t.Fatal(err)
		}
		callerFailed := errors.New("the caller changed its mind")
		tests := []struct {
			name    string
			fn      func(tx *sqlstore.Tx) error
			wantErr func(error) bool
		}{
			{"caller's error", func(tx *sqlstore.Tx) error {
				if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "dep-x", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "5")}); err != nil {
					return err
				}
				return callerFailed
			}, func(err error) bool { return errors.Is(err, callerFailed) }},
			{"later booking refused", func(tx *sqlstore.Tx) error {
				if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "dep-y", Debit: "psp:clearing:USD", Credit: "customer:bob", Amount: usdAmt(t, "5")}); err != nil {
					return err
				}
				_, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "wd-y", Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "10.01")})
				return err
			}, func(err error) bool { return errs.CodeOf(err) == errs.Insufficient }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := db.Transact(ctx, tc.fn); !tc.wantErr(err) {
					t.Fatalf("Transact = %v", err)
				}
				if b := f.balance(t, "psp:clearing:USD"); b.Posted != usdAmt(t, "10") || !b.PendingIn.IsZero() || !b.PendingOut.IsZero() {
					t.Errorf("clearing after rollback = %+v, want 10.00 posted and nothing pending", b)
				}
				f.verify(t)
			})
		}
		if _, err := f.l.Transfer(ctx, "dep-x"); !errs.Is(err, errs.NotFound) {
			t.Errorf("dep-x after rollback: err = %v, want not found", err)
		}
		// The next transaction books on the account normally.
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "dep-z", Debit: "psp:clearing:USD", Credit: "customer:bob", Amount: usdAmt(t, "1")}); err != nil {
			t.Fatal(err)
		}
		if b := f.balance(t, "psp:clearing:USD"); b.Posted != usdAmt(t, "11") {
			t.Errorf("clearing = %s, want 11.00", b.Posted.Decimal())
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestRolledBackAccountCreationIsForgotten creates an unbounded account in
// EUR, books on it and rolls back; the same id created afterwards in USD
// must take USD transfers (the ledger must not remember the EUR account).
func TestRolledBackAccountCreationIsForgotten(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		undo := errors.New("undo")
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			for _, spec := range []ledger.AccountSpec{
				{ID: "fx:pool", Kind: "fx", Currency: eur, Normal: ledger.CreditNormal},
				{ID: "fx:other", Kind: "fx", Currency: eur, Normal: ledger.CreditNormal},
			} {
				if _, err := f.l.CreateAccountTx(ctx, tx, spec); err != nil {
					return err
				}
			}
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "eur-1", Debit: "fx:other", Credit: "fx:pool", Amount: money.New(100, eur)}); err != nil {
				return err
			}
			return undo
		})
		if !errors.Is(err, undo) {
			t.Fatalf("Transact = %v", err)
		}
		if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: "fx:pool", Kind: "fx", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "usd-1", Debit: "psp:clearing:USD", Credit: "fx:pool", Amount: usdAmt(t, "3")}); err != nil {
			t.Fatalf("USD transfer to the USD account: %v", err)
		}
		if b := f.balance(t, "fx:pool"); b.Posted != usdAmt(t, "3") {
			t.Errorf("fx:pool = %s, want 3.00 USD", b.Posted)
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestTransactionReadsItsOwnBookingsOnUnboundedAccounts reads the
// unbounded clearing account inside the booking transaction (as funding
// reads a platform account's holds): the read must include what the
// transaction booked, and the committed balance must match it.
func TestTransactionReadsItsOwnBookingsOnUnboundedAccounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "fund", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "50")}); err != nil {
			t.Fatal(err)
		}
		type view struct{ Posted, PendingIn, PendingOut, Available string }
		see := func(b ledger.Balance) view {
			return view{b.Posted.Decimal(), b.PendingIn.Decimal(), b.PendingOut.Decimal(), b.Available.Decimal()}
		}
		var inTx []view
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			inTx = nil
			read := func() error {
				a, err := f.l.AccountTx(ctx, tx, "psp:clearing:USD")
				inTx = append(inTx, see(a.Balance()))
				return err
			}
			steps := [][]ledger.Transfer{
				{{ID: "dep-2", Debit: "psp:clearing:USD", Credit: "customer:bob", Amount: usdAmt(t, "7")}},
				{{ID: "out-1", Action: ledger.Hold, Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "20")},
					{ID: "in-1", Action: ledger.Hold, Debit: "psp:clearing:USD", Credit: "customer:bob", Amount: usdAmt(t, "2")}},
				{{ID: "out-1:post", Action: ledger.PostPending, PendingID: "out-1", Amount: usdAmt(t, "15")}},
			}
			if err := read(); err != nil {
				return err
			}
			for _, s := range steps {
				if _, err := f.l.PostTx(ctx, tx, s...); err != nil {
					return err
				}
				if err := read(); err != nil {
					return err
				}
			}
			// CreateAccountTx of an existing account returns it with the
			// transaction's bookings too.
			a, err := f.l.CreateAccountTx(ctx, tx, ledger.AccountSpec{ID: "psp:clearing:USD", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal})
			inTx = append(inTx, see(a.Balance()))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Debit-normal: posted grows with debits; money held towards it
		// (credits pending) is PendingOut, money held from it PendingIn.
		want := []view{
			{"50.00", "0.00", "0.00", "50.00"},
			{"57.00", "0.00", "0.00", "57.00"},
			{"57.00", "2.00", "20.00", "37.00"},
			{"42.00", "2.00", "0.00", "42.00"},
			{"42.00", "2.00", "0.00", "42.00"},
		}
		if diff := cmp.Diff(want, inTx); diff != "" {
			t.Errorf("clearing read inside the transaction (-want +got):\n%s", diff)
		}
		if got := see(f.balance(t, "psp:clearing:USD")); got != want[len(want)-1] {
			t.Errorf("clearing after commit = %+v, want %+v", got, want[len(want)-1])
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestReplayInsideOneTransactionBooksOnce repeats a transfer on the
// unbounded account in the same transaction and in a later one: it is
// booked once.
func TestReplayInsideOneTransactionBooksOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tr := ledger.Transfer{ID: "dep-1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "12.34"), Code: "deposit.paid"}
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			first, err := f.l.PostTx(ctx, tx, tr)
			if err != nil {
				return err
			}
			again, err := f.l.PostTx(ctx, tx, tr)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(first, again); diff != "" {
				t.Errorf("replay in the transaction (-first +again):\n%s", diff)
			}
			other := tr
			other.Amount = usdAmt(t, "1")
			if _, err := f.l.PostTx(ctx, tx, other); errs.CodeOf(err) != errs.Conflict {
				t.Errorf("same id, other amount: err = %v, want ECONFLICT", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Post(ctx, tr); err != nil {
			t.Fatal(err)
		}
		if b := f.balance(t, "psp:clearing:USD"); b.Posted != usdAmt(t, "12.34") {
			t.Errorf("clearing = %s, want 12.34 (booked once)", b.Posted.Decimal())
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestHoldOnUnboundedAccountsExpires holds money between two unbounded
// accounts and lets ExpireDue release it.
func TestHoldOnUnboundedAccountsExpires(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: "fees:income:USD", Kind: "fee_income", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "h", Action: ledger.Hold, Debit: "psp:clearing:USD", Credit: "fees:income:USD", Amount: usdAmt(t, "4"), ExpiresAt: epoch.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if b := f.balance(t, "fees:income:USD"); b.PendingIn != usdAmt(t, "4") {
			t.Fatalf("fee income pending in = %s, want 4.00", b.PendingIn.Decimal())
		}
		f.clock.Advance(time.Minute)
		if n, err := f.l.ExpireDue(ctx, 10); err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		for _, id := range []string{"psp:clearing:USD", "fees:income:USD"} {
			if b := f.balance(t, id); !b.PendingIn.IsZero() || !b.PendingOut.IsZero() || !b.Posted.IsZero() {
				t.Errorf("%s after expiry = %+v, want all zero", id, b)
			}
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestUnboundedAccountTotalsDoNotOverflow books more than an int64 holds
// on two unbounded accounts, within one transaction and across two: the
// booking that would overflow is refused and nothing of it is kept.
func TestUnboundedAccountTotalsDoNotOverflow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: "world", Kind: "external", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
			t.Fatal(err)
		}
		half := money.New(math.MaxInt64/2+1, usd)
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "a", Debit: "world", Credit: "psp:clearing:USD", Amount: half}); err != nil {
				return err
			}
			_, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "b", Debit: "world", Credit: "psp:clearing:USD", Amount: half})
			return err
		})
		if errs.CodeOf(err) != errs.Invalid {
			t.Errorf("two halves in one transaction: err = %v, want EINVALID", err)
		}
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "c", Debit: "world", Credit: "psp:clearing:USD", Amount: half}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "d", Debit: "world", Credit: "psp:clearing:USD", Amount: half}); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("second half in a later transaction: err = %v, want EINVALID", err)
		}
		// With a third account (on SQLite, sums are then written one
		// account at a time).
		if _, err := f.l.Post(ctx,
			ledger.Transfer{ID: "e", Debit: "world", Credit: "psp:clearing:USD", Amount: half},
			ledger.Transfer{ID: "f", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "1")},
		); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("second half in a batch of three accounts: err = %v, want EINVALID", err)
		}
		for _, id := range []string{"a", "b", "d", "e", "f"} {
			if _, err := f.l.Transfer(ctx, id); !errs.Is(err, errs.NotFound) {
				t.Errorf("transfer %s: err = %v, want not found", id, err)
			}
		}
		if b := f.balance(t, "psp:clearing:USD"); b.Posted != half.Neg() {
			t.Errorf("clearing = %s, want %s", b.Posted.Decimal(), half.Neg().Decimal())
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestMixedOrdersDoNotDeadlock runs transactions that each book on one
// bounded customer account and on three unbounded accounts in a random
// order over several PostTx calls (as funding's steps do), 24 at a time.
// Locking the unbounded accounts at booking time would make such
// transactions wait on each other in cycles (deadlocks, which PostgreSQL
// breaks by failing one and Transact retries); with their sums written in
// one order at commit, no transaction may need a second attempt, and the
// sums must add up.
func TestMixedOrdersDoNotDeadlock(t *testing.T) {
	if testing.Short() {
		t.Skip("long concurrency test")
	}
	const (
		workers = 24
		perWork = 30
	)
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared := []string{"psp:clearing:USD", "fees:income:USD", "platform:pool"}
		for _, id := range shared[1:] {
			if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: id, Kind: "shared", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
				t.Fatal(err)
			}
		}
		customers := []string{"customer:alice", "customer:bob"}
		if _, err := f.l.Post(ctx,
			ledger.Transfer{ID: "fund-a", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "1000000")},
			ledger.Transfer{ID: "fund-b", Debit: "psp:clearing:USD", Credit: "customer:bob", Amount: usdAmt(t, "1000000")},
		); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		failures := make(chan error, workers)
		moved := make([]map[string]int64, workers) // net credit per shared account
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 5))
				net := map[string]int64{}
				for i := range perWork {
					customer := customers[rng.IntN(len(customers))]
					order := rng.Perm(len(shared))
					amts := []int64{1 + rng.Int64N(100), 1 + rng.Int64N(100), 1 + rng.Int64N(100)}
					attempts := 0
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						attempts++
						for k, j := range order {
							id := fmt.Sprintf("w%d-%d-%d", w, i, k)
							from, to := customer, shared[j]
							if k == 1 { // one of the steps moves between two shared accounts
								from, to = shared[order[0]], shared[j]
							}
							if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: id, Debit: from, Credit: to, Amount: money.New(amts[k], usd)}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						failures <- fmt.Errorf("worker %d transaction %d: %w", w, i, err)
						return
					}
					if attempts != 1 {
						failures <- fmt.Errorf("worker %d transaction %d took %d attempts (a deadlock or lock conflict was retried)", w, i, attempts)
						return
					}
					for k, j := range order {
						net[shared[j]] += amts[k]
						if k == 1 {
							net[shared[order[0]]] -= amts[k]
						}
					}
				}
				moved[w] = net
			}()
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Fatal(err)
		}
		want := map[string]int64{"psp:clearing:USD": -200000000} // debit-normal: funding 2×1,000,000.00 raised it
		for _, m := range moved {
			for id, n := range m {
				want[id] += n
			}
		}
		got := map[string]int64{}
		for _, id := range shared {
			a, err := f.l.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			b := a.Balance()
			got[id] = b.Posted.Minor()
			if a.Normal == ledger.DebitNormal {
				got[id] = -got[id]
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("net credits of the shared accounts (-booked +ledger):\n%s", diff)
		}
		f.verify(t)
	}, ledger.Schema)
}

// TestBoundedAccountSeesEarlierBookingsOfItsTransaction books on a bounded
// account in several PostTx calls of one transaction (its sums are written
// only before the commit): each call must check the bound against the
// balance with the earlier calls' bookings, and reads in the transaction
// must show them.
func TestBoundedAccountSeesEarlierBookingsOfItsTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var seen []string
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			read := func() error {
				a, err := f.l.AccountTx(ctx, tx, "customer:alice")
				seen = append(seen, a.Balance().Available.Decimal())
				return err
			}
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "dep", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10")}); err != nil {
				return err
			}
			if err := read(); err != nil {
				return err
			}
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "hold", Action: ledger.Hold, Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "4")}); err != nil {
				return err
			}
			if err := read(); err != nil {
				return err
			}
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "too-much", Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "6.01")}); errs.CodeOf(err) != errs.Insufficient {
				t.Errorf("spending more than is left after the hold: err = %v, want EINSUFFICIENT", err)
			}
			if _, err := f.l.PostTx(ctx, tx, ledger.Transfer{ID: "rest", Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "6")}); err != nil {
				return err
			}
			return read()
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"10.00", "6.00", "0.00"}, seen); diff != "" {
			t.Errorf("alice's available balance read in the transaction (-want +got):\n%s", diff)
		}
		if b := f.balance(t, "customer:alice"); b.Posted != usdAmt(t, "4") || b.Available.Minor() != 0 || b.PendingOut != usdAmt(t, "4") {
			t.Errorf("alice after commit = %+v, want 4.00 posted, all of it held", b)
		}
		if b := f.balance(t, "customer:bob"); b.Posted != usdAmt(t, "6") || b.PendingIn != usdAmt(t, "4") {
			t.Errorf("bob after commit = %+v, want 6.00 posted and 4.00 on its way", b)
		}
		f.verify(t)
	}, ledger.Schema)
}
