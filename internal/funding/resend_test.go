package funding_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The rig's push service looks an in-doubt push up 15 s after its send
// (5 s timeout + 10 s margin) and sends a push proved not applied again
// after 1 min, doubling up to 10 min, at most 10 sends within an hour of
// the first.

// transientFailures are platform failures that leave the outcome unknown
// to the cashier although nothing was applied: the look-up proves it.
var transientFailures = []struct {
	name string
	rule ctradersim.Rule
}{
	{"503 before applying", ctradersim.Rule{ErrorP: 1, ErrorStatus: 503, ErrorCode: "UNKNOWN_ERROR"}},
	{"connection dropped before applying", ctradersim.Rule{DropP: 1}},
}

func (r *rig) pushOf(id string) push.Push {
	r.t.Helper()
	p, err := r.push.Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *rig) pushPath(id string) []push.State {
	r.t.Helper()
	evs, err := r.push.Events(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []push.State
	for _, e := range evs {
		out = append(out, e.To)
	}
	return out
}

func TestDepositPushProvedNotAppliedIsSentAgain(t *testing.T) {
	for _, tc := range transientFailures {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, db *sqlstore.DB) {
				r := newRig(t, db, rigOptions{})
				ctx := context.Background()
				r.setChangeBalanceFaults(&tc.rule)
				d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
				r.payByCard(d, "4242424242424242")
				r.run()
				if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositProcessing || d.State != funding.DepositCrediting {
					t.Fatalf("after the failed send: status %s, state %s; want processing, crediting", d.Status, d.State)
				}
				r.setChangeBalanceFaults(nil)
				// The look-up proves the first send absent: the push waits
				// to be sent again; the trader still sees processing.
				r.advance(20 * time.Second)
				if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositProcessing {
					t.Fatalf("proved not applied, waiting to be sent again: status %s, want processing", d.Status)
				}
				if p := r.pushOf(d.PushID); p.State != push.Queued || p.Sends != 1 {
					t.Fatalf("push after the look-up: %s with %d sends; want queued with 1", p.State, p.Sends)
				}
				r.advance(time.Minute)
				if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositCompleted {
					t.Fatalf("after the second send: %s, want completed", d.Status)
				}
				if got := r.simBalance(aliceUSD).String(); got != "1097.20 USD" {
					t.Errorf("platform balance %s, want 1097.20 USD (credited once)", got)
				}
				if n := r.simChanges(aliceUSD, d.PushID); n != 1 {
					t.Errorf("the platform holds %d changes of the push, want 1", n)
				}
				if n := r.changeBalanceCalls(); n != 2 {
					t.Errorf("%d changebalance calls, want 2", n)
				}
				want := []push.State{push.Queued, push.Sending, push.InDoubt, push.Queued, push.Sending, push.Applied}
				if diff := cmp.Diff(want, r.pushPath(d.PushID)); diff != "" {
					t.Errorf("push events (-want +got):\n%s", diff)
				}
				h, err := r.svc.DepositHistory(ctx, alice.UserID, d.ID)
				if diff := cmp.Diff([]string{"created", "awaiting_payment", "paid", "crediting", "completed"}, statuses(t, h, err)); diff != "" {
					t.Errorf("history (-want +got):\n%s", diff)
				}
				if got := r.posted("suspense:USD", usd).String(); got != "0.00 USD" {
					t.Errorf("suspense holds %s, want nothing", got)
				}
			})
		})
	}
}

func TestDepositPushAppliedWithoutAnAnswerIsNotSentAgain(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		r.setChangeBalanceFaults(&ctradersim.Rule{ApplyResetP: 1}) // applied, then the connection breaks
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		r.setChangeBalanceFaults(nil)
		r.advance(20 * time.Second)
		if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositCompleted {
			t.Fatalf("after the look-up: %s, want completed", d.Status)
		}
		r.advance(2 * time.Hour)
		if p := r.pushOf(d.PushID); p.State != push.ResolvedApplied || p.Sends != 1 {
			t.Errorf("push: %s with %d sends; want resolved_applied with 1", p.State, p.Sends)
		}
		if n := r.changeBalanceCalls(); n != 1 {
			t.Errorf("%d changebalance calls, want 1", n)
		}
		if n := r.simChanges(aliceUSD, d.PushID); n != 1 {
			t.Errorf("the platform holds %d changes of the push, want 1", n)
		}
	})
}

