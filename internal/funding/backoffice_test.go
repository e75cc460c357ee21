package funding_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// recorder is a funding.Hook that keeps "kind id from→to actor" lines.
type recorder struct {
	mu     sync.Mutex
	events []funding.Event
	fail   bool
}

func (rec *recorder) hook(_ context.Context, _ *sqlstore.Tx, e funding.Event) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.fail {
		return errors.New("the trail is down")
	}
	rec.events = append(rec.events, e)
	return nil
}

func (rec *recorder) lines(id string) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, e := range rec.events {
		if e.ID == id {
			out = append(out, fmt.Sprintf("%s→%s %s", e.From, e.To, e.Actor))
		}
	}
	return out
}

// screener is a fake funding.Screener: it refuses or holds what its
// function says and remembers every check.
type screener struct {
	mu     sync.Mutex
	checks []funding.Check
	decide func(c funding.Check) (funding.Verdict, error)
}

func (s *screener) Screen(_ context.Context, _ *sqlstore.Tx, c funding.Check) (funding.Verdict, error) {
	s.mu.Lock()
	s.checks = append(s.checks, c)
	s.mu.Unlock()
	if s.decide == nil {
		return funding.Verdict{}, nil
	}
	return s.decide(c)
}

func TestHooksSeeEveryStatusChangeWithWhoMadeIt(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		rec := &recorder{}
		r := newRig(t, db, rigOptions{hooks: []funding.Hook{rec.hook},
			cfg: funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("100.00", usd)}}})
		ctx := context.Background()
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		want := []string{"→created user:usr_alice", "created→awaiting_payment system", "awaiting_payment→paid system",
			"paid→crediting system", "crediting→completed system"}
		if diff := cmp.Diff(want, rec.lines(d.ID)); diff != "" {
			t.Errorf("deposit events (-want +got):\n%s", diff)
		}
		last := rec.events[len(rec.events)-1]
		if last.Email != alice.Email || last.Lang != "en" || last.Credit.String() != "97.20 USD" || last.Login != aliceUSD {
			t.Errorf("the completed event lacks the customer or the credit: %+v", last)
		}

		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("300.00", usd), bankDetails)
		r.run()
		if _, err := r.svc.ApproveWithdrawal(ctx, w.ID, "staff:olga"); err != nil {
			t.Fatal(err)
		}
		r.run()
		want = []string{"→requested user:usr_alice", "requested→debiting system", "debiting→held system", "held→awaiting_approval system",
			"awaiting_approval→approved staff:olga", "approved→payout_sent system", "payout_sent→completed system"}
		if diff := cmp.Diff(want, rec.lines(w.ID)); diff != "" {
			t.Errorf("withdrawal events (-want +got):\n%s", diff)
		}

		// A hook that fails rolls the change back: the approval does not happen.
		w2 := r.withdraw(alice, aliceUSD, "bank-transfer", amt("150.00", usd), bankDetails)
		r.run()
		rec.fail = true
		if _, err := r.svc.ApproveWithdrawal(ctx, w2.ID, "staff:olga"); err == nil {
			t.Fatal("an approval whose hook fails must fail")
		}
		rec.fail = false
		if got := r.getWithdrawal(alice, w2.ID).Status; got != funding.WithdrawalAwaitingApproval {
			t.Errorf("after a failed hook the withdrawal is %s, want still awaiting_approval", got)
		}
	})
}

