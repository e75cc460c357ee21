package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestObserverSeesNewBookingsOnceAndCanRollThemBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var seen []string
		fail := false
		f.l.Observe(func(_ context.Context, _ *sqlstore.Tx, booked []ledger.Transfer) error {
			if fail {
				return errors.New("trail unavailable")
			}
			for _, b := range booked {
				seen = append(seen, b.ID+" "+string(b.Action))
			}
			return nil
		})
		dep := ledger.Transfer{ID: "dep-1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10.00")}
		hold := ledger.Transfer{ID: "wd-1:hold", Action: ledger.Hold, Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "4.00")}
		if _, err := f.l.Post(ctx, dep, hold); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Post(ctx, dep, hold); err != nil { // a replay books nothing new
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"dep-1 post", "wd-1:hold pending"}, seen); diff != "" {
			t.Errorf("observed (-want +got):\n%s", diff)
		}

		fail = true
		_, err := f.l.Post(ctx, ledger.Transfer{ID: "dep-2", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "1.00")})
		if err == nil {
			t.Fatal("a failing observer must fail the booking")
		}
		if _, err := f.l.Transfer(ctx, "dep-2"); !errs.Is(err, errs.NotFound) {
			t.Errorf("dep-2 after a failed observer: err = %v, want not found (rolled back)", err)
		}
		if b := f.balance(t, "customer:alice"); b.Posted != usdAmt(t, "10.00") {
			t.Errorf("alice = %s, want 10.00", b.Posted.Decimal())
		}
	}, ledger.Schema)
}
