package funding_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func TestWithdrawalAutoApprovedAndPaid(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{cfg: funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("500.00", usd)}}})
		ctx := context.Background()
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("200.00", usd), bankDetails)
		if w.Status != funding.WithdrawalDebiting || w.Destination != "IBAN DE89 … 3000" {
			t.Fatalf("after the request: status %s, destination %q", w.Status, w.Destination)
		}
		// Reserved until the platform is debited: the screen shows less.
		opts, err := r.svc.WithdrawalOptions(ctx, alice, aliceUSD)
		if err != nil {
			t.Fatal(err)
		}
		if got := opts.Account.Withdrawable.String(); got != "800.00 USD" {
			t.Errorf("withdrawable while the withdrawal is debiting: %s, want 800.00 USD", got)
		}
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalCompleted || !w.AutoApproved {
			t.Fatalf("status %s, auto-approved %v; want completed automatically", w.Status, w.AutoApproved)
		}
		h, err := r.svc.WithdrawalHistory(ctx, alice.UserID, w.ID)
		if diff := cmp.Diff([]string{"requested", "debiting", "held", "approved", "payout_sent", "completed"}, statuses(t, h, err)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if got := r.simBalance(aliceUSD).String(); got != "800.00 USD" {
			t.Errorf("platform balance %s, want 800.00 USD", got)
		}
		if n := r.simChanges(aliceUSD, w.DebitPushID); n != 1 {
			t.Errorf("the platform holds %d changes of the WITHDRAW push, want 1", n)
		}
		// The bank transfer's fee of 5.00 is the client's: 195.00 is paid out.
		for _, c := range []struct{ account, want string }{
			{r.svc.CustomerAccountID(aliceUSD), "0.00 USD"},
			{r.svc.PlatformAccountID(aliceUSD), "-200.00 USD"},
			{"psp:sandbox:USD", "-195.00 USD"},
			{"fees:income:USD", "5.00 USD"},
		} {
			if got := r.posted(c.account, usd).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		if p, err := r.pay.Get(ctx, w.PaymentID); err != nil || p.Status != payments.Succeeded || p.Net.String() != "195.00 USD" {
			t.Errorf("payout %+v, %v; want succeeded, 195.00 USD", p, err)
		}
	})
}

func TestWithdrawalAboveTheLimitWaitsForAnOperator(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{cfg: funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("100.00", usd)}}})
		ctx := context.Background()
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("300.00", usd), bankDetails)
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalAwaitingApproval {
			t.Fatalf("above the limit: %s, want awaiting_approval", w.Status)
		}
		if got := r.simBalance(aliceUSD).String(); got != "700.00 USD" {
			t.Errorf("the platform must be debited while it waits: %s, want 700.00 USD", got)
		}
		tasks, err := r.svc.Tasks(ctx)
		if err != nil || len(tasks) != 1 || tasks[0].Kind != funding.TaskApproval || tasks[0].WithdrawalID != w.ID {
			t.Fatalf("tasks %+v, %v; want the approval", tasks, err)
		}
		if _, err := r.svc.ApproveWithdrawal(ctx, w.ID, ""); !errs.Is(err, errs.Invalid) {
			t.Errorf("approval without an operator: %v", err)
		}
		w, err = r.svc.ApproveWithdrawal(ctx, w.ID, "olga")
		if err != nil || w.Status != funding.WithdrawalApproved || w.DecidedBy != "olga" {
			t.Fatalf("approve: %s by %q, %v", w.Status, w.DecidedBy, err)
		}
		if _, err := r.svc.ApproveWithdrawal(ctx, w.ID, "olga"); !errs.Is(err, errs.Conflict) {
			t.Errorf("approving twice: %v, want a conflict", err)
		}
		r.run()
		if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted || w.AutoApproved {
			t.Fatalf("after approval: %s (auto %v), want completed by the operator", w.Status, w.AutoApproved)
		}
		if got := r.posted("psp:sandbox:USD", usd).String(); got != "-295.00 USD" {
			t.Errorf("paid out %s, want 295.00 USD", got)
		}
	})
}

