package reports_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// The trading accounts of the tests.
const (
	aliceUSD   = int64(8673590)
	aliceEUR   = int64(8673591)
	bobUSD     = int64(8673592)
	malloryUSD = int64(8673593)
)

var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

// schemas are the tables the real services need; reports reads them.
var schemas = []sqlstore.Schema{ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, jobs.Schema, identity.Schema}

func each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	dbtest.Each(t, fn, schemas...)
}

// rig is the real system on one database, as funding's tests assemble it:
// identity (users, accounts, cashier sessions), the ledger, push with the
// cTrader client against an in-process simulator, payments with the
// sandbox provider served on 127.0.0.1, funding, and a job runner drained
// one job at a time with the fake clock one millisecond further before
// each, so that every step has its own instant. reports reads the lot.
type rig struct {
	t       *testing.T
	db      *sqlstore.DB
	clk     *clock.Fake
	id      *identity.Service
	pay     *payments.Service
	runner  *jobs.Runner
	fund    *funding.Service
	rep     *reports.Service
	browser *http.Client
	base    string
	users   map[string]funding.Customer // by name: alice, bob, mallory
}

// rigStart is when every rig's clock starts: 2026-05-04 09:00 UTC.
var rigStart = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

func newRig(t *testing.T, db *sqlstore.DB) *rig {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{t: t, db: db, clk: clock.NewFake(rigStart), users: map[string]funding.Customer{}}

	simSrv, err := ctradersim.Start(ctx, ctradersim.Config{Clock: r.clk, Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders: []ctradersim.TraderSeed{
			{Login: aliceUSD, Currency: "USD", Balance: "1000.00", Password: "pw"},
			{Login: aliceEUR, Currency: "EUR", Balance: "500.00", Password: "pw"},
			{Login: bobUSD, Currency: "USD", Balance: "1000.00", Password: "pw"},
			{Login: malloryUSD, Currency: "USD", Balance: "100.00", Password: "pw"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = simSrv.Close() })
	conn, err := ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	ct := identitytest.NewCTrader()
	r.id, err = identity.New(identity.Deps{DB: db, Clock: r.clk, Provisioner: ct, Traders: ct, Redeemer: ct, Lookup: ct, Logger: logger},
		identity.Config{CRMPasswords: []string{identitytest.CRMPassword}, Password: identitytest.FastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name, email, country string
		accounts             map[int64]string
	}{
		{"alice", "alice@example.com", "DE", map[int64]string{aliceUSD: "USD", aliceEUR: "EUR"}},
		{"bob", "bob@example.com", "GB", map[int64]string{bobUSD: "USD"}},
		// An address a spreadsheet would read as a formula; identity accepts it.
		{"mallory", "=1+2@example.com", "FR", map[int64]string{malloryUSD: "USD"}},
	} {
		usr, err := r.id.CreateUser(ctx, identity.NewUser{Email: u.email, Language: "en"})
		if err != nil {
			t.Fatalf("CreateUser %s: %v", u.email, err)
		}
		for login, cur := range u.accounts {
			if _, err := r.id.LinkAccount(ctx, identity.NewAccount{UserID: usr.ID, Login: login, Environment: identity.Demo, Currency: cur}); err != nil {
				t.Fatal(err)
			}
		}
		r.users[u.name] = funding.Customer{UserID: usr.ID, Country: u.country, KYCLevel: 2, Lang: "en", Email: u.email}
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
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookSecret: "whsec_test", Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	r.pay, err = payments.NewService(db, payments.Options{
		Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs, Clock: r.clk, Logger: logger,
		Rates: payments.StaticRates{"EUR/USD": money.MustParseRate("1.0835")},
	})
	if err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	r.pay.Routes(mux.Handle)

	pushSvc := push.New(db, conn, push.Options{Clock: r.clk, SendTimeout: 5 * time.Second, LookupMargin: 10 * time.Second, RetryAfter: time.Minute, Logger: logger})
	r.fund, err = funding.New(funding.Deps{DB: db, Clock: r.clk, Ledger: ledger.New(db, r.clk), Push: pushSvc, Payments: r.pay, Platform: conn,
		Accounts: r.id, Mailer: mail.NewMailbox(0, r.clk), Observer: obs, Logger: logger},
		funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(10000, usd), "EUR": money.New(10000, eur)}})
	if err != nil {
		t.Fatal(err)
	}
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: r.clk, Workers: 1, HeartbeatInterval: -1, Logger: logger, BackoffBase: time.Second, BackoffMax: time.Second})
	pushSvc.Register(r.runner)
	for _, hs := range []map[string]jobs.Handler{r.pay.JobHandlers(), sb.JobHandlers()} {
		for kind, h := range hs {
			r.runner.Handle(kind, h)
		}
	}
	r.fund.RegisterJobs(r.runner)
	r.rep, err = reports.New(db)
	if err != nil {
		t.Fatal(err)
	}
	r.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r
}

