package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var usd = money.MustCurrency("USD")

// The trading accounts of the tests.
const (
	aliceUSD = int64(8673590)
	bobUSD   = int64(8673592)
)

var (
	alice = funding.Customer{UserID: "usr_alice", Country: "DE", KYCLevel: 2, Lang: "en", Email: "alice@example.com"}
	bob   = funding.Customer{UserID: "usr_bob", Country: "GB", KYCLevel: 2, Lang: "en", Email: "bob@example.com"}
)

type directory map[int64]identity.Account

func (d directory) AccountOf(_ context.Context, userID string, login int64) (identity.Account, error) {
	a, ok := d[login]
	if !ok || a.UserID != userID {
		return identity.Account{}, errs.Ef(errs.NotFound, "directory", "trading account %d not found", login)
	}
	return a, nil
}

// history is the platform's balance history read through the cTrader
// client (the simulator's extension), with a way to plant differences: a
// change the platform "lost", or one whose amount it "changed".
type history struct {
	client *ctrader.Client
	mu     sync.Mutex
	hide   map[string]bool
	alter  map[string]money.Amount // externalId → delta reported instead
	calls  int
	// hideOn and alterOn, when set, say on which calls (counted from 1)
	// hide and alter apply; unset, on every call.
	hideOn, alterOn func(call int) bool
	// fail, when set, is the error every call returns.
	fail error
}

func (h *history) BalanceHistory(ctx context.Context, login int64) ([]reconcile.PlatformChange, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	entries, err := h.client.BalanceHistory(ctx, login, "")
	if err != nil {
		return nil, err
	}
	h.calls++
	hide := h.hideOn == nil || h.hideOn(h.calls)
	alter := h.alterOn == nil || h.alterOn(h.calls)
	var out []reconcile.PlatformChange
	for _, e := range entries {
		c := reconcile.PlatformChange{ExternalID: e.ExternalID, HistoryID: e.BalanceHistoryID, Type: e.Type, Delta: e.Delta, Balance: e.Balance, At: e.Time}
		if hide && h.hide[e.ExternalID] {
			continue
		}
		if d, ok := h.alter[e.ExternalID]; ok && alter {
			c.Delta = d
		}
		out = append(out, c)
	}
	return out, nil
}

func (h *history) set(fn func(h *history)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h)
}

// recorder keeps the audit records.
type recorder struct {
	mu      sync.Mutex
	records []audit.Record
}

func (r *recorder) RecordTx(_ context.Context, _ *sqlstore.Tx, rec audit.Record) error {
	if rec.Actor == "" || rec.Action == "" {
		return errs.E(errs.Invalid, "recorder", "a record needs an actor and an action")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		out = append(out, rec.Action+" "+rec.Actor)
	}
	return out
}

// rig is the money stack on one database: ledger, pushes through the
// cTrader client to an in-process simulator, payments with the sandbox
// provider on 127.0.0.1, funding on top, a fake clock and a job runner
// driven by RunOnce; and the reconciliation service over all of it.
type rig struct {
	t        *testing.T
	db       *sqlstore.DB
	clk      *clock.Fake
	sim      *ctradersim.Sim
	conn     *ctrader.Client
	ledger   *ledger.Ledger
	push     *push.Service
	pay      *payments.Service
	provider *sandbox.Client
	fund     *funding.Service
	runner   *jobs.Runner
	browser  *http.Client
	base     string
	history  *history
	audit    *recorder
	logger   *slog.Logger
	svc      *reconcile.Service
}

type rigOptions struct {
	noHistoryExtension bool
	deps               func(r *rig, d *reconcile.Deps)
}

func newRig(t *testing.T, db *sqlstore.DB, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{t: t, db: db, clk: clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)), audit: &recorder{}, logger: logger}

	simSrv, err := ctradersim.Start(ctx, ctradersim.Config{Clock: r.clk, DisableHistoryExtension: o.noHistoryExtension, Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders: []ctradersim.TraderSeed{
			{Login: aliceUSD, Currency: "USD", Balance: "1000.00", Password: "pw"},
			{Login: bobUSD, Currency: "USD", Balance: "250.00", Password: "pw"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = simSrv.Close() })
	r.sim = simSrv.Sim()
	r.conn, err = ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.base = srv.URL
	sb, err := sandbox.NewServer(db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: "whsec_test", Clock: r.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	r.provider, err = sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookSecret: "whsec_test", Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(r.provider)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	r.pay, err = payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs, Clock: r.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	r.pay.Routes(mux.Handle)

	r.ledger = ledger.New(db, r.clk)
	r.push = push.New(db, r.conn, push.Options{Clock: r.clk, SendTimeout: 5 * time.Second, LookupMargin: 10 * time.Second, RetryAfter: time.Minute, Logger: logger})
	dir := directory{
		aliceUSD: {Login: aliceUSD, Currency: "USD", Kind: identity.KindTrading, UserID: alice.UserID},
		bobUSD:   {Login: bobUSD, Currency: "USD", Kind: identity.KindTrading, UserID: bob.UserID},
	}
	r.fund, err = funding.New(funding.Deps{DB: db, Clock: r.clk, Ledger: r.ledger, Push: r.push, Payments: r.pay, Platform: r.conn,
		Accounts: dir, Mailer: mail.NewMailbox(0, r.clk), Observer: obs, Logger: logger},
		funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(100000, usd)}})
	if err != nil {
		t.Fatal(err)
	}
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: r.clk, Workers: 1, HeartbeatInterval: -1, Logger: logger, BackoffBase: time.Second, BackoffMax: time.Second})
	r.push.Register(r.runner)
	for _, hs := range []map[string]jobs.Handler{r.pay.JobHandlers(), sb.JobHandlers()} {
		for kind, h := range hs {
			r.runner.Handle(kind, h)
		}
	}
	r.fund.RegisterJobs(r.runner)
	r.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	r.history = &history{client: r.conn, hide: map[string]bool{}, alter: map[string]money.Amount{}}
	deps := reconcile.Deps{DB: db, Clock: r.clk, Ledger: r.ledger, Pushes: r.push, Platform: r.conn, History: r.history,
		Payments: r.pay, Providers: []psp.Provider{r.provider}, Audit: r.audit, Logger: logger}
	if o.deps != nil {
		o.deps(r, &deps)
	}
	r.svc, err = reconcile.New(deps, reconcile.Config{Settle: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for kind, h := range r.svc.JobHandlers() {
		r.runner.Handle(kind, h)
	}
	return r
}

func each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	dbtest.Each(t, fn, ledger.Schema, jobs.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, reconcile.Schema)
}

