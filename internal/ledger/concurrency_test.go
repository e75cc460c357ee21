package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// TestConcurrentRandomTransfersNeverCrossBounds runs 32 goroutines, each
// posting 500 random transfers and holds among 20 accounts bounded to
// [0, 2,000.00], while an observer keeps reading balances. No bound may ever
// be crossed, every refusal must be EINSUFFICIENT, and the invariants must
// hold at the end, on both databases.
func TestConcurrentRandomTransfersNeverCrossBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("long concurrency test")
	}
	const (
		workers  = 32
		perWork  = 500
		accounts = 20
		upper    = 200000 // 2,000.00 USD
	)
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := ledger.New(db, clock.NewFake(epoch))
		if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: "clearing", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal}); err != nil {
			t.Fatal(err)
		}
		up := int64(upper)
		ids := make([]string, accounts)
		var funding []ledger.Transfer
		for i := range ids {
			ids[i] = fmt.Sprintf("customer:%02d", i)
			if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: ids[i], Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero(), Upper: &up}); err != nil {
				t.Fatal(err)
			}
			funding = append(funding, ledger.Transfer{ID: "fund:" + ids[i], Debit: "clearing", Credit: ids[i], Amount: money.New(100000, usd)})
		}
		if _, err := l.Post(ctx, funding...); err != nil {
			t.Fatal(err)
		}

		var (
			wg        sync.WaitGroup
			done      = make(chan struct{})
			posted    atomic.Int64
			refused   atomic.Int64
			violation = make(chan string, 1)
			failures  = make(chan error, workers)
		)
		// The observer fails the test if it ever sees a bound crossed.
		observerDone := make(chan struct{})
		go func() {
			defer close(observerDone)
			for {
				select {
				case <-done:
					return
				default:
				}
				accs, err := l.Accounts(ctx, "customer:")
				if err != nil {
					continue
				}
				for _, a := range accs {
					b := a.Balance()
					if b.Available.Minor() < 0 || b.Posted.Minor()+b.PendingIn.Minor() > upper {
						select {
						case violation <- fmt.Sprintf("%s: %+v", a.ID, b):
						default:
						}
					}
				}
			}
		}()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				var holds []string
				for i := range perWork {
					from, to := ids[rng.IntN(accounts)], ids[rng.IntN(accounts)]
					for to == from {
						to = ids[rng.IntN(accounts)]
					}
					id := fmt.Sprintf("w%d-%d", w, i)
					tr := ledger.Transfer{ID: id, Debit: from, Credit: to, Amount: money.New(1+rng.Int64N(50000), usd)}
					switch r := rng.IntN(10); {
					case r == 0:
						tr.Action = ledger.Hold
					case r == 1 && len(holds) > 0:
						tr = ledger.Transfer{ID: id, Action: ledger.PostPending, PendingID: holds[0]}
						holds = holds[1:]
					case r == 2 && len(holds) > 0:
						tr = ledger.Transfer{ID: id, Action: ledger.VoidPending, PendingID: holds[0]}
						holds = holds[1:]
					}
					_, err := l.Post(ctx, tr)
					switch {
					case err == nil:
						posted.Add(1)
						if tr.Action == ledger.Hold {
							holds = append(holds, id)
						}
					case errs.CodeOf(err) == errs.Insufficient:
						refused.Add(1)
					default:
						failures <- fmt.Errorf("transfer %s: %w", id, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(done)
		<-observerDone
		close(failures)
		for err := range failures {
			t.Fatal(err)
		}
		select {
		case v := <-violation:
			t.Fatalf("a bound was crossed: %s", v)
		default:
		}
		if posted.Load() == 0 || refused.Load() == 0 {
			t.Errorf("posted %d, refused %d: the test should exercise both outcomes", posted.Load(), refused.Load())
		}
		t.Logf("%d transfers posted, %d refused for bounds", posted.Load(), refused.Load())
		r, err := ledger.Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("invariants broken:\n%s", r)
		}
	}, ledger.Schema)
}