func (r *rig) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf(format, args...)
}

// run runs every job that is due, one at a time, moving the clock one
// millisecond before each, until none is left.
func (r *rig) run() {
	r.t.Helper()
	for range 1000 {
		r.clk.Advance(time.Millisecond)
		n, err := r.runner.RunOnce(context.Background())
		if err != nil {
			r.fatalf("jobs: %v", err)
		}
		if n == 0 {
			return
		}
	}
	r.fatalf("jobs never ran dry")
}

// advance moves the clock and runs what became due.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clk.Advance(d)
	r.run()
}

// openScreen opens a cashier screen for the user's account as cTrader
// would: an in-app token, then the session.
func (r *rig) openScreen(name string, login int64) {
	r.t.Helper()
	ctx := context.Background()
	tok, _, err := r.id.IssueInAppToken(ctx, r.users[name].UserID, login)
	if err != nil {
		r.fatalf("IssueInAppToken: %v", err)
	}
	if _, err := r.id.OpenInApp(ctx, tok, login); err != nil {
		r.fatalf("OpenInApp: %v", err)
	}
	r.clk.Advance(time.Second)
}

// deposit starts a card deposit.
func (r *rig) deposit(name string, login int64, amount money.Amount) funding.Deposit {
	r.t.Helper()
	d, err := r.fund.StartDeposit(context.Background(), funding.DepositRequest{ID: "form-" + r.clk.Now().Format(time.RFC3339Nano),
		Customer: r.users[name], Login: login, MethodID: "card", Amount: amount, ReturnURL: "https://cashier.example/inapp/deposit/return", Lang: "en"})
	if err != nil {
		r.fatalf("StartDeposit: %v", err)
	}
	r.clk.Advance(time.Second)
	return d
}

// payByCard submits the sandbox's hosted card form and runs what follows.
func (r *rig) payByCard(d funding.Deposit, number string) funding.Deposit {
	r.t.Helper()
	if d.Next.Kind != psp.NextRedirect || d.Next.RedirectURL == "" {
		r.fatalf("deposit %s has no hosted page: %+v", d.ID, d.Next)
	}
	resp, err := r.browser.PostForm(d.Next.RedirectURL+"/card", url.Values{"number": {number}, "expiry": {"12/30"}, "cvc": {"123"}})
	if err != nil {
		r.fatalf("card form: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		r.fatalf("card form answered %d", resp.StatusCode)
	}
	r.clk.Advance(time.Second)
	r.run()
	got, err := r.fund.GetDeposit(context.Background(), d.ID)
	if err != nil {
		r.fatalf("GetDeposit: %v", err)
	}
	return got
}

// withdraw requests a bank-transfer withdrawal and runs what follows.
func (r *rig) withdraw(name string, login int64, amount money.Amount) funding.Withdrawal {
	r.t.Helper()
	w, err := r.fund.RequestWithdrawal(context.Background(), funding.WithdrawalRequest{ID: "wd-form-" + r.clk.Now().Format(time.RFC3339Nano),
		Customer: r.users[name], Login: login, MethodID: "bank-transfer", Amount: amount,
		Details: map[string]string{funding.DetailIBAN: "DE89 3704 0044 0532 0130 00", funding.DetailHolderName: "Account Holder"}})
	if err != nil {
		r.fatalf("RequestWithdrawal: %v", err)
	}
	r.clk.Advance(time.Second)
	r.run()
	return r.getWithdrawal(w.ID)
}

func (r *rig) getWithdrawal(id string) funding.Withdrawal {
	r.t.Helper()
	w, err := r.fund.GetWithdrawal(context.Background(), id)
	if err != nil {
		r.fatalf("GetWithdrawal: %v", err)
	}
	return w
}

// story is what drive did: the transactions by name and what they became.
type story struct {
	deposits    map[string]funding.Deposit
	withdrawals map[string]funding.Withdrawal
	order       []string // names, oldest first
	screens     int      // cashier screens opened
	day1, day2  time.Time
}

// id returns the id of the named transaction.
func (s story) id(name string) string {
	if d, ok := s.deposits[name]; ok {
		return d.ID
	}
	if w, ok := s.withdrawals[name]; ok {
		return w.ID
	}
	panic("no transaction " + name)
}

// ids returns the ids of the named transactions, in the given order.
func (s story) ids(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.id(n)
	}
	return out
}