// run runs every job that is due now, until none is left.
func (r *rig) run() {
	r.t.Helper()
	for range 500 {
		n, err := r.runner.RunOnce(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	r.t.Fatal("jobs never ran dry")
}

func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clk.Advance(d)
	r.run()
}

func amt(s string) money.Amount {
	a, err := money.Parse(s, usd)
	if err != nil {
		panic(err)
	}
	return a
}

// deposit pays a card deposit through the sandbox's hosted page and runs
// what follows (webhook, credit push).
func (r *rig) deposit(c funding.Customer, login int64, amount, card string) funding.Deposit {
	r.t.Helper()
	ctx := context.Background()
	d, err := r.fund.StartDeposit(ctx, funding.DepositRequest{ID: "form-" + r.clk.Now().Format(time.RFC3339Nano), Customer: c, Login: login,
		MethodID: "card", Amount: amt(amount), ReturnURL: "https://cashier.example/inapp/deposit/return", Lang: "en"})
	if err != nil {
		r.t.Fatalf("StartDeposit: %v", err)
	}
	r.payCard(d.Next.RedirectURL, card)
	r.clk.Advance(time.Millisecond)
	r.run()
	d, err = r.fund.Deposit(ctx, c.UserID, d.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *rig) payCard(redirect, number string) {
	r.t.Helper()
	resp, err := r.browser.PostForm(redirect+"/card", url.Values{"number": {number}, "expiry": {"12/30"}, "cvc": {"123"}})
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("card form answered %d: %s", resp.StatusCode, body)
	}
}

var bankDetails = map[string]string{funding.DetailIBAN: "DE89 3704 0044 0532 0130 00", funding.DetailHolderName: "Alice Archer"}

// withdraw requests a bank withdrawal (auto-approved) and runs what
// follows unless hold is set.
func (r *rig) withdraw(c funding.Customer, login int64, amount string, hold bool) funding.Withdrawal {
	r.t.Helper()
	ctx := context.Background()
	w, err := r.fund.RequestWithdrawal(ctx, funding.WithdrawalRequest{ID: "wd-form-" + r.clk.Now().Format(time.RFC3339Nano),
		Customer: c, Login: login, MethodID: "bank-transfer", Amount: amt(amount), Details: bankDetails})
	if err != nil {
		r.t.Fatalf("RequestWithdrawal: %v", err)
	}
	r.clk.Advance(time.Millisecond)
	if !hold {
		r.run()
		if w, err = r.fund.Withdrawal(ctx, c.UserID, w.ID); err != nil {
			r.t.Fatal(err)
		}
	}
	return w
}

// reconcile runs a reconciliation and fails the test on an error.
func (r *rig) reconcile(opts reconcile.RunOptions) reconcile.Run {
	r.t.Helper()
	run, err := r.svc.Run(context.Background(), opts)
	if err != nil {
		r.t.Fatalf("Run: %v", err)
	}
	return run
}

// cases returns the cases with the given status, oldest first.
func (r *rig) cases(status reconcile.CaseStatus) []reconcile.Case {
	r.t.Helper()
	cs, err := r.svc.Cases(context.Background(), reconcile.CaseFilter{Status: status})
	if err != nil {
		r.t.Fatal(err)
	}
	for i, j := 0, len(cs)-1; i < j; i, j = i+1, j-1 {
		cs[i], cs[j] = cs[j], cs[i]
	}
	return cs
}

// lookupHiding is the cTrader client whose look-up by our id does not find
// one change (a platform that lost it).
type lookupHiding struct {
	*ctrader.Client
	hide string
}

func (l lookupHiding) FindChange(ctx context.Context, login int64, externalID string) (platform.Applied, bool, error) {
	if externalID == l.hide {
		return platform.Applied{}, false, nil
	}
	return l.Client.FindChange(ctx, login, externalID)
}
