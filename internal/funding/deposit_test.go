package funding_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func TestCardDepositReachesThePlatformExactlyOnce(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		// Every webhook is delivered twice: the credit must still happen once.
		r := newRig(t, db, rigOptions{sandbox: func(o *sandbox.Options) { o.DuplicateWebhooks = true }})
		ctx := context.Background()
		req := funding.DepositRequest{ID: "form-1", Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("100.00", usd),
			ReturnURL: "https://cashier.example/inapp/deposit/return", Lang: "en"}
		d, err := r.svc.StartDeposit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != funding.DepositAwaitingPayment || d.Next.Kind != psp.NextRedirect {
			t.Fatalf("after start: status %s, next %+v; want awaiting_payment with a hosted page", d.Status, d.Next)
		}
		again, err := r.svc.StartDeposit(ctx, req)
		if err != nil || again.ID != d.ID {
			t.Fatalf("the same form again gave %s, %v; want deposit %s", again.ID, err, d.ID)
		}
		r.payByCard(d, "4242424242424242")
		r.run()

		d = r.getDeposit(alice, d.ID)
		want := struct{ Status, Amount, Fee, Net, Credit string }{"completed", "100.00 USD", "2.80 USD", "97.20 USD", "97.20 USD"}
		got := struct{ Status, Amount, Fee, Net, Credit string }{string(d.Status), d.Amount.String(), d.Fee.String(), d.Net.String(), d.Credit.String()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deposit (-want +got):\n%s", diff)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1097.20 USD" {
			t.Errorf("platform balance %s, want 1097.20 USD", got)
		}
		if n := r.simChanges(aliceUSD, d.PushID); n != 1 {
			t.Errorf("the platform holds %d changes of push %s, want exactly 1", n, d.PushID)
		}
		for _, c := range []struct {
			account, want string
		}{
			{r.svc.CustomerAccountID(aliceUSD), "0.00 USD"},
			{r.svc.PlatformAccountID(aliceUSD), "97.20 USD"},
			{"psp:sandbox:USD", "100.00 USD"},
			{"fees:income:USD", "2.80 USD"},
		} {
			if got := r.posted(c.account, usd).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		h, err := r.svc.DepositHistory(ctx, alice.UserID, d.ID)
		if diff := cmp.Diff([]string{"created", "awaiting_payment", "paid", "crediting", "completed"}, statuses(t, h, err)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		// The same form after completion changes nothing.
		if again, err := r.svc.StartDeposit(ctx, req); err != nil || again.Status != funding.DepositCompleted {
			t.Errorf("the form again after completion: %s, %v", again.Status, err)
		}
		if _, err := r.svc.StartDeposit(ctx, funding.DepositRequest{ID: "form-1", Customer: alice, Login: aliceUSD, MethodID: "card",
			Amount: amt("200.00", usd)}); !errs.Is(err, errs.Conflict) {
			t.Errorf("the same form id with another amount: %v, want a conflict", err)
		}
		if _, err := r.svc.Deposit(ctx, bob.UserID, d.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("Bob reading Alice's deposit: %v, want not found", err)
		}
	})
}

func TestDeclinedCardThenRetry(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		first := r.deposit(alice, aliceUSD, "card", amt("50.00", usd))
		r.payByCard(first, "4000000000000002") // do not honour
		r.run()
		first = r.getDeposit(alice, first.ID)
		if first.Status != funding.DepositDeclined || first.Failure == nil {
			t.Fatalf("declined card: status %s, failure %+v", first.Status, first.Failure)
		}
		if first.Failure.Code != payments.CodePaymentFailed || first.Failure.RetryAllowed == nil || !*first.Failure.RetryAllowed || first.Failure.Reason != psp.DeclineDoNotHonour {
			t.Errorf("failure body %+v, want PAYMENT_FAILED, retry allowed, reason do_not_honour", *first.Failure)
		}
		if got := r.posted("psp:sandbox:USD", usd).String(); got != "0.00 USD" {
			t.Errorf("a declined payment booked %s at the provider", got)
		}

		second := r.deposit(alice, aliceUSD, "card", amt("50.00", usd))
		r.payByCard(second, "4242424242424242")
		r.run()
		second = r.getDeposit(alice, second.ID)
		if second.Status != funding.DepositCompleted {
			t.Fatalf("retry: status %s, want completed", second.Status)
		}
		// 50.00 less 2.5 % + 0.30 = 1.55 fee.
		if got := r.simBalance(aliceUSD).String(); got != "1048.45 USD" {
			t.Errorf("platform balance %s, want 1048.45 USD (one credit of 48.45)", got)
		}
	})
}

