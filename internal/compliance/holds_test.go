package compliance_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func holdIDs(t *testing.T, r *rig, open bool) []string {
	t.Helper()
	hs, err := r.svc.Holds(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, h := range hs {
		ids = append(ids, h.TxnID+" "+h.State)
	}
	return ids
}

// The review queue follows held transactions: pending until there is
// something to review, open while an operator must decide, resolved with
// the outcome and who decided.
func TestHoldsFollowTheTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 2, DefaultCountry: "DE", WithdrawalKYCLevel: 1})
		u := "usr_h"

		// A deposit held at request (after three declines) is pending
		// until paid; the foreign card adds its rule when paid.
		declines(3, time.Minute)(r, u)
		v, err := r.requestDeposit(u, "dep_held", "card", amt(t, "250.00", usd))
		if err != nil || v.Rule != compliance.RuleDeclinedAttempts {
			t.Fatalf("request: %+v, %v", v, err)
		}
		if diff := cmp.Diff([]string{}, holdIDs(t, r, true)); diff != "" {
			t.Errorf("open holds before the money arrived (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"dep_held pending"}, holdIDs(t, r, false)); diff != "" {
			t.Errorf("all holds (-want +got):\n%s", diff)
		}
		r.clk.Advance(time.Minute)
		r.move("dep_held", "awaiting_payment", "")
		paid := r.payDeposit("dep_held", "NG", "")
		// When paid both rules hold it (card country first); the hold keeps
		// its first rule and adds the new one's explanation.
		if !paid.Hold || paid.Rule != compliance.RuleCardCountry {
			t.Fatalf("paid: %+v", paid)
		}
		h, err := r.svc.Hold(ctx, "dep_held")
		if err != nil {
			t.Fatal(err)
		}
		want := compliance.Hold{TxnID: "dep_held", UserID: u, Kind: funding.KindDeposit, Stage: funding.StagePaid,
			Rule: compliance.RuleDeclinedAttempts, Rules: []string{compliance.RuleDeclinedAttempts, compliance.RuleCardCountry},
			Explanation: v.Explanation + " Card country: the card that paid 250.00 USD was issued in NG, but the user's country is DE.",
			Login:       1001, MethodID: "card", Amount: amt(t, "250.00", usd), CardCountry: "NG", State: compliance.HoldOpen,
			CreatedAt: r.clk.Now().Add(-time.Minute), OpenedAt: r.clk.Now()}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("hold when paid (-want +got):\n%s", diff)
		}

		// A withdrawal to a new IBAN: pending while it is taken from the
		// account, open while it awaits approval.
		if _, err := r.requestWithdrawal(u, "wd_held", "bank-transfer", amt(t, "80.00", usd), iban); err != nil {
			t.Fatal(err)
		}
		r.move("wd_held", "debiting", "")
		r.move("wd_held", "held", "")
		if diff := cmp.Diff([]string{"dep_held open"}, holdIDs(t, r, true)); diff != "" {
			t.Errorf("open holds (-want +got):\n%s", diff)
		}
		r.clk.Advance(time.Minute)
		r.move("wd_held", "awaiting_approval", "")
		if diff := cmp.Diff([]string{"dep_held open", "wd_held open"}, holdIDs(t, r, true)); diff != "" {
			t.Errorf("open holds, oldest first (-want +got):\n%s", diff)
		}

		// An operator releases the deposit and approves the withdrawal.
		r.clk.Advance(time.Minute)
		r.move("dep_held", "crediting", "staff:stf_7")
		r.move("wd_held", "approved", "staff:stf_8")
		if diff := cmp.Diff([]string{}, holdIDs(t, r, true)); diff != "" {
			t.Errorf("open holds after the decisions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"wd_held resolved", "dep_held resolved"}, holdIDs(t, r, false)); diff != "" {
			t.Errorf("all holds, newest first (-want +got):\n%s", diff)
		}
		h, err = r.svc.Hold(ctx, "wd_held")
		if err != nil {
			t.Fatal(err)
		}
		if h.Resolution != "approved" || h.ResolvedBy != "staff:stf_8" || !h.ResolvedAt.Equal(r.clk.Now()) || h.Destination != iban {
			t.Errorf("resolved withdrawal hold: %+v", h)
		}
		// Later steps keep the first resolution.
		r.move("wd_held", "payout_sent", "")
		if h2, _ := r.svc.Hold(ctx, "wd_held"); h2.Resolution != "approved" || h2.ResolvedBy != "staff:stf_8" {
			t.Errorf("after the payout: %+v", h2)
		}

		// A check funding never confirmed (the request lost a race to an
		// identical one) leaves no hold in the queue.
		err = r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			x := &txn{kind: funding.KindDeposit, id: "dep_phantom", user: u, method: "card", amount: amt(t, "5.00", usd)}
			_, err := r.svc.Screen(ctx, tx, r.check(x, funding.StageRequest))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Hold(ctx, "dep_phantom"); !errs.Is(err, errs.NotFound) {
			t.Errorf("unconfirmed hold: %v", err)
		}
		if diff := cmp.Diff([]string{"wd_held resolved", "dep_held resolved"}, holdIDs(t, r, false)); diff != "" {
			t.Errorf("all holds with an unconfirmed check (-want +got):\n%s", diff)
		}
	}, compliance.Schema)
}

func TestScreenRefusesMalformedChecks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{})
		ok := funding.Check{Kind: funding.KindDeposit, Stage: funding.StageRequest, ID: "dep_1", Customer: funding.Customer{UserID: "usr_1"},
			MethodID: "card", Amount: amt(t, "1.00", usd)}
		for _, tc := range []struct {
			name string
			edit func(*funding.Check)
		}{
			{"unknown kind", func(c *funding.Check) { c.Kind = "refund" }},
			{"unknown stage", func(c *funding.Check) { c.Stage = "settled" }},
			{"withdrawal when paid", func(c *funding.Check) { c.Kind, c.Stage = funding.KindWithdrawal, funding.StagePaid }},
			{"no id", func(c *funding.Check) { c.ID = "" }},
			{"no user", func(c *funding.Check) { c.Customer.UserID = "" }},
			{"zero amount", func(c *funding.Check) { c.Amount = amt(t, "0.00", usd) }},
			{"negative amount", func(c *funding.Check) { c.Amount = amt(t, "-1.00", usd) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := ok
				tc.edit(&c)
				err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
					_, err := r.svc.Screen(ctx, tx, c)
					return err
				})
				wantCode(t, err, errs.Invalid)
			})
		}
	}, compliance.Schema)
}