func TestDepositPushThatKeepsFailingEndsInSuspense(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		r.setChangeBalanceFaults(&ctradersim.Rule{ErrorP: 1, ErrorStatus: 503, ErrorCode: "UNKNOWN_ERROR"})
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		r.advance(30 * time.Minute)
		if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositProcessing {
			t.Fatalf("after 30 minutes of failures: %s, want processing (still being sent again)", d.Status)
		}
		r.advanceUntil(30*time.Second, 2*time.Hour, func() bool { return r.getDeposit(alice, d.ID).Status.Final() })
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositReversed || d.Flag != funding.FlagPlatformRefused || d.Failure == nil ||
			!strings.Contains(d.Failure.Message, "could not be reached") {
			t.Fatalf("given up: status %s, flag %q, failure %+v; want reversed, flagged, the platform could not be reached", d.Status, d.Flag, d.Failure)
		}
		p := r.pushOf(d.PushID)
		if p.State != push.ResolvedNotApplied || p.Sends < 2 || p.Sends > 10 || uint64(p.Sends) != r.changeBalanceCalls() {
			t.Errorf("push: %s with %d sends, %d calls; want resolved_not_applied after 2 to 10 sends", p.State, p.Sends, r.changeBalanceCalls())
		}
		if span := p.SendingAt.Sub(p.FirstSendingAt); span < 45*time.Minute || span > time.Hour {
			t.Errorf("the sends span %s, want most of the hour they are allowed", span)
		}
		for _, c := range []struct{ account, want string }{
			{r.svc.CustomerAccountID(aliceUSD), "0.00 USD"},
			{r.svc.PlatformAccountID(aliceUSD), "0.00 USD"},
			{"suspense:USD", "97.20 USD"},
		} {
			if got := r.posted(c.account, usd).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		if n := r.simChanges(aliceUSD, d.PushID); n != 0 {
			t.Errorf("the platform holds %d changes of the push, want none", n)
		}
		tasks, err := r.svc.Tasks(ctx)
		if err != nil || len(tasks) != 1 || tasks[0].Kind != funding.TaskFlagged || tasks[0].DepositID != d.ID {
			t.Errorf("tasks %+v, %v; want the flagged deposit", tasks, err)
		}
	})
}

func TestWithdrawPushProvedNotAppliedIsSentAgain(t *testing.T) {
	for _, tc := range transientFailures {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, db *sqlstore.DB) {
				r := newRig(t, db, rigOptions{})
				ctx := context.Background()
				r.setChangeBalanceFaults(&tc.rule)
				w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("600.00", usd), bankDetails)
				r.run()
				r.setChangeBalanceFaults(nil)
				r.advance(20 * time.Second)
				if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalProcessing || w.State != funding.WithdrawalDebiting {
					t.Fatalf("proved not applied, waiting to be sent again: status %s, state %s; want processing, debiting", w.Status, w.State)
				}
				// The 600 stays reserved while the push waits.
				_, err := r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "second", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer",
					Amount: amt("500.00", usd), Details: bankDetails})
				if _, ok := funding.AsInsufficient(err); !ok {
					t.Fatalf("a second withdrawal while the first waits: %v; want insufficient", err)
				}
				r.advance(time.Minute)
				if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted {
					t.Fatalf("after the second send: %s, want completed", w.Status)
				}
				if got := r.simBalance(aliceUSD).String(); got != "400.00 USD" {
					t.Errorf("platform balance %s, want 400.00 USD (taken once)", got)
				}
				if n := r.simChanges(aliceUSD, w.DebitPushID); n != 1 {
					t.Errorf("the platform holds %d changes of the WITHDRAW push, want 1", n)
				}
				if p := r.pushOf(w.DebitPushID); p.State != push.Applied || p.Sends != 2 {
					t.Errorf("push: %s with %d sends; want applied with 2", p.State, p.Sends)
				}
			})
		})
	}
}

func TestWithdrawPushThatKeepsFailingFails(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		r.setChangeBalanceFaults(&ctradersim.Rule{DropP: 1})
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("600.00", usd), bankDetails)
		r.run()
		r.advance(30 * time.Minute)
		if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalProcessing {
			t.Fatalf("after 30 minutes of failures: %s, want processing (still being sent again)", w.Status)
		}
		r.advanceUntil(30*time.Second, 2*time.Hour, func() bool { return r.getWithdrawal(alice, w.ID).State != funding.WithdrawalDebiting })
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalFailed || w.Failure == nil || !strings.Contains(w.Failure.Message, "could not be reached") || w.ReturnPushID != "" {
			t.Fatalf("given up: status %s, failure %+v, return %q; want failed, the platform could not be reached, nothing to return", w.Status, w.Failure, w.ReturnPushID)
		}
		if p := r.pushOf(w.DebitPushID); p.State != push.ResolvedNotApplied || p.Sends < 2 || uint64(p.Sends) != r.changeBalanceCalls() {
			t.Errorf("push: %s with %d sends, %d calls; want resolved_not_applied after several sends", p.State, p.Sends, r.changeBalanceCalls())
		}
		if b := r.balance(r.svc.PlatformAccountID(aliceUSD)); b.PendingOut.Minor() != 0 || b.Posted.Minor() != 0 {
			t.Errorf("the hold was not released: %+v", b)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("platform balance %s, want 1000.00 USD", got)
		}
	})
}