func TestBankTransferCompletesWhenTheMoneyArrivesDaysLater(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		d := r.deposit(alice, aliceEUR, "bank-transfer", amt("300.00", eur))
		if d.Status != funding.DepositAwaitingPayment || d.Next.Kind != psp.NextInstructions || d.Next.Instructions == nil || d.Next.Instructions.IBAN == "" {
			t.Fatalf("bank transfer: status %s, next %+v; want bank details", d.Status, d.Next)
		}
		// Two days pass: far beyond the deposit expiry of two hours, but the
		// bank's instructions are valid for three days.
		r.advance(24 * time.Hour)
		r.advance(24 * time.Hour)
		if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositAwaitingPayment {
			t.Fatalf("after two days: %s, want still awaiting_payment", d.Status)
		}
		r.control(d.PaymentID, "arrive")
		r.run()
		if d = r.getDeposit(alice, d.ID); d.Status != funding.DepositCompleted {
			t.Fatalf("after the money arrived: %s, want completed", d.Status)
		}
		if got := r.simBalance(aliceEUR).String(); got != "800.00 EUR" {
			t.Errorf("platform balance %s, want 800.00 EUR", got)
		}
	})
}

func TestUnpaidDepositExpiresAndALatePaymentIsStillCredited(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{
			cfg:     funding.Config{DepositExpiry: time.Hour},
			sandbox: func(o *sandbox.Options) { o.CheckoutTTL = 24 * time.Hour },
		})
		d := r.deposit(alice, aliceUSD, "card", amt("20.00", usd))
		r.advance(59 * time.Minute)
		if got := r.getDeposit(alice, d.ID).Status; got != funding.DepositAwaitingPayment {
			t.Fatalf("before expiry: %s", got)
		}
		r.advance(2 * time.Minute)
		started := d
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositExpired || d.Failure == nil || d.Failure.Reason != "expired" {
			t.Fatalf("after expiry: status %s, failure %+v", d.Status, d.Failure)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1000.00 USD" {
			t.Errorf("an expired deposit moved the balance to %s", got)
		}

		if d.Next.Kind != "" {
			t.Errorf("an expired deposit still offers its next step %+v", d.Next)
		}
		// The customer still had the hosted page open and pays now.
		r.payByCard(started, "4242424242424242")
		r.run()
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositCompleted || d.Failure != nil {
			t.Fatalf("late payment: status %s, failure %+v; want completed", d.Status, d.Failure)
		}
		h, err := r.svc.DepositHistory(context.Background(), alice.UserID, d.ID)
		if diff := cmp.Diff([]string{"created", "awaiting_payment", "expired", "paid", "crediting", "completed"}, statuses(t, h, err)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if h[3].Reason != "late_payment" {
			t.Errorf("paid after expiry has reason %q, want late_payment", h[3].Reason)
		}
	})
}