func TestScreenerRefusalBooksNothing(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		sc := &screener{decide: func(c funding.Check) (funding.Verdict, error) {
			if c.Kind == funding.KindDeposit {
				return funding.Verdict{}, errs.E(errs.Insufficient, "compliance", "this deposit would exceed your daily limit")
			}
			return funding.Verdict{}, errs.E(errs.Forbidden, "compliance", "verify your identity to withdraw")
		}}
		r := newRig(t, db, rigOptions{screener: sc})
		ctx := context.Background()
		_, err := r.svc.StartDeposit(ctx, funding.DepositRequest{ID: "form-limit", Customer: alice, Login: aliceUSD, MethodID: "card",
			Amount: amt("100.00", usd), ReturnURL: "https://cashier.example/return", Lang: "en"})
		if !errs.Is(err, errs.Insufficient) || errs.MessageOf(err) != "this deposit would exceed your daily limit" {
			t.Errorf("deposit over the limit: %v, want the screener's refusal", err)
		}
		if ds, err := r.svc.Deposits(ctx, alice.UserID, 10); err != nil || len(ds) != 0 {
			t.Errorf("a refused deposit left %d deposits (%v)", len(ds), err)
		}
		_, err = r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "wd-kyc", Customer: alice, Login: aliceUSD,
			MethodID: "bank-transfer", Amount: amt("50.00", usd), Details: bankDetails})
		if !errs.Is(err, errs.Forbidden) {
			t.Errorf("withdrawal refused by KYC: %v, want forbidden", err)
		}
		if ws, err := r.svc.Withdrawals(ctx, alice.UserID, 10); err != nil || len(ws) != 0 {
			t.Errorf("a refused withdrawal left %d withdrawals (%v)", len(ws), err)
		}
		if b, err := r.ledger.Balance(ctx, r.svc.PlatformAccountID(aliceUSD)); !errs.Is(err, errs.NotFound) {
			t.Errorf("a refused withdrawal touched the ledger: %+v, %v", b, err)
		}
		if len(sc.checks) != 2 || sc.checks[1].Destination != "iban:DE89370400440532013000" || sc.checks[1].Amount.String() != "50.00 USD" {
			t.Errorf("checks %+v; want the deposit and the withdrawal with its destination key", sc.checks)
		}
	})
}

func TestHeldWithdrawalWaitsForAnOperatorEvenWithinAutoApproval(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		sc := &screener{decide: func(c funding.Check) (funding.Verdict, error) {
			return funding.Verdict{Hold: true, Rule: "new_destination", Explanation: "first withdrawal to IBAN DE89 … 3000"}, nil
		}}
		r := newRig(t, db, rigOptions{screener: sc, cfg: funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("500.00", usd)}}})
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("50.00", usd), bankDetails)
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalAwaitingApproval || w.AutoApproved || w.HoldRule != "new_destination" || w.HoldNote != "first withdrawal to IBAN DE89 … 3000" {
			t.Fatalf("held withdrawal: %s auto=%v rule=%q note=%q; want awaiting approval with the rule", w.Status, w.AutoApproved, w.HoldRule, w.HoldNote)
		}
		if _, err := r.svc.ApproveWithdrawal(context.Background(), w.ID, "staff:olga"); err != nil {
			t.Fatal(err)
		}
		r.run()
		if got := r.getWithdrawal(alice, w.ID).Status; got != funding.WithdrawalCompleted {
			t.Errorf("after approval: %s, want completed", got)
		}
	})
}