// drive runs two days of business through the real services:
//
// Day 1 (2026-05-04): alice opens the cashier and deposits 100.00 USD by
// card (credited), opens it again and is declined (do not honour) for
// 50.00 USD; she deposits 100.00 EUR into her EUR account (credited);
// mallory deposits 30.00 USD (credited); bob opens the cashier and leaves.
//
// Day 2 (2026-05-05): alice opens the cashier and withdraws 300.00 USD, above the auto-approval
// limit, approved by staff:olga two hours later and paid out; bob
// withdraws 50.00 USD (approved automatically, paid out) and 150.00 USD,
// rejected by staff:olga after thirty minutes and returned; finally alice
// starts a deposit of 20.00 USD she does not pay (awaiting payment).
func drive(r *rig) story {
	r.t.Helper()
	ctx := context.Background()
	s := story{deposits: map[string]funding.Deposit{}, withdrawals: map[string]funding.Withdrawal{}, day1: rigStart.Truncate(24 * time.Hour)}
	s.day2 = s.day1.AddDate(0, 0, 1)
	dep := func(name, user string, login int64, a money.Amount, card string) {
		r.openScreen(user, login)
		s.screens++
		d := r.deposit(user, login, a)
		if card != "" {
			d = r.payByCard(d, card)
		}
		s.deposits[name] = d
		s.order = append(s.order, name)
	}
	dep("aliceDep", "alice", aliceUSD, money.New(10000, usd), "4242424242424242")
	dep("aliceDeclined", "alice", aliceUSD, money.New(5000, usd), "4000000000000002")
	dep("aliceEURDep", "alice", aliceEUR, money.New(10000, eur), "4242424242424242")
	dep("malloryDep", "mallory", malloryUSD, money.New(3000, usd), "4242424242424242")
	r.openScreen("bob", bobUSD)
	s.screens++
	for name, want := range map[string]funding.DepositStatus{"aliceDep": funding.DepositCompleted, "aliceDeclined": funding.DepositDeclined,
		"aliceEURDep": funding.DepositCompleted, "malloryDep": funding.DepositCompleted} {
		if got := s.deposits[name].State; got != want {
			r.fatalf("%s is %s, want %s", name, got, want)
		}
	}

	r.advance(s.day2.Add(9 * time.Hour).Sub(r.clk.Now()))
	wd := func(name, user string, login int64, a money.Amount) funding.Withdrawal {
		w := r.withdraw(user, login, a)
		s.withdrawals[name] = w
		s.order = append(s.order, name)
		return w
	}
	r.openScreen("alice", aliceUSD)
	s.screens++
	w := wd("aliceWd", "alice", aliceUSD, money.New(30000, usd))
	if w.State != funding.WithdrawalAwaitingApproval {
		r.fatalf("alice's withdrawal is %s, want awaiting_approval", w.State)
	}
	if w = wd("bobSmallWd", "bob", bobUSD, money.New(5000, usd)); w.State != funding.WithdrawalCompleted {
		r.fatalf("bob's small withdrawal is %s, want completed", w.State)
	}
	if w = wd("bobWd", "bob", bobUSD, money.New(15000, usd)); w.State != funding.WithdrawalAwaitingApproval {
		r.fatalf("bob's withdrawal is %s, want awaiting_approval", w.State)
	}
	r.advance(30 * time.Minute)
	if _, err := r.fund.RejectWithdrawal(ctx, s.id("bobWd"), "staff:olga", "The holder's name differs."); err != nil {
		r.fatalf("RejectWithdrawal: %v", err)
	}
	r.run()
	r.advance(90 * time.Minute)
	if _, err := r.fund.ApproveWithdrawal(ctx, s.id("aliceWd"), "staff:olga"); err != nil {
		r.fatalf("ApproveWithdrawal: %v", err)
	}
	r.run()
	for name, want := range map[string]funding.WithdrawalStatus{"aliceWd": funding.WithdrawalCompleted, "bobWd": funding.WithdrawalReturned} {
		w := r.getWithdrawal(s.id(name))
		if w.State != want {
			r.fatalf("%s is %s, want %s", name, w.State, want)
		}
		s.withdrawals[name] = w
	}
	dep("aliceUnpaid", "alice", aliceUSD, money.New(2000, usd), "")
	return s
}

// newest returns names newest first.
func newest(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[len(names)-1-i] = n
	}
	return out
}

// mustAmount parses a decimal or panics.
func mustAmount(s string, c money.Currency) money.Amount {
	a, err := money.Parse(s, c)
	if err != nil {
		panic(err)
	}
	return a
}

// isInvalid reports whether err is errs.Invalid with a message containing
// want.
func isInvalid(err error, want string) bool {
	return errs.Is(err, errs.Invalid) && strings.Contains(errs.MessageOf(err), want)
}