func TestFXDepositRecordsBothAmounts(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		q, err := r.svc.QuoteDeposit(ctx, alice, aliceUSD, "card", amt("100.00", eur))
		if err != nil {
			t.Fatal(err)
		}
		if q.FX == nil || q.Account.String() != "105.32 USD" {
			t.Fatalf("quote: account %s, fx %+v; want 105.32 USD (97.20 EUR at 1.0835)", q.Account, q.FX)
		}
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", eur))
		r.payByCard(d, "4242424242424242")
		r.run()
		d = r.getDeposit(alice, d.ID)
		got := []string{string(d.Status), d.Amount.String(), d.Fee.String(), d.Net.String(), d.Credit.String(), d.FXRate.String()}
		want := []string{"completed", "100.00 EUR", "2.80 EUR", "97.20 EUR", "105.32 USD", "1.0835"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deposit (-want +got):\n%s", diff)
		}
		for _, c := range []struct{ account, want string }{
			{"psp:sandbox:EUR", "100.00 EUR"},
			{"fees:income:EUR", "2.80 EUR"},
			{"fx:EUR", "97.20 EUR"},
			{"fx:USD", "-105.32 USD"},
			{r.svc.PlatformAccountID(aliceUSD), "105.32 USD"},
		} {
			cur := usd
			if c.want[len(c.want)-3:] == "EUR" {
				cur = eur
			}
			if got := r.posted(c.account, cur).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		if got := r.simBalance(aliceUSD).String(); got != "1105.32 USD" {
			t.Errorf("platform balance %s, want 1105.32 USD", got)
		}
	})
}

func TestPushInDoubtShowsProcessingUntilTheLookUpResolvesIt(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		// The platform applies the change and the connection breaks before
		// the answer.
		if err := r.sim.SetFaults(ctradersim.FaultConfig{Endpoints: map[string]ctradersim.Rule{ctradersim.EndpointChangeBalance: {ApplyResetP: 1}}}); err != nil {
			t.Fatal(err)
		}
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositProcessing || d.State != funding.DepositCrediting {
			t.Fatalf("push in doubt: status %s, state %s; want processing, crediting", d.Status, d.State)
		}
		tasks, err := r.svc.Tasks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 || tasks[0].Kind != funding.TaskPushInDoubt || tasks[0].DepositID != d.ID || tasks[0].PushID != d.PushID {
			t.Errorf("tasks %+v, want the in-doubt push of %s", tasks, d.ID)
		}
		if err := r.sim.SetFaults(ctradersim.FaultConfig{}); err != nil {
			t.Fatal(err)
		}
		// Once the request can no longer land, the push is looked up.
		r.advance(20 * time.Second)
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositCompleted {
			t.Fatalf("after the look-up: %s, want completed", d.Status)
		}
		p, err := r.push.Get(ctx, d.PushID)
		if err != nil || p.State != push.ResolvedApplied {
			t.Errorf("push %s: %s, %v; want resolved_applied", d.PushID, p.State, err)
		}
		if n := r.simChanges(aliceUSD, d.PushID); n != 1 {
			t.Errorf("the platform holds %d changes of the push, want 1", n)
		}
		if tasks, _ := r.svc.Tasks(ctx); len(tasks) != 0 {
			t.Errorf("tasks left: %+v", tasks)
		}
	})
}

func TestOperatorResolvesAnInDoubtPushWithoutLookUp(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{sim: func(c *ctradersim.Config) { c.DisableHistoryExtension = true }})
		ctx := context.Background()
		// The connection breaks before anything is applied.
		if err := r.sim.SetFaults(ctradersim.FaultConfig{Endpoints: map[string]ctradersim.Rule{ctradersim.EndpointChangeBalance: {DropP: 1}}}); err != nil {
			t.Fatal(err)
		}
		d := r.deposit(bob, bobUSD, "card", amt("40.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		r.advance(time.Hour)
		if d = r.getDeposit(bob, d.ID); d.Status != funding.DepositProcessing {
			t.Fatalf("without a look-up the push waits: %s, want processing", d.Status)
		}
		if _, err := r.push.Resolve(ctx, d.PushID, false, "olga", "not in the trader's balance history"); err != nil {
			t.Fatal(err)
		}
		d = r.getDeposit(bob, d.ID)
		if d.Status != funding.DepositReversed || d.Flag != funding.FlagPlatformRefused {
			t.Fatalf("resolved not applied: status %s, flag %q; want reversed and flagged", d.Status, d.Flag)
		}
		if got := r.posted("suspense:USD", usd).String(); got != "38.70 USD" {
			t.Errorf("suspense holds %s, want the 38.70 USD credit", got)
		}
	})
}