func TestRejectedWithdrawalReturnsTheMoney(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{cfg: funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": amt("100.00", usd)}}})
		ctx := context.Background()
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("300.00", usd), bankDetails)
		r.run()
		w, err := r.svc.RejectWithdrawal(ctx, w.ID, "olga", "The name on the bank account differs.")
		if err != nil || w.Status != funding.WithdrawalRejected || w.Failure == nil {
			t.Fatalf("reject: %s, failure %+v, %v", w.Status, w.Failure, err)
		}
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalReturned {
			t.Fatalf("after the return: %s, want returned", w.Status)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("platform balance %s, want 1000.00 USD again", got)
		}
		if n := r.simChanges(aliceUSD, w.ReturnPushID); n != 1 {
			t.Errorf("the platform holds %d changes of the return push, want 1", n)
		}
		h, err := r.svc.WithdrawalHistory(ctx, alice.UserID, w.ID)
		if diff := cmp.Diff([]string{"requested", "debiting", "held", "awaiting_approval", "rejected", "returned"}, statuses(t, h, err)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if h[4].Actor != "olga" {
			t.Errorf("the rejection is recorded by %q, want olga", h[4].Actor)
		}
		if p, err := r.pay.Get(ctx, w.PaymentID); !errs.Is(err, errs.NotFound) {
			t.Errorf("a rejected withdrawal created payout %+v, %v", p, err)
		}
	})
}

func TestFailedPayoutReturnsTheMoney(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		details := map[string]string{funding.DetailIBAN: sandbox.RejectedIBAN, funding.DetailHolderName: "Alice Archer"}
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("150.00", usd), details)
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalReturned || w.Failure == nil || !strings.Contains(w.Failure.Message, "goes back") {
			t.Fatalf("rejected payout: status %s, failure %+v; want returned with an explanation", w.Status, w.Failure)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("platform balance %s, want 1000.00 USD again", got)
		}
		for _, c := range []struct{ account, want string }{
			{r.svc.CustomerAccountID(aliceUSD), "0.00 USD"},
			{"psp:sandbox:USD", "0.00 USD"},
			{"fees:income:USD", "0.00 USD"},
		} {
			if got := r.posted(c.account, usd).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		h, err := r.svc.WithdrawalHistory(context.Background(), alice.UserID, w.ID)
		if diff := cmp.Diff([]string{"requested", "debiting", "held", "approved", "payout_sent", "failed", "returned"}, statuses(t, h, err)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
	})
}

func TestInsufficientFundsNamesBothAmounts(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		_, err := r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "w1", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer",
			Amount: amt("1500.00", usd), Details: bankDetails})
		if !errs.Is(err, errs.Insufficient) {
			t.Fatalf("1500 of 1000: %v, want insufficient", err)
		}
		body, ok := funding.AsInsufficient(err)
		if !ok {
			t.Fatalf("no INSUFFICIENT_FUNDS body in %v", err)
		}
		raw, _ := json.Marshal(body)
		want := `{"error":"Insufficient Funds","message":"Insufficient funds for withdrawal.","code":"INSUFFICIENT_FUNDS","availableBalance":1000.00,"requestedAmount":1500.00,"currency":"USD"}`
		if string(raw) != want {
			t.Errorf("body\n got %s\nwant %s", raw, want)
		}
		// Open positions lower what may be withdrawn: equity 1000 - 400 = 600.
		if _, err := r.sim.SetPositions(aliceUSD, "-400.00", "0"); err != nil {
			t.Fatal(err)
		}
		_, err = r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "w2", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer",
			Amount: amt("700.00", usd), Details: bankDetails})
		if body, ok := funding.AsInsufficient(err); !ok || body.AvailableBalance != "600.00" || body.RequestedAmount != "700.00" {
			t.Errorf("700 of 600 withdrawable: %+v, %v", body, err)
		}
		if _, err := r.sim.SetPositions(aliceUSD, "0", "0"); err != nil {
			t.Fatal(err)
		}
		if got := r.posted(r.svc.PlatformAccountID(aliceUSD), usd).String(); got != "0.00 USD" {
			t.Errorf("a refused withdrawal booked %s", got)
		}
	})
}

