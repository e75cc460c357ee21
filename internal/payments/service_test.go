package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const fakeMethods = `{"methods":[
 {"id":"card","kind":"card","provider":"fake","icon":"card","names":{"en":"Card"},
  "deposit":{"limits":{"USD":{"min":"10.00"},"EUR":{"min":"10.00"},"JPY":{"min":"1000"},"KWD":{"min":"3.000"}},
   "fee":{"percent":"2.5","fixed":{"USD":"0.30","EUR":"0.30"},"paidBy":"client"}},
  "withdrawal":{"limits":{"USD":{}}}},
 {"id":"bank","kind":"bank_transfer","provider":"fake","icon":"bank","names":{"en":"Bank"},
  "deposit":{"limits":{"USD":{}}},
  "withdrawal":{"limits":{"USD":{"min":"20.00"},"EUR":{}},"fee":{"fixed":{"USD":"5.00"},"paidBy":"client"}}},
 {"id":"wallet","kind":"ewallet","provider":"fake","icon":"wallet","names":{"en":"Wallet"},
  "withdrawal":{"limits":{"USD":{}}}}
]}`

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	t      *testing.T
	db     *sqlstore.DB
	clk    *clock.Fake
	fake   *fakeProvider
	svc    *Service
	runner *jobs.Runner

	mu       sync.Mutex
	changes  []string // "from>to@source"
	failWith error    // returned by the observer for final statuses while set
	inTxSeen []Status // the status the observer read inside the transaction
}