func TestPlatformRejectionReversesTheDepositAndFlagsIt(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		if err := r.sim.SetFaults(ctradersim.FaultConfig{Endpoints: map[string]ctradersim.Rule{
			ctradersim.EndpointChangeBalance: {ErrorP: 1, ErrorStatus: 400, ErrorCode: "CHANGE_BALANCE_BAD_AMOUNT"}}}); err != nil {
			t.Fatal(err)
		}
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242424242424242")
		r.run()
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositReversed || d.Flag != funding.FlagPlatformRefused || d.Failure == nil {
			t.Fatalf("platform refused: status %s, flag %q, failure %+v", d.Status, d.Flag, d.Failure)
		}
		// A business refusal ends the push at once: it is never sent again.
		r.advance(2 * time.Hour)
		if p := r.pushOf(d.PushID); p.State != push.Rejected || p.Sends != 1 || r.changeBalanceCalls() != 1 {
			t.Errorf("push: %s with %d sends, %d calls; want rejected after 1", p.State, p.Sends, r.changeBalanceCalls())
		}
		for _, c := range []struct{ account, want string }{
			{r.svc.CustomerAccountID(aliceUSD), "0.00 USD"},
			{r.svc.PlatformAccountID(aliceUSD), "0.00 USD"},
			{"suspense:USD", "97.20 USD"},
			{"psp:sandbox:USD", "100.00 USD"},
		} {
			if got := r.posted(c.account, usd).String(); got != c.want {
				t.Errorf("ledger %s = %s, want %s", c.account, got, c.want)
			}
		}
		tasks, err := r.svc.Tasks(ctx)
		if err != nil || len(tasks) != 1 || tasks[0].Kind != funding.TaskFlagged || tasks[0].DepositID != d.ID {
			t.Fatalf("tasks %+v, %v; want the flagged deposit", tasks, err)
		}
		if err := r.svc.ClearFlag(ctx, d.ID, "olga", "refunded at the provider"); err != nil {
			t.Fatal(err)
		}
		if tasks, _ := r.svc.Tasks(ctx); len(tasks) != 0 {
			t.Errorf("tasks after clearing the flag: %+v", tasks)
		}
	})
}

func TestDepositRefusals(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		lowKYC := alice
		lowKYC.KYCLevel = 0
		for _, c := range []struct {
			name string
			req  funding.DepositRequest
			code errs.Code
		}{
			{"someone else's account", funding.DepositRequest{ID: "a", Customer: bob, Login: aliceUSD, MethodID: "card", Amount: amt("50.00", usd)}, errs.Forbidden},
			{"below the minimum", funding.DepositRequest{ID: "b", Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("5.00", usd)}, errs.Invalid},
			{"KYC level too low for bank transfers", funding.DepositRequest{ID: "c", Customer: lowKYC, Login: aliceUSD, MethodID: "bank-transfer", Amount: amt("500.00", usd)}, errs.Forbidden},
			{"no request id", funding.DepositRequest{Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("50.00", usd)}, errs.Invalid},
			{"card without a return URL", funding.DepositRequest{ID: "e", Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("50.00", usd)}, errs.Invalid},
		} {
			_, err := r.svc.StartDeposit(ctx, c.req)
			if !errs.Is(err, c.code) {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		_, err := r.svc.StartDeposit(ctx, funding.DepositRequest{ID: "d", Customer: alice, Login: aliceUSD, MethodID: "card", Amount: amt("5.00", usd)})
		if le, ok := payments.AsLimitError(err); !ok || le.Kind != payments.BelowMinimum {
			t.Errorf("below the minimum: %v, want a *payments.LimitError", err)
		}
		opts, err := r.svc.DepositOptions(ctx, alice, aliceUSD)
		if err != nil {
			t.Fatal(err)
		}
		if !opts.Account.BalanceKnown || opts.Account.Balance.String() != "1000.00 USD" || len(opts.Methods) == 0 {
			t.Errorf("deposit options: %+v", opts)
		}
	})
}