func TestWithdrawalRefusals(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		lowKYC := alice
		lowKYC.KYCLevel = 1
		for _, c := range []struct {
			name  string
			req   funding.WithdrawalRequest
			code  errs.Code
			field string
		}{
			{"KYC level too low", funding.WithdrawalRequest{ID: "a", Customer: lowKYC, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", usd), Details: bankDetails}, errs.Forbidden, ""},
			{"bad IBAN", funding.WithdrawalRequest{ID: "b", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", usd),
				Details: map[string]string{funding.DetailIBAN: "DE89370400440532013001", funding.DetailHolderName: "A"}}, errs.Invalid, funding.DetailIBAN},
			{"unknown detail", funding.WithdrawalRequest{ID: "c", Customer: alice, Login: aliceUSD, MethodID: "ewallet", Amount: amt("100.00", usd),
				Details: map[string]string{funding.DetailWalletID: "a@b.example", "pin": "1234"}}, errs.Invalid, "pin"},
			{"card without a card deposit", funding.WithdrawalRequest{ID: "d", Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("100.00", usd)}, errs.Invalid, funding.DetailCard},
			{"below the minimum", funding.WithdrawalRequest{ID: "e", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("10.00", usd), Details: bankDetails}, errs.Invalid, ""},
			{"other currency", funding.WithdrawalRequest{ID: "f", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", eur), Details: bankDetails}, errs.Invalid, ""},
			{"someone else's account", funding.WithdrawalRequest{ID: "g", Customer: bob, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", usd), Details: bankDetails}, errs.Forbidden, ""},
		} {
			_, err := r.svc.RequestWithdrawal(ctx, c.req)
			if !errs.Is(err, c.code) {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
				continue
			}
			var fe *funding.FieldError
			if c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
				t.Errorf("%s: %v, want a problem with %s", c.name, err, c.field)
			}
		}
	})
}

func TestCardWithdrawalPaysOutToTheDepositedCard(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		d := r.deposit(bob, bobUSD, "card", amt("100.00", usd))
		r.payByCard(d, "5555555555554444")
		r.run()
		opts, err := r.svc.WithdrawalOptions(ctx, bob, bobUSD)
		if err != nil {
			t.Fatal(err)
		}
		if len(opts.Cards) != 1 || opts.Cards[0].Brand != "mastercard" || opts.Cards[0].Last4 != "4444" {
			t.Fatalf("saved cards %+v, want the mastercard ending 4444", opts.Cards)
		}
		if got := opts.Account.Withdrawable.String(); got != "347.20 USD" {
			t.Errorf("withdrawable %s, want 347.20 USD", got)
		}
		w := r.withdraw(bob, bobUSD, "card", amt("50.00", usd), map[string]string{funding.DetailCard: opts.Cards[0].ID})
		if w.Destination != "mastercard •••• 4444" {
			t.Errorf("destination %q", w.Destination)
		}
		r.run()
		w = r.getWithdrawal(bob, w.ID)
		if w.Status != funding.WithdrawalCompleted {
			t.Fatalf("card withdrawal: %s, want completed", w.Status)
		}
		// The card's payout fee (1 %) is the broker's: 50.00 is paid out and
		// 0.50 booked as the broker's expense.
		if got := r.posted("fees:expense:USD", usd).String(); got != "0.50 USD" {
			t.Errorf("fee expense %s, want 0.50 USD", got)
		}
		if got := r.posted("psp:sandbox:USD", usd).String(); got != "49.50 USD" {
			t.Errorf("provider clearing %s, want 100.00 in - 50.00 out - 0.50 fee = 49.50 USD", got)
		}
	})
}

func TestPlatformRefusesTheWithdrawPush(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("800.00", usd), bankDetails)
		// A trade loses money between the request and the push.
		if _, err := r.sim.SetPositions(aliceUSD, "-500.00", "0"); err != nil {
			t.Fatal(err)
		}
		r.run()
		w = r.getWithdrawal(alice, w.ID)
		if w.Status != funding.WithdrawalFailed || w.Failure == nil || w.Failure.Reason != "platform_refused" || w.ReturnPushID != "" {
			t.Fatalf("refused WITHDRAW: status %s, failure %+v, return %q", w.Status, w.Failure, w.ReturnPushID)
		}
		if b := r.balance(r.svc.PlatformAccountID(aliceUSD)); b.PendingOut.Minor() != 0 || b.Posted.Minor() != 0 {
			t.Errorf("the hold was not released: %+v", b)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("platform balance %s, want 1000.00 USD", got)
		}
		// NOT_ENOUGH_MONEY ends the push at once: it is never sent again.
		r.advance(2 * time.Hour)
		if p := r.pushOf(w.DebitPushID); p.State != push.Rejected || p.Sends != 1 || r.changeBalanceCalls() != 1 {
			t.Errorf("push: %s with %d sends, %d calls; want rejected after 1", p.State, p.Sends, r.changeBalanceCalls())
		}
		if _, err := r.sim.SetPositions(aliceUSD, "0", "0"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTwoFactorCode(t *testing.T) {
	cfg := funding.Config{Require2FA: true, CodeTTL: 10 * time.Minute, CodeAttempts: 3}
	t.Run("right code after a wrong one", func(t *testing.T) {
		each(t, func(t *testing.T, db *sqlstore.DB) {
			r := newRig(t, db, rigOptions{cfg: cfg})
			ctx := context.Background()
			w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("100.00", usd), bankDetails)
			if w.Status != funding.WithdrawalAwaiting2FA || w.Code == nil || !w.Code.Sent || w.Code.AttemptsLeft != 3 {
				t.Fatalf("after the request: %s, code %+v", w.Status, w.Code)
			}
			r.run()
			if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
				t.Fatalf("the platform was debited before the code: %s", got)
			}
			code := r.lastCode(alice)
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			w, err := r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, wrong)
			if !errs.Is(err, errs.Invalid) || !strings.Contains(errs.MessageOf(err), "2 attempts left") || w.Code.AttemptsLeft != 2 {
				t.Fatalf("wrong code: %v, %+v", err, w.Code)
			}
			if _, err := r.svc.ConfirmWithdrawal(ctx, bob.UserID, w.ID, code); !errs.Is(err, errs.NotFound) {
				t.Errorf("Bob confirming Alice's withdrawal: %v", err)
			}
			w, err = r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, code)
			if err != nil || w.Status != funding.WithdrawalDebiting {
				t.Fatalf("right code: %s, %v", w.Status, err)
			}
			if _, err := r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, code); !errs.Is(err, errs.Conflict) {
				t.Errorf("the code again: %v, want a conflict", err)
			}
			r.run()
			if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted {
				t.Fatalf("after the code: %s, want completed", w.Status)
			}
		})
	})
	t.Run("a request confirmed by the caller's own second factor", func(t *testing.T) {
		each(t, func(t *testing.T, db *sqlstore.DB) {
			r := newRig(t, db, rigOptions{cfg: cfg})
			w, err := r.svc.RequestWithdrawal(context.Background(), funding.WithdrawalRequest{ID: "wiz_confirmed",
				Customer: alice, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", usd), Details: bankDetails, Confirmed: true})
			if err != nil {
				t.Fatalf("RequestWithdrawal: %v", err)
			}
			if w.Status == funding.WithdrawalAwaiting2FA || w.Code != nil {
				t.Fatalf("a confirmed request: %s, code %+v; want no second code", w.Status, w.Code)
			}
			if _, ok := r.mailer.box.Last(alice.Email); ok {
				t.Error("a code was e-mailed for a confirmed request")
			}
			r.run()
			if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted {
				t.Fatalf("after the jobs: %s, want completed", w.Status)
			}
			if got := r.simBalance(aliceUSD).String(); got != "900.00 USD" {
				t.Errorf("platform balance %s, want 900.00 USD", got)
			}
		})
	})
	t.Run("attempts exhausted", func(t *testing.T) {
		each(t, func(t *testing.T, db *sqlstore.DB) {
			r := newRig(t, db, rigOptions{cfg: cfg})
			ctx := context.Background()
			w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("100.00", usd), bankDetails)
			code := r.lastCode(alice)
			wrong := []string{"000000", "111111", "222222", "333333"}
			wrong = slices.DeleteFunc(wrong, func(c string) bool { return c == code })[:3]
			var err error
			for i, c := range wrong {
				w, err = r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, c)
				if i < 2 && !errs.Is(err, errs.Invalid) {
					t.Fatalf("wrong code %d: %v", i+1, err)
				}
			}
			if !errs.Is(err, errs.RateLimited) || w.Status != funding.WithdrawalFailed || w.Failure.Reason != "code_attempts_exhausted" {
				t.Fatalf("third wrong code: %v, status %s", err, w.Status)
			}
			if _, err := r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, code); !errs.Is(err, errs.Conflict) {
				t.Errorf("the right code after the cancellation: %v, want a conflict", err)
			}
			if b := r.balance(r.svc.PlatformAccountID(aliceUSD)); b.PendingOut.Minor() != 0 {
				t.Errorf("the reservation was not released: %+v", b)
			}
		})
	})
	t.Run("expired code", func(t *testing.T) {
		each(t, func(t *testing.T, db *sqlstore.DB) {
			r := newRig(t, db, rigOptions{cfg: cfg})
			ctx := context.Background()
			w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("100.00", usd), bankDetails)
			code := r.lastCode(alice)
			r.clk.Advance(10 * time.Minute)
			w, err := r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, code)
			if !errs.Is(err, errs.Expired) || w.Status != funding.WithdrawalFailed || w.Failure.Reason != "code_expired" {
				t.Fatalf("expired code: %v, %s", err, w.Status)
			}
			// A code nobody enters is cancelled by the expiry job.
			w2 := r.withdraw(alice, aliceUSD, "bank-transfer", amt("100.00", usd), bankDetails)
			opts, err := r.svc.WithdrawalOptions(ctx, alice, aliceUSD)
			if err != nil || opts.Account.Withdrawable.String() != "900.00 USD" {
				t.Errorf("withdrawable while a code is pending: %s, %v; want 900.00 USD", opts.Account.Withdrawable, err)
			}
			r.advance(10 * time.Minute)
			if w2 = r.getWithdrawal(alice, w2.ID); w2.Status != funding.WithdrawalFailed {
				t.Fatalf("unconfirmed after the code's expiry: %s, want failed", w2.Status)
			}
			if b := r.balance(r.svc.PlatformAccountID(aliceUSD)); b.PendingOut.Minor() != 0 {
				t.Errorf("the reservation was not released: %+v", b)
			}
		})
	})
	t.Run("mail down then the same request again", func(t *testing.T) {
		each(t, func(t *testing.T, db *sqlstore.DB) {
			r := newRig(t, db, rigOptions{cfg: cfg})
			ctx := context.Background()
			req := funding.WithdrawalRequest{ID: "w-mail", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("100.00", usd), Details: bankDetails}
			r.mailer.setFail(true)
			w, err := r.svc.RequestWithdrawal(ctx, req)
			if !errs.Is(err, errs.Unavailable) || w.Status != funding.WithdrawalAwaiting2FA || w.Code.Sent {
				t.Fatalf("mail down: %v, %s, %+v", err, w.Status, w.Code)
			}
			r.mailer.setFail(false)
			r.clk.Advance(9 * time.Minute) // the new code gets a full lifetime
			again, err := r.svc.RequestWithdrawal(ctx, req)
			if err != nil || again.ID != w.ID || !again.Code.Sent {
				t.Fatalf("the same request again: %s, %+v, %v", again.ID, again.Code, err)
			}
			r.advance(5 * time.Minute)
			if _, err := r.svc.ConfirmWithdrawal(ctx, alice.UserID, w.ID, r.lastCode(alice)); err != nil {
				t.Fatal(err)
			}
			r.run()
			if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted {
				t.Errorf("after the resent code: %s, want completed", w.Status)
			}
		})
	})
}