func newEnv(t *testing.T, db *sqlstore.DB) *env {
	t.Helper()
	e := &env{t: t, db: db, clk: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), fake: newFakeProvider()}
	catalog, err := LoadMethods(strings.NewReader(fakeMethods))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := psp.NewRegistry(e.fake)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = NewService(db, Options{
		Providers: reg, Methods: catalog, Clock: e.clk, Logger: discard, SpreadBps: 50,
		Rates: StaticRates{"EUR/USD": money.MustParseRate("1.0835")},
		Observer: ObserverFunc(func(ctx context.Context, tx *sqlstore.Tx, c Change) error {
			var inTx string
			if err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE id = ?`, c.Payment.ID).Scan(&inTx); err != nil {
				return err
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.failWith != nil && c.Payment.Status.Final() {
				return e.failWith
			}
			e.changes = append(e.changes, string(c.From)+">"+string(c.Payment.Status)+"@"+c.Source)
			e.inTxSeen = append(e.inTxSeen, Status(inTx))
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.runner = jobs.NewRunner(db, jobs.Options{Clock: e.clk, Workers: 1, Logger: discard})
	for kind, h := range e.svc.JobHandlers() {
		e.runner.Handle(kind, h)
	}
	return e
}

// drain runs due jobs until none is left.
func (e *env) drain() {
	e.t.Helper()
	for range 100 {
		n, err := e.runner.RunOnce(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("jobs never ran dry")
}

func (e *env) observed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.changes...)
}

var alice = Customer{ID: "usr_alice", AccountID: "1000001", Email: "alice@example.com", Name: "Alice", Country: "DE", KYCLevel: 2}

func (e *env) deposit(t *testing.T, method string, a money.Amount, account money.Currency) Payment {
	t.Helper()
	p, err := e.svc.Deposit(context.Background(), DepositRequest{
		MethodID: method, Amount: a, AccountCurrency: account, Customer: alice,
		ReturnURL: "https://cashier.example/inapp/deposit/return", Lang: "en",
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func event(id string, p psp.Payment) psp.Event {
	raw, _ := json.Marshal(map[string]any{"id": id, "status": p.Status, "seq": p.Seq})
	return psp.Event{ID: id, Kind: psp.PaymentEvent, Payment: &p, Raw: raw}
}

func TestDepositLifecycleIsMonotonic(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "100.00", usd), usd)
		if p.Status != Pending || p.Next != psp.NextRedirect || !strings.HasSuffix(p.RedirectURL, p.ID) || p.ProviderRef == "" {
			t.Fatalf("after Start: %+v", p)
		}
		if p.Gross != amt(t, "100.00", usd) || p.Fee != amt(t, "2.80", usd) || p.Net != amt(t, "97.20", usd) || p.AccountAmount != amt(t, "97.20", usd) || p.FX != nil {
			t.Errorf("amounts: gross %s fee %s net %s account %s fx %v", p.Gross, p.Fee, p.Net, p.AccountAmount, p.FX)
		}

		authorised := e.fake.set(p.ID, func(x *psp.Payment) { x.Status = psp.Authorised })
		succeeded := e.fake.set(p.ID, func(x *psp.Payment) {
			x.Status, x.Received = psp.Succeeded, x.Amount
			x.Instrument = psp.Instrument{Brand: "visa", Last4: "4242", Token: "ctok_1"}
		})
		steps := []struct {
			name   string
			ev     psp.Event
			want   Outcome
			status Status
		}{
			{"authorised", event("evt_1", authorised), OutcomeApplied, Authorised},
			{"succeeded", event("evt_2", succeeded), OutcomeApplied, Succeeded},
			{"same event again", event("evt_2", succeeded), OutcomeDuplicate, Succeeded},
			{"older event delivered late", event("evt_1", authorised), OutcomeDuplicate, Succeeded},
			{"older state under a new event id", event("evt_0", authorised), OutcomeStale, Succeeded},
			{"pending after the fact", event("evt_00", psp.Payment{ID: p.ID, Status: psp.Pending, Amount: p.Gross, Seq: 1}), OutcomeStale, Succeeded},
			{"contradiction", event("evt_3", psp.Payment{ID: p.ID, Status: psp.Declined, Amount: p.Gross, Seq: 9, DeclineCode: "do_not_honour"}), OutcomeConflict, Succeeded},
		}
		for _, st := range steps {
			got, err := e.svc.ApplyEvent(ctx, "fake", st.ev)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != st.want {
				t.Errorf("%s: outcome %s, want %s", st.name, got, st.want)
			}
			now, _ := e.svc.Get(ctx, p.ID)
			if now.Status != st.status {
				t.Errorf("%s: status %s, want %s", st.name, now.Status, st.status)
			}
		}
		final, _ := e.svc.Get(ctx, p.ID)
		if final.Instrument.Last4 != "4242" || final.Received != p.Gross || final.FinalAt.IsZero() {
			t.Errorf("final payment: instrument %+v received %s final at %v", final.Instrument, final.Received, final.FinalAt)
		}
		// Money moves once: the observer heard each change exactly once,
		// from inside the transaction that recorded it.
		wantChanges := []string{"created>pending@start", "pending>authorised@webhook", "authorised>succeeded@webhook"}
		if diff := cmp.Diff(wantChanges, e.observed()); diff != "" {
			t.Errorf("observer (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]Status{Pending, Authorised, Succeeded}, e.inTxSeen); diff != "" {
			t.Errorf("status seen inside the transaction (-want +got):\n%s", diff)
		}
		hist, err := e.svc.History(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var h []string
		for _, c := range hist {
			h = append(h, string(c.From)+">"+string(c.To)+"@"+c.Source)
		}
		if diff := cmp.Diff([]string{">created@create", "created>pending@start", "pending>authorised@webhook", "authorised>succeeded@webhook"}, h); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		events, err := e.svc.Events(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var outcomes []Outcome
		for _, ev := range events {
			outcomes = append(outcomes, ev.Outcome)
		}
		// One stored row per distinct event: the start answer, then each
		// webhook once; duplicates are not stored again.
		if diff := cmp.Diff([]Outcome{OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeStale, OutcomeStale, OutcomeConflict}, outcomes); diff != "" {
			t.Errorf("stored event outcomes (-want +got):\n%s", diff)
		}
		if string(events[2].Body) != string(event("evt_2", succeeded).Raw) || events[2].ProviderEventID != "evt_2" {
			t.Errorf("event kept verbatim: %q (%s)", events[2].Body, events[2].ProviderEventID)
		}
	}, Schema, jobs.Schema)
}

func TestAmountOrCurrencyMismatchGoesToReview(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		cases := []struct {
			name     string
			received money.Amount
			message  string
		}{
			{"partial", amt(t, "60.00", usd), "asked for 100.00 USD, the provider reports 60.00 USD"},
			{"over", amt(t, "100.01", usd), "asked for 100.00 USD, the provider reports 100.01 USD"},
			{"other currency", amt(t, "100.00", eur), "asked for 100.00 USD, the provider reports 100.00 EUR"},
		}
		for i, tc := range cases {
			p := e.deposit(t, "bank", amt(t, "100.00", usd), usd)
			snap := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, tc.received })
			out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_r"+string(rune('a'+i)), snap))
			if err != nil || out != OutcomeReview {
				t.Fatalf("%s: outcome %s, %v; want review", tc.name, out, err)
			}
			got, _ := e.svc.Get(ctx, p.ID)
			if got.Status != Review || got.Reason != ReasonAmountMismatch || got.Message != tc.message || got.Received != tc.received {
				t.Errorf("%s: status %s reason %s message %q received %s", tc.name, got.Status, got.Reason, got.Message, got.Received)
			}
			// A later report cannot take it out of review.
			again := e.fake.set(p.ID, func(x *psp.Payment) { x.Received = x.Amount })
			if out, _ := e.svc.ApplyEvent(ctx, "fake", event("evt_s"+string(rune('a'+i)), again)); out != OutcomeConflict {
				t.Errorf("%s: a corrected report on a payment in review: %s, want conflict", tc.name, out)
			}
		}
		// An operator resolves one.
		list, _ := e.svc.List(ctx, ListFilter{Status: Review})
		if len(list) != 3 {
			t.Fatalf("payments in review: %d, want 3", len(list))
		}
		if _, err := e.svc.ResolveReview(ctx, list[0].ID, Pending, "ops", ""); !errs.Is(err, errs.Invalid) {
			t.Errorf("resolve to pending: %v, want EINVALID", err)
		}
		p, err := e.svc.ResolveReview(ctx, list[0].ID, Succeeded, "ops@broker", "customer sent the rest separately")
		if err != nil || p.Status != Succeeded || p.Reason != ReasonOperator {
			t.Fatalf("ResolveReview = %+v, %v", p, err)
		}
		if _, err := e.svc.ResolveReview(ctx, list[0].ID, Declined, "ops@broker", ""); !errs.Is(err, errs.Conflict) {
			t.Errorf("resolving twice: %v, want ECONFLICT", err)
		}
		hist, _ := e.svc.History(ctx, list[0].ID)
		last := hist[len(hist)-1]
		if last.From != Review || last.To != Succeeded || last.Actor != "ops@broker" || last.Source != SourceOperator {
			t.Errorf("last history entry %+v", last)
		}
		if got := e.observed(); got[len(got)-1] != "review>succeeded@operator" {
			t.Errorf("observer last heard %q", got[len(got)-1])
		}
	}, Schema, jobs.Schema)
}

func TestObserverFailureRollsBackAndRedeliveryApplies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "50.00", usd), usd)
		snap := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
		e.failWith = errors.New("ledger is down")
		if _, err := e.svc.ApplyEvent(ctx, "fake", event("evt_f", snap)); err == nil {
			t.Fatal("ApplyEvent succeeded although the observer failed")
		}
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Pending {
			t.Errorf("status after a failed observer: %s, want pending", got.Status)
		}
		if evs, _ := e.svc.Events(ctx, p.ID); len(evs) != 1 {
			t.Errorf("events stored after the rollback: %d, want only the start answer", len(evs))
		}
		e.failWith = nil
		if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_f", snap)); err != nil || out != OutcomeApplied {
			t.Errorf("redelivery: %s, %v; want applied", out, err)
		}
		if diff := cmp.Diff([]string{"created>pending@start", "pending>succeeded@webhook"}, e.observed()); diff != "" {
			t.Errorf("observer (-want +got):\n%s", diff)
		}
	}, Schema, jobs.Schema)
}

func TestCreateWithOurIDIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		id, _ := NewID()
		req := DepositRequest{ID: id, MethodID: "card", Amount: amt(t, "20.00", usd), AccountCurrency: usd, Customer: alice, ReturnURL: "https://c.example/r"}
		first, err := e.svc.CreateDeposit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.svc.CreateDeposit(ctx, req)
		if err != nil || again.ID != first.ID || again.CreatedAt != first.CreatedAt {
			t.Errorf("second create = %s, %v; want the first", again.ID, err)
		}
		req.Amount = amt(t, "21.00", usd)
		if _, err := e.svc.CreateDeposit(ctx, req); !errs.Is(err, errs.Conflict) {
			t.Errorf("same id, other amount: %v, want ECONFLICT", err)
		}
		req.ID = "pay_123"
		if _, err := e.svc.CreateDeposit(ctx, req); !errs.Is(err, errs.Invalid) {
			t.Errorf("malformed id: %v, want EINVALID", err)
		}
		// Start twice: one provider call, one payment.
		if _, err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := e.fake.startCount(); n != 1 {
			t.Errorf("provider saw %d starts, want 1", n)
		}
	}, Schema, jobs.Schema)
}

func TestStartAfterALostAnswerReusesTheProvidersPayment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.fake.lostAnswer = true
		p, err := e.svc.Deposit(ctx, DepositRequest{MethodID: "card", Amount: amt(t, "20.00", usd), AccountCurrency: usd, Customer: alice, ReturnURL: "https://c.example/r"})
		if !errs.Is(err, errs.Unavailable) || p.Status != Created {
			t.Fatalf("Deposit with a lost answer = %s, %v; want created and EUNAVAILABLE", p.Status, err)
		}
		p, err = e.svc.Start(ctx, p.ID)
		if err != nil || p.Status != Pending || p.ProviderRef == "" {
			t.Fatalf("Start again = %+v, %v", p, err)
		}
		if n, starts := len(e.fake.payments), e.fake.startCount(); n != 1 || starts != 2 {
			t.Errorf("provider holds %d payments after %d starts, want 1 after 2", n, starts)
		}
	}, Schema, jobs.Schema)
}

func TestStartRefusedByProviderFails(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.fake.startErr = errs.E(errs.Invalid, "fake", "currency not enabled on this account")
		p, err := e.svc.Deposit(ctx, DepositRequest{MethodID: "card", Amount: amt(t, "20.00", usd), AccountCurrency: usd, Customer: alice, ReturnURL: "https://c.example/r"})
		if err != nil || p.Status != Failed || p.Reason != ReasonProviderRefused || p.Message != "currency not enabled on this account" {
			t.Fatalf("refused start = %s %s %q, %v", p.Status, p.Reason, p.Message, err)
		}
		body, ok := FailureOf(p)
		if !ok || body.Code != CodePaymentFailed || body.RetryAllowed == nil || !*body.RetryAllowed {
			t.Errorf("FailureOf = %+v", body)
		}
	}, Schema, jobs.Schema)
}

func TestPollCatchesWhatWebhooksMiss(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "30.00", usd), usd)
		e.drain()
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Pending {
			t.Fatalf("before the first poll: %s", got.Status)
		}
		// First poll after 5 minutes: still pending; the next is 10 minutes later.
		e.clk.Advance(DefaultPollAfter)
		e.drain()
		queued, _ := jobs.List(ctx, db, jobs.Filter{Kind: PollJobKind, State: jobs.Queued})
		if len(queued) != 1 || !queued[0].RunAt.Equal(e.clk.Now().Add(2*DefaultPollAfter)) {
			t.Fatalf("next poll: %+v, want one at +10m", queued)
		}
		// The provider settles; no webhook ever comes.
		e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
		e.clk.Advance(2*DefaultPollAfter - time.Second)
		e.drain()
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Pending {
			t.Fatalf("a second early: %s, want still pending", got.Status)
		}
		e.clk.Advance(time.Second)
		e.drain()
		got, _ := e.svc.Get(ctx, p.ID)
		if got.Status != Succeeded {
			t.Fatalf("after the poll: %s, want succeeded", got.Status)
		}
		hist, _ := e.svc.History(ctx, p.ID)
		if last := hist[len(hist)-1]; last.Source != SourcePoll || last.To != Succeeded {
			t.Errorf("last change %+v, want pending>succeeded by poll", last)
		}
		if queued, _ := jobs.List(ctx, db, jobs.Filter{Kind: PollJobKind, State: jobs.Queued}); len(queued) != 0 {
			t.Errorf("polls still queued for a settled payment: %d", len(queued))
		}
	}, Schema, jobs.Schema)
}

func TestPollIntervalsDoubleUpToTheCap(t *testing.T) {
	s := &Service{pollAfter: 5 * time.Minute, pollMax: 6 * time.Hour}
	var got []time.Duration
	for n := 1; n <= 9; n++ {
		got = append(got, s.pollInterval(n))
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute,
		160 * time.Minute, 320 * time.Minute, 6 * time.Hour, 6 * time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("poll intervals (-want +got):\n%s", diff)
	}
}

func TestPollExpiresAPaymentThatNeverReachedTheProvider(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p, err := e.svc.CreateDeposit(ctx, DepositRequest{MethodID: "card", Amount: amt(t, "30.00", usd), AccountCurrency: usd, Customer: alice, ReturnURL: "https://c.example/r"})
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(DefaultPollAfter)
		e.drain()
		got, _ := e.svc.Get(ctx, p.ID)
		if got.Status != Expired || got.Reason != ReasonNotStarted {
			t.Errorf("never started: %s %s, want expired not_started", got.Status, got.Reason)
		}
		// Start after that does not resurrect it.
		if again, err := e.svc.Start(ctx, p.ID); err != nil || again.Status != Expired || e.fake.startCount() != 0 {
			t.Errorf("Start after expiry = %s, %v (starts %d)", again.Status, err, e.fake.startCount())
		}
	}, Schema, jobs.Schema)
}

func TestPollKeepsPollingWhileTheProviderIsDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "30.00", usd), usd)
		e.fake.statusErr = errs.E(errs.Unavailable, "fake", "provider is down")
		e.clk.Advance(DefaultPollAfter)
		e.drain()
		// The failed poll is done; the next one is scheduled as usual.
		queued, _ := jobs.List(ctx, db, jobs.Filter{Kind: PollJobKind, State: jobs.Queued})
		if len(queued) != 1 || !queued[0].RunAt.Equal(e.clk.Now().Add(2*DefaultPollAfter)) {
			t.Fatalf("after a failed poll: %+v, want the next poll at +10m", queued)
		}
		if dead, _ := jobs.List(ctx, db, jobs.Filter{Kind: PollJobKind, State: jobs.Dead}); len(dead) != 0 {
			t.Fatalf("dead poll jobs: %+v", dead)
		}
		e.fake.statusErr = nil
		e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.DeclineCode = psp.Declined, psp.DeclineDoNotHonour })
		e.clk.Advance(2 * DefaultPollAfter)
		e.drain()
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Declined || got.Reason != psp.DeclineDoNotHonour {
			t.Errorf("after the provider is back: %s %s", got.Status, got.Reason)
		}
	}, Schema, jobs.Schema)
}

func TestDepositInAnotherCurrencyRecordsTheConversion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		// 100.00 EUR by card: fee 2.50 + 0.30 = 2.80 EUR, net 97.20 EUR.
		// EUR/USD 1.0835 with 50 bps spread: 1.0780825. 97.20 × 1.0780825 =
		// 104.789619 → 104.79 USD (half even).
		p := e.deposit(t, "card", amt(t, "100.00", eur), usd)
		got, err := e.svc.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Gross != amt(t, "100.00", eur) || got.Fee != amt(t, "2.80", eur) || got.Net != amt(t, "97.20", eur) || got.AccountAmount != amt(t, "104.79", usd) {
			t.Errorf("amounts: gross %s fee %s net %s account %s", got.Gross, got.Fee, got.Net, got.AccountAmount)
		}
		if got.FX == nil || got.FX.MidRate.String() != "1.0835" || got.FX.SpreadBps != 50 || got.FX.Rate.String() != "1.0780825" || got.FX.Inverted {
			t.Errorf("FX record: %+v", got.FX)
		}
		// A withdrawal from the USD account paid out in EUR uses the inverse:
		// 1 / 1.0835 = 0.922934933087|2… → 0.922934933087; × 0.995 =
		// 0.918320258421565; 200.00 USD × that = 183.664051684313 → 183.66 EUR.
		w, err := e.svc.CreatePayout(ctx, PayoutRequest{MethodID: "bank", Debit: amt(t, "200.00", usd), Currency: eur, Customer: alice,
			Destination: psp.Destination{IBAN: "DE89 3704 0044 0532 0130 00", HolderName: "Alice"}})
		if err != nil {
			t.Fatal(err)
		}
		if w.AccountAmount != amt(t, "200.00", usd) || w.Gross != amt(t, "183.66", eur) || w.Net != amt(t, "183.66", eur) || w.Fee != money.Zero(eur) {
			t.Errorf("payout amounts: account %s gross %s fee %s net %s", w.AccountAmount, w.Gross, w.Fee, w.Net)
		}
		if w.FX == nil || !w.FX.Inverted || w.FX.MidRate.String() != "0.922934933087" || w.FX.Rate.String() != "0.918320258421565" {
			t.Errorf("payout FX: %+v", w.FX)
		}
	}, Schema, jobs.Schema)
}

func TestPayouts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		// 100.00 USD by bank: fixed fee 5.00 paid by the client; 95.00 leaves the provider.
		p, err := e.svc.Payout(ctx, PayoutRequest{MethodID: "bank", Debit: amt(t, "100.00", usd), Currency: usd, Customer: alice,
			Destination: psp.Destination{IBAN: "DE89370400440532013000", HolderName: "Alice"}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != Pending || p.ProviderAmount() != amt(t, "95.00", usd) || e.fake.payouts[p.ID].Amount != amt(t, "95.00", usd) {
			t.Fatalf("payout: %s, provider amount %s, provider saw %s", p.Status, p.ProviderAmount(), e.fake.payouts[p.ID].Amount)
		}
		if p.Destination == nil || p.Destination.IBAN != "DE89370400440532013000" {
			t.Errorf("destination not recorded: %+v", p.Destination)
		}
		paid := e.fake.setPayout(p.ID, func(x *psp.Payout) { x.Status = psp.Succeeded })
		ev := psp.Event{ID: "evt_po1", Kind: psp.PayoutEvent, Payout: &paid, Raw: []byte(`{}`)}
		if out, err := e.svc.ApplyEvent(ctx, "fake", ev); err != nil || out != OutcomeApplied {
			t.Fatalf("payout event: %s, %v", out, err)
		}
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Succeeded {
			t.Errorf("payout status %s", got.Status)
		}
		// A payment event naming a payout does not fit.
		wrong := psp.Payment{ID: p.ID, Status: psp.Declined, Seq: 99}
		if out, _ := e.svc.ApplyEvent(ctx, "fake", psp.Event{ID: "evt_po2", Kind: psp.PaymentEvent, Payment: &wrong}); out != OutcomeConflict {
			t.Errorf("payment event for a payout: %s, want conflict", out)
		}
		// A payout reported for another amount goes to review.
		q, err := e.svc.Payout(ctx, PayoutRequest{MethodID: "bank", Debit: amt(t, "100.00", usd), Currency: usd, Customer: alice,
			Destination: psp.Destination{IBAN: "DE89370400440532013000", HolderName: "Alice"}})
		if err != nil {
			t.Fatal(err)
		}
		odd := e.fake.setPayout(q.ID, func(x *psp.Payout) { x.Status, x.Amount = psp.Succeeded, amt(t, "100.00", usd) })
		if out, _ := e.svc.ApplyEvent(ctx, "fake", psp.Event{ID: "evt_po3", Kind: psp.PayoutEvent, Payout: &odd}); out != OutcomeReview {
			t.Errorf("payout of another amount: %s, want review", out)
		}

		bad := []struct {
			name   string
			method string
			dest   psp.Destination
		}{
			{"card without token", "card", psp.Destination{}},
			{"bank with a broken IBAN", "bank", psp.Destination{IBAN: "DE89370400440532013001", HolderName: "Alice"}},
			{"bank without holder", "bank", psp.Destination{IBAN: "DE89370400440532013000"}},
			{"wallet without id", "wallet", psp.Destination{}},
		}
		for _, tc := range bad {
			_, err := e.svc.CreatePayout(ctx, PayoutRequest{MethodID: tc.method, Debit: amt(t, "50.00", usd), Currency: usd, Customer: alice, Destination: tc.dest})
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("%s: %v, want EINVALID", tc.name, err)
			}
		}
	}, Schema, jobs.Schema)
}

func TestCreateChecksTheCustomer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		base := DepositRequest{MethodID: "card", Amount: amt(t, "20.00", usd), AccountCurrency: usd, Customer: alice, ReturnURL: "https://c.example/r"}
		tests := []struct {
			name   string
			change func(*DepositRequest)
			code   errs.Code
		}{
			{"no customer", func(r *DepositRequest) { r.Customer.ID = "" }, errs.Invalid},
			{"no account", func(r *DepositRequest) { r.Customer.AccountID = "" }, errs.Invalid},
			{"no return URL for a card", func(r *DepositRequest) { r.ReturnURL = "" }, errs.Invalid},
			{"relative return URL", func(r *DepositRequest) { r.ReturnURL = "/inapp" }, errs.Invalid},
			{"javascript return URL", func(r *DepositRequest) { r.ReturnURL = "javascript:alert(1)" }, errs.Invalid},
			{"below minimum", func(r *DepositRequest) { r.Amount = amt(t, "9.99", usd) }, errs.Invalid},
			{"unknown method", func(r *DepositRequest) { r.MethodID = "cheque" }, errs.NotFound},
			{"no rate to the account currency", func(r *DepositRequest) { r.AccountCurrency = kwd }, errs.Unavailable},
		}
		for _, tc := range tests {
			req := base
			tc.change(&req)
			if _, err := e.svc.CreateDeposit(ctx, req); errs.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if list, _ := e.svc.List(ctx, ListFilter{}); len(list) != 0 {
			t.Errorf("%d payments recorded from refused requests", len(list))
		}
	}, Schema, jobs.Schema)
}

func TestEventForAnUnknownPaymentIsKept(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		id, _ := NewID()
		out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_x", psp.Payment{ID: id, Status: psp.Succeeded, Seq: 1}))
		if err != nil || out != OutcomeUnknown {
			t.Fatalf("unknown payment: %s, %v", out, err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM payment_events WHERE provider_event_id = 'evt_x' AND payment_id IS NULL AND outcome = 'unknown'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("stored unknown events: %d, %v", n, err)
		}
	}, Schema, jobs.Schema)
}

func TestListFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		a := e.deposit(t, "card", amt(t, "20.00", usd), usd)
		bob := alice
		bob.ID, bob.AccountID = "usr_bob", "1000002"
		b, err := e.svc.Deposit(ctx, DepositRequest{MethodID: "card", Amount: amt(t, "20.00", usd), AccountCurrency: usd, Customer: bob, ReturnURL: "https://c.example/r"})
		if err != nil {
			t.Fatal(err)
		}
		ids := func(f ListFilter) []string {
			list, err := e.svc.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range list {
				out = append(out, p.ID)
			}
			return out
		}
		if diff := cmp.Diff([]string{b.ID, a.ID}, ids(ListFilter{})); diff != "" {
			t.Errorf("all, newest first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{a.ID}, ids(ListFilter{CustomerID: "usr_alice"})); diff != "" {
			t.Errorf("alice (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{a.ID}, ids(ListFilter{BeforeID: b.ID})); diff != "" {
			t.Errorf("page (-want +got):\n%s", diff)
		}
		if got := ids(ListFilter{Direction: Withdrawal}); len(got) != 0 {
			t.Errorf("withdrawals: %v", got)
		}
		if _, err := e.svc.List(ctx, ListFilter{Limit: -1}); !errs.Is(err, errs.Invalid) {
			t.Errorf("negative limit: %v", err)
		}
	}, Schema, jobs.Schema)
}

// An event that changes nothing (a webhook repeating the start answer, an
// older state arriving late) is stored once with its outcome, moves
// nothing, tells no one, and does not wait for the payment's row lock: a
// slow transaction holding the payment (a booking under way) does not hold
// up the provider's delivery.
func TestUnchangingEventsAreStoredOnceWithoutWaitingForThePayment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "100.00", usd), usd)
		e.fake.mu.Lock()
		again := e.fake.payments[p.ID] // the pending state the start answer reported, sent again
		e.fake.mu.Unlock()

		release := func() {}
		if db.Dialect() == sqlstore.Postgres {
			// Hold the payment's row lock as a slow booking would.
			locked, unlock := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- db.Transact(ctx, func(tx *sqlstore.Tx) error {
					var id string
					if err := tx.QueryRow(ctx, `SELECT id FROM payments WHERE id = ? FOR UPDATE`, p.ID).Scan(&id); err != nil {
						return err
					}
					close(locked)
					<-unlock
					return nil
				})
			}()
			<-locked
			release = func() {
				close(unlock)
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
		}
		// Delivered four times at once: stored once, the rest duplicates.
		const copies = 4
		outcomes := make(chan Outcome, copies)
		var wg sync.WaitGroup
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				out, err := e.svc.ApplyEvent(waitCtx, "fake", event("evt_requires_action", again))
				if err != nil {
					t.Errorf("ApplyEvent while the payment is locked: %v", err)
				}
				outcomes <- out
			}()
		}
		wg.Wait()
		release()
		close(outcomes)
		count := map[Outcome]int{}
		for o := range outcomes {
			count[o]++
		}
		if diff := cmp.Diff(map[Outcome]int{OutcomeUnchanged: 1, OutcomeDuplicate: copies - 1}, count); diff != "" {
			t.Errorf("outcomes of the copies (-want +got):\n%s", diff)
		}

		// An older state under a new id, after the payment moved on.
		succeeded := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
		if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_succeeded", succeeded)); err != nil || out != OutcomeApplied {
			t.Fatalf("succeeded: %s, %v", out, err)
		}
		if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_late", again)); err != nil || out != OutcomeStale {
			t.Fatalf("late pending: %s, %v; want stale", out, err)
		}

		events, err := e.svc.Events(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			ProviderEventID string
			Source          string
			Outcome         Outcome
		}
		var got []row
		for _, ev := range events {
			got = append(got, row{ev.ProviderEventID, ev.Source, ev.Outcome})
		}
		want := []row{
			{"", SourceStart, OutcomeApplied},
			{"evt_requires_action", SourceWebhook, OutcomeUnchanged},
			{"evt_succeeded", SourceWebhook, OutcomeApplied},
			{"evt_late", SourceWebhook, OutcomeStale},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("payment's events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"created>pending@start", "pending>succeeded@webhook"}, e.observed()); diff != "" {
			t.Errorf("observer (-want +got):\n%s", diff)
		}
		hist, err := e.svc.History(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 3 || hist[2].EventID != events[2].ID {
			t.Errorf("history %+v: want created, pending and succeeded, the last caused by event %s", hist, events[2].ID)
		}
	}, Schema, jobs.Schema)
}

// A change decided on a read that another change has overtaken before it
// is written is decided again on the payment as it is: it is neither lost
// nor applied on top of the old state.
func TestChangeDecidedOnAnOvertakenReadIsDecidedAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "100.00", usd), usd)
		read, err := e.svc.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		authorised := e.fake.set(p.ID, func(x *psp.Payment) { x.Status = psp.Authorised })
		succeeded := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })

		// Between each decision and its write, another delivery applies
		// authorised (the first time; then it is a duplicate).
		e.svc.decided = func(ctx context.Context, _ string) {
			e.svc.decided = nil
			if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_a", authorised)); err != nil || out != OutcomeApplied {
				t.Errorf("authorised in between: %s, %v", out, err)
			}
		}
		if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_s", succeeded)); err != nil || out != OutcomeApplied {
			t.Fatalf("succeeded decided on the pending read: %s, %v; want applied", out, err)
		}
		// authorised again under another id, after succeeded: stale, and
		// decided so without a transaction.
		stale := event("evt_a2", authorised)
		e.svc.decided = func(ctx context.Context, _ string) {
			e.svc.decided = nil
			t.Error("authorised after succeeded was decided as a change")
		}
		if out, err := e.svc.ApplyEvent(ctx, "fake", stale); err != nil || out != OutcomeStale {
			t.Errorf("authorised after succeeded: %s, %v; want stale", out, err)
		}
		e.svc.decided = nil

		if diff := cmp.Diff([]string{"created>pending@start", "pending>authorised@webhook", "authorised>succeeded@webhook"}, e.observed()); diff != "" {
			t.Errorf("observer (-want +got):\n%s", diff)
		}
		events, err := e.svc.Events(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Outcome{}
		for _, ev := range events {
			got[ev.ProviderEventID] = ev.Outcome
		}
		want := map[string]Outcome{"": OutcomeApplied, "evt_a": OutcomeApplied, "evt_s": OutcomeApplied, "evt_a2": OutcomeStale}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored outcomes, each event once (-want +got):\n%s", diff)
		}
		final, _ := e.svc.Get(ctx, p.ID)
		if final.Status != Succeeded || final.Received != p.Gross || final.FinalAt.IsZero() || !final.UpdatedAt.After(read.UpdatedAt) {
			t.Errorf("final payment: %s, received %s, final at %v, updated %v (read at %v)", final.Status, final.Received, final.FinalAt, final.UpdatedAt, read.UpdatedAt)
		}
	}, Schema, jobs.Schema)
}

// Every change moves updated_at forward, even within one microsecond of the
// last (the fake clock does not move here), so a change decided on a read
// can tell whether the payment is still as read.
func TestEveryChangeMovesUpdatedAtForward(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "100.00", usd), usd)
		last := p.UpdatedAt
		for i, st := range []psp.Status{psp.Authorised, psp.Succeeded} {
			snap := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = st, x.Amount })
			if out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_"+string(st), snap)); err != nil || out != OutcomeApplied {
				t.Fatalf("%s: %s, %v", st, out, err)
			}
			got, _ := e.svc.Get(ctx, p.ID)
			if !got.UpdatedAt.After(last) {
				t.Errorf("change %d: updated at %v, not after %v", i+1, got.UpdatedAt, last)
			}
			last = got.UpdatedAt
		}
	}, Schema, jobs.Schema)
}

// Events for one payment delivered at the same time, twice each, move it
// forward once: the observer hears each status once, in order, and the
// history never goes back.
func TestConcurrentEventsMoveAPaymentOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		const payments = 6
		var ps []Payment
		for range payments {
			ps = append(ps, e.deposit(t, "card", amt(t, "100.00", usd), usd))
		}
		var wg sync.WaitGroup
		for i, p := range ps {
			authorised := e.fake.set(p.ID, func(x *psp.Payment) { x.Status = psp.Authorised })
			succeeded := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
			for _, ev := range []psp.Event{
				event(fmt.Sprintf("evt_%d_a", i), authorised), event(fmt.Sprintf("evt_%d_s", i), succeeded),
				event(fmt.Sprintf("evt_%d_a", i), authorised), event(fmt.Sprintf("evt_%d_s", i), succeeded),
			} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := e.svc.ApplyEvent(ctx, "fake", ev); err != nil {
						t.Errorf("%s: %v", ev.ID, err)
					}
				}()
			}
		}
		wg.Wait()
		rank := map[Status]int{Created: 0, Pending: 1, Authorised: 2, Succeeded: 3}
		for _, p := range ps {
			got, _ := e.svc.Get(ctx, p.ID)
			if got.Status != Succeeded {
				t.Errorf("%s: %s, want succeeded", p.ID, got.Status)
			}
			hist, err := e.svc.History(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(hist); i++ {
				if hist[i].From != hist[i-1].To || rank[hist[i].To] <= rank[hist[i].From] {
					t.Errorf("%s: history %v goes back or skips a step", p.ID, hist)
				}
			}
			events, _ := e.svc.Events(ctx, p.ID)
			if len(events) != 3 {
				t.Errorf("%s: %d events stored, want the start answer and each webhook once", p.ID, len(events))
			}
		}
		finals := 0
		for _, c := range e.observed() {
			if strings.HasSuffix(c, ">succeeded@webhook") {
				finals++
			}
		}
		if finals != payments {
			t.Errorf("observer heard %d successes for %d payments", finals, payments)
		}
	}, Schema, jobs.Schema)
}

// A process decides snapshots on the payment as it last saw it; another
// process (a second cashier) may have moved it since. Its change then
// stands: a snapshot that changes something is decided again on the
// payment as it is, and one that changes nothing in the older state
// changes nothing in the newer either.
func TestChangesByAnotherProcessStand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		here, there := newEnv(t, db), newEnv(t, db)
		p := here.deposit(t, "card", amt(t, "100.00", usd), usd) // here has seen it pending
		authorised := here.fake.set(p.ID, func(x *psp.Payment) { x.Status = psp.Authorised })
		succeeded := here.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
		here.fake.mu.Lock()
		pending := here.fake.payments[p.ID]
		here.fake.mu.Unlock()
		pending.Status, pending.Seq = psp.Pending, 1

		if out, err := there.svc.ApplyEvent(ctx, "fake", event("evt_a", authorised)); err != nil || out != OutcomeApplied {
			t.Fatalf("authorised, there: %s, %v", out, err)
		}
		// Decided on what here saw (pending), it is recorded as unchanged
		// rather than stale: ignored either way.
		if out, err := here.svc.ApplyEvent(ctx, "fake", event("evt_p", pending)); err != nil || out != OutcomeUnchanged {
			t.Errorf("pending again, here: %s, %v; want unchanged", out, err)
		}
		if out, err := here.svc.ApplyEvent(ctx, "fake", event("evt_s", succeeded)); err != nil || out != OutcomeApplied {
			t.Fatalf("succeeded, here: %s, %v", out, err)
		}
		hist, err := here.svc.History(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var path []string
		for _, h := range hist {
			path = append(path, string(h.From)+">"+string(h.To))
		}
		if diff := cmp.Diff([]string{">created", "created>pending", "pending>authorised", "authorised>succeeded"}, path); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"created>pending@start", "authorised>succeeded@webhook"}, here.observed()); diff != "" {
			t.Errorf("observer here (-want +got):\n%s", diff)
		}
	}, Schema, jobs.Schema)
}

// An event found stored already when its change is written (another
// delivery stored it meanwhile) is a duplicate, and the change decided for
// it is rolled back: an event acts once.
func TestEventStoredMeanwhileActsOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		p := e.deposit(t, "card", amt(t, "100.00", usd), usd)
		succeeded := e.fake.set(p.ID, func(x *psp.Payment) { x.Status, x.Received = psp.Succeeded, x.Amount })
		e.svc.decided = func(ctx context.Context, paymentID string) {
			e.svc.decided = nil
			id, _ := newEventID()
			if _, err := insertEvent(ctx, db, StoredEvent{ID: id, Provider: "fake", ProviderEventID: "evt_s", PaymentID: paymentID,
				Source: SourceWebhook, Body: []byte(`{}`), Outcome: OutcomeUnchanged, ReceivedAt: e.clk.Now()}); err != nil {
				t.Error(err)
			}
		}
		out, err := e.svc.ApplyEvent(ctx, "fake", event("evt_s", succeeded))
		if err != nil || out != OutcomeDuplicate {
			t.Fatalf("ApplyEvent = %s, %v; want duplicate", out, err)
		}
		if got, _ := e.svc.Get(ctx, p.ID); got.Status != Pending {
			t.Errorf("payment %s after a duplicate, want pending", got.Status)
		}
		if diff := cmp.Diff([]string{"created>pending@start"}, e.observed()); diff != "" {
			t.Errorf("observer (-want +got):\n%s", diff)
		}
	}, Schema, jobs.Schema)
}