func TestHeldDepositIsCreditedOnlyWhenReleased(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		sc := &screener{decide: func(c funding.Check) (funding.Verdict, error) {
			if c.Stage == funding.StagePaid {
				return funding.Verdict{Hold: true, Rule: "card_country", Explanation: "card issued in " + c.CardCountry + ", customer in " + c.Customer.Country}, nil
			}
			return funding.Verdict{}, nil
		}}
		r := newRig(t, db, rigOptions{screener: sc})
		ctx := context.Background()
		released := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(released, "4242424242424242")
		rejected := r.deposit(alice, aliceUSD, "card", amt("40.00", usd))
		r.payByCard(rejected, "4242424242424242")
		r.run()

		d := r.getDeposit(alice, released.ID)
		if d.State != funding.DepositPaid || d.Status != funding.DepositProcessing || d.Flag != funding.FlagReviewHold || d.HoldRule != "card_country" {
			t.Fatalf("held deposit: state %s status %s flag %q rule %q; want paid, shown processing, held", d.State, d.Status, d.Flag, d.HoldRule)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("a held deposit reached the platform: %s", got)
		}
		if got := r.posted(r.svc.CustomerAccountID(aliceUSD), usd).String(); got != "135.90 USD" {
			t.Errorf("customer money in custody %s, want 97.20 + 38.70 = 135.90 USD", got)
		}
		held, err := r.svc.HeldDeposits(ctx, 10)
		if err != nil || len(held) != 2 || held[0].ID != released.ID {
			t.Fatalf("held deposits %d (%v), want both, oldest first", len(held), err)
		}
		if err := r.svc.ClearFlag(ctx, released.ID, "staff:olga", "looks fine"); !errs.Is(err, errs.Conflict) {
			t.Errorf("clearing a review hold: %v, want a conflict (release or reject it)", err)
		}

		if _, err := r.svc.ReleaseDeposit(ctx, released.ID, "staff:olga", ""); !errs.Is(err, errs.Invalid) {
			t.Errorf("release without a note: %v", err)
		}
		if _, err := r.svc.ReleaseDeposit(ctx, released.ID, "staff:olga", "customer sent a card statement"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.ReleaseDeposit(ctx, released.ID, "staff:olga", "again"); !errs.Is(err, errs.Conflict) {
			t.Errorf("releasing twice: %v, want a conflict", err)
		}
		r.run()
		if d := r.getDeposit(alice, released.ID); d.Status != funding.DepositCompleted {
			t.Errorf("released deposit: %s, want completed", d.Status)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1097.20 USD" {
			t.Errorf("platform after release: %s, want 1097.20 USD", got)
		}

		d, err = r.svc.RejectDeposit(ctx, rejected.ID, "staff:olga", "stolen card reported")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != funding.DepositRejected || d.Flag != funding.FlagRefundDue || d.Failure == nil {
			t.Errorf("rejected deposit: %s flag %q failure %v", d.Status, d.Flag, d.Failure)
		}
		r.run()
		if got := r.simBalance(aliceUSD).String(); got != "1097.20 USD" {
			t.Errorf("a rejected deposit reached the platform: %s", got)
		}
		if got := r.posted("suspense:USD", usd).String(); got != "38.70 USD" {
			t.Errorf("suspense %s, want the rejected 38.70 USD", got)
		}
		tasks, err := r.svc.Tasks(ctx)
		if err != nil || len(tasks) != 1 || tasks[0].DepositID != rejected.ID || tasks[0].Flag != funding.FlagRefundDue {
			t.Errorf("tasks %+v (%v); want the refund of the rejected deposit", tasks, err)
		}
	})
}

func TestFourEyesNeedsASecondPerson(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{cfg: funding.Config{
			AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("50.00", usd)},
			FourEyesAbove:              map[string]money.Amount{"USD": amt("200.00", usd)},
		}})
		ctx := context.Background()
		small := r.withdraw(alice, aliceUSD, "bank-transfer", amt("200.00", usd), bankDetails)
		large := r.withdraw(alice, aliceUSD, "bank-transfer", amt("200.01", usd), bankDetails)
		r.run()

		if w, err := r.svc.ApproveWithdrawal(ctx, small.ID, "staff:olga"); err != nil || w.Status != funding.WithdrawalApproved {
			t.Errorf("at the four-eyes amount one approver is enough: %s, %v", w.Status, err)
		}
		w, err := r.svc.ApproveWithdrawal(ctx, large.ID, "staff:olga")
		if err != nil {
			t.Fatal(err)
		}
		if w.Status != funding.WithdrawalAwaitingApproval || !w.NeedsSecondApproval || w.FirstApprovedBy != "staff:olga" {
			t.Fatalf("after the first approval: %s second=%v first=%q; want still waiting for a second person", w.Status, w.NeedsSecondApproval, w.FirstApprovedBy)
		}
		if _, err := r.svc.ApproveWithdrawal(ctx, large.ID, "staff:olga"); !errs.Is(err, errs.Forbidden) {
			t.Errorf("the same person approving twice: %v, want forbidden", err)
		}
		if w, err = r.svc.ApproveWithdrawal(ctx, large.ID, "staff:piet"); err != nil || w.Status != funding.WithdrawalApproved || w.DecidedBy != "staff:piet" {
			t.Fatalf("second approval: %s by %q, %v", w.Status, w.DecidedBy, err)
		}
		r.run()
		if got := r.getWithdrawal(alice, large.ID).Status; got != funding.WithdrawalCompleted {
			t.Errorf("after two approvals: %s, want completed", got)
		}
		h, err := r.svc.WithdrawalHistory(ctx, alice.UserID, large.ID)
		if err != nil {
			t.Fatal(err)
		}
		var approvals []string
		for _, c := range h {
			if c.Reason == "first_approval" || c.Reason == "approved" {
				approvals = append(approvals, c.Reason+" by "+c.Actor)
			}
		}
		if diff := cmp.Diff([]string{"first_approval by staff:olga", "approved by staff:piet"}, approvals); diff != "" {
			t.Errorf("approvals in the history (-want +got):\n%s", diff)
		}
	})
}