func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		const n = 4
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errc  = make(chan error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "race-" + string(rune('a'+i)), Customer: alice, Login: aliceUSD,
					MethodID: "bank-transfer", Amount: amt("400.00", usd), Details: bankDetails})
				errc <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errc)
		ok, short := 0, 0
		for err := range errc {
			switch {
			case err == nil:
				ok++
			case errs.Is(err, errs.Insufficient):
				short++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 2 || short != 2 {
			t.Fatalf("%d accepted and %d refused; want 2 of 400 accepted from 1000 and 2 refused", ok, short)
		}
		r.run()
		if got := r.simBalance(aliceUSD).String(); got != "200.00 USD" {
			t.Errorf("platform balance %s, want 200.00 USD", got)
		}
	})
}

func TestWithdrawPushInDoubtKeepsTheReservation(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		if err := r.sim.SetFaults(ctradersim.FaultConfig{Endpoints: map[string]ctradersim.Rule{ctradersim.EndpointChangeBalance: {ApplyResetP: 1}}}); err != nil {
			t.Fatal(err)
		}
		w := r.withdraw(alice, aliceUSD, "bank-transfer", amt("600.00", usd), bankDetails)
		r.run()
		if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalProcessing || w.State != funding.WithdrawalDebiting {
			t.Fatalf("WITHDRAW in doubt: status %s, state %s; want processing, debiting", w.Status, w.State)
		}
		// The platform did take the 600; until that is known the 600 stays
		// reserved, so a second withdrawal cannot take it again.
		_, err := r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "second", Customer: alice, Login: aliceUSD, MethodID: "bank-transfer",
			Amount: amt("300.00", usd), Details: bankDetails})
		if body, ok := funding.AsInsufficient(err); !ok || body.AvailableBalance != "0.00" {
			t.Fatalf("a second withdrawal while the first is in doubt: %+v, %v; want insufficient with 0.00 available", body, err)
		}
		if err := r.sim.SetFaults(ctradersim.FaultConfig{}); err != nil {
			t.Fatal(err)
		}
		r.advance(20 * time.Second)
		if w = r.getWithdrawal(alice, w.ID); w.Status != funding.WithdrawalCompleted {
			t.Fatalf("after the look-up: %s, want completed", w.Status)
		}
		if n := r.simChanges(aliceUSD, w.DebitPushID); n != 1 {
			t.Errorf("the platform holds %d changes of the WITHDRAW push, want 1", n)
		}
	})
}