func TestPartialBankTransferWaitsForReviewThenCreditsWhatArrived(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		// 300 EUR asked into the USD account; only half arrives.
		d := r.deposit(alice, aliceUSD, "bank-transfer", amt("300.00", eur))
		if d.Credit.String() != "325.05 USD" {
			t.Fatalf("quoted credit %s, want 325.05 USD", d.Credit)
		}
		r.control(d.PaymentID, "arrive-partial")
		r.run()
		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositProcessing || d.Flag != funding.FlagPaymentReview {
			t.Fatalf("partial arrival: status %s, flag %q; want processing under review", d.Status, d.Flag)
		}
		if tasks, err := r.svc.Tasks(ctx); err != nil || len(tasks) != 1 || tasks[0].Flag != funding.FlagPaymentReview {
			t.Errorf("tasks %+v, %v; want the review", tasks, err)
		}
		if _, err := r.pay.ResolveReview(ctx, d.PaymentID, payments.Succeeded, "olga", "customer confirmed the partial transfer"); err != nil {
			t.Fatal(err)
		}
		r.run()
		d = r.getDeposit(alice, d.ID)
		// 150.00 EUR at 1.0835 is 162.525, half to even 162.52.
		got := []string{string(d.Status), d.Flag, d.Amount.String(), d.Credit.String()}
		want := []string{"completed", "", "150.00 EUR", "162.52 USD"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deposit (-want +got):\n%s", diff)
		}
		if got := r.posted("psp:sandbox:EUR", eur).String(); got != "150.00 EUR" {
			t.Errorf("provider clearing %s, want what arrived, 150.00 EUR", got)
		}
	})
}

func TestBankDepositCreditsOnce(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		credit := funding.BankCredit{ID: "1795258630837_bank_1", UserID: alice.UserID, Login: aliceUSD, Amount: amt("50.00", usd)}
		d, err := r.svc.BankDeposit(ctx, credit)
		if err != nil {
			t.Fatal(err)
		}
		again, err := r.svc.BankDeposit(ctx, credit)
		if err != nil || again.ID != d.ID {
			t.Fatalf("the same bank transfer again gave %s, %v; want deposit %s", again.ID, err, d.ID)
		}
		r.run()
		if _, err := r.svc.BankDeposit(ctx, credit); err != nil {
			t.Fatalf("the same bank transfer after the push: %v", err)
		}
		r.run()

		d = r.getDeposit(alice, d.ID)
		if d.Status != funding.DepositCompleted || d.Credit.String() != "50.00 USD" || d.Fee.Sign() != 0 {
			t.Errorf("deposit: %s, credit %s, fee %s; want completed, 50.00 USD, no fee", d.Status, d.Credit, d.Fee)
		}
		if got := r.simBalance(aliceUSD).String(); got != "1050.00 USD" {
			t.Errorf("platform balance %s, want 1050.00 USD", got)
		}
		if n := r.simChanges(aliceUSD, d.PushID); n != 1 {
			t.Errorf("the platform holds %d changes of push %s, want exactly 1", n, d.PushID)
		}
		if got := r.posted("psp:"+funding.BankRailProvider+":USD", usd).String(); got != "50.00 USD" {
			t.Errorf("bank rail clearing = %s, want 50.00 USD", got)
		}

		refused := []struct {
			name string
			c    funding.BankCredit
			want errs.Code
		}{
			{"the same id with another amount", funding.BankCredit{ID: credit.ID, UserID: alice.UserID, Login: aliceUSD, Amount: amt("60.00", usd)}, errs.Conflict},
			{"someone else's account", funding.BankCredit{ID: "bt-2", UserID: bob.UserID, Login: aliceUSD, Amount: amt("10.00", usd)}, errs.Forbidden},
			{"no amount", funding.BankCredit{ID: "bt-3", UserID: alice.UserID, Login: aliceUSD, Amount: amt("0.00", usd)}, errs.Invalid},
			{"no id", funding.BankCredit{UserID: alice.UserID, Login: aliceUSD, Amount: amt("10.00", usd)}, errs.Invalid},
		}
		for _, tc := range refused {
			if _, err := r.svc.BankDeposit(ctx, tc.c); errs.CodeOf(err) != tc.want {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
			}
		}
		r.run()
		if got := r.simBalance(aliceUSD).String(); got != "1050.00 USD" {
			t.Errorf("platform balance after the refusals %s, want 1050.00 USD", got)
		}
	})
}
