package funding_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// TestThousandSimultaneousWithdrawalsNeverOverdraw sends 1,000 withdrawal
// requests of 50.00 to 80.99 USD against one trading account holding
// 1,000.00 USD, all at once. The accepted ones must add up to at most the
// balance, every other one must be refused as insufficient (not fail), the
// reservations must be exactly the accepted amounts, and once the pushes
// have run the platform must have lost exactly the accepted total, each
// withdrawal once (the rig's clean-up also verifies the ledger and that
// every platform balance moved by what the ledger says).
func TestThousandSimultaneousWithdrawalsNeverOverdraw(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		const n = 1000
		opening := r.simBalance(aliceUSD)
		type result struct {
			amount money.Amount
			w      funding.Withdrawal
			err    error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			amount := money.New(int64(5000+(i*7919)%3100), usd) // 50.00 … 80.99, in a scrambled order
			wg.Go(func() {
				<-start
				w, err := r.svc.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: fmt.Sprintf("race-%04d", i), Customer: alice,
					Login: aliceUSD, MethodID: "bank-transfer", Amount: amount, Details: bankDetails})
				results[i] = result{amount, w, err}
			})
		}
		close(start)
		wg.Wait()

		accepted, refused := 0, 0
		total := money.Zero(usd)
		smallestRefused := money.New(1<<62, usd)
		for i, res := range results {
			switch {
			case res.err == nil:
				accepted++
				var err error
				if total, err = total.Add(res.amount); err != nil {
					t.Fatal(err)
				}
			case errs.Is(res.err, errs.Insufficient):
				refused++
				if compare(t, res.amount, smallestRefused) < 0 {
					smallestRefused = res.amount
				}
			default:
				t.Errorf("request %d (%s): %v, want acceptance or insufficient funds", i, res.amount, res.err)
			}
		}
		if compare(t, total, opening) > 0 {
			t.Fatalf("%d withdrawals accepted for %s from a balance of %s: overdrawn", accepted, total, opening)
		}
		left, err := opening.Sub(total)
		if err != nil {
			t.Fatal(err)
		}
		// No spurious refusal: what is left cannot pay the smallest refused request.
		if refused > 0 && compare(t, smallestRefused, left) <= 0 {
			t.Errorf("a request of %s was refused while %s was left", smallestRefused, left)
		}
		if accepted+refused != n || accepted == 0 {
			t.Fatalf("%d accepted, %d refused of %d", accepted, refused, n)
		}
		if out := r.balance(r.svc.PlatformAccountID(aliceUSD)).PendingOut; out != total {
			t.Errorf("reserved on the platform account: %s, want the accepted total %s", out, total)
		}

		r.run()
		if got := r.simBalance(aliceUSD); got != left {
			t.Errorf("platform balance %s after the withdrawals, want %s - %s = %s", got, opening, total, left)
		}
		for _, res := range results {
			if res.err != nil {
				continue
			}
			w := r.getWithdrawal(alice, res.w.ID)
			if w.Status != funding.WithdrawalCompleted {
				t.Errorf("withdrawal %s: %s, want completed", w.ID, w.Status)
			}
			if got := r.simChanges(aliceUSD, w.DebitPushID); got != 1 {
				t.Errorf("withdrawal %s was taken from the platform %d times, want once", w.ID, got)
			}
		}
		t.Logf("%d accepted for %s, %d refused, %s left", accepted, total, refused, left)
	})
}

// TestSimultaneousWebhooksBookOnce delivers the sandbox's signed
// "payment succeeded" webhook of one card deposit 50 times at once, before
// the sandbox's own delivery jobs run. Every delivery must be acknowledged,
// the event recorded once, the deposit booked once and credited to the
// platform once, also after the sandbox's own (duplicate) deliveries.
func TestSimultaneousWebhooksBookOnce(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		d := r.deposit(alice, aliceUSD, "card", amt("100.00", usd))
		r.payByCard(d, "4242 4242 4242 4242")
		p, err := r.pay.Get(ctx, d.PaymentID)
		if err != nil {
			t.Fatal(err)
		}
		var eventID string
		var body []byte
		if err := db.QueryRow(ctx, `SELECT id, body FROM sandbox_events WHERE payment_id = ? AND type = 'payment.succeeded'`,
			p.ProviderRef).Scan(&eventID, &body); err != nil {
			t.Fatalf("the sandbox's succeeded event: %v", err)
		}

		const n = 50
		statuses := make([]int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, err := http.NewRequest(http.MethodPost, r.base+"/psp/sandbox/webhook", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(sandbox.EventIDHeader, eventID)
				req.Header.Set(sandbox.SignatureHeader, psp.Sign([]byte("whsec_test"), r.clk.Now(), body))
				<-start
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		close(start)
		wg.Wait()
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Errorf("delivery %d answered %d, want 200 (a duplicate is acknowledged)", i, st)
			}
		}

		var events int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM payment_events WHERE provider = 'sandbox' AND provider_event_id = ?`, eventID).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if events != 1 {
			t.Errorf("the event is recorded %d times, want once", events)
		}
		got := r.getDeposit(alice, d.ID)
		if got.Status != funding.DepositCrediting {
			t.Fatalf("after the deliveries: %s, want crediting", got.Status)
		}
		customer := r.balance(r.svc.CustomerAccountID(aliceUSD))
		if customer.Posted != got.Credit || customer.PendingOut != got.Credit {
			t.Errorf("customer account: %s posted, %s held; want the credit %s booked and held once", customer.Posted, customer.PendingOut, got.Credit)
		}

		r.run() // the sandbox's own deliveries, then the DEPOSIT push
		if got = r.getDeposit(alice, d.ID); got.Status != funding.DepositCompleted {
			t.Fatalf("after the jobs: %s, want completed", got.Status)
		}
		if n := r.simChanges(aliceUSD, got.PushID); n != 1 {
			t.Errorf("the platform holds %d DEPOSITs of the deposit, want 1", n)
		}
		if moved := r.posted(r.svc.PlatformAccountID(aliceUSD), usd); moved != got.Credit {
			t.Errorf("the ledger moved %s onto the platform, want the credit %s once", moved, got.Credit)
		}
	})
}

// compare compares two amounts of one currency.
func compare(t *testing.T, a, b money.Amount) int {
	t.Helper()
	c, err := a.Cmp(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
