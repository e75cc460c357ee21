package funding_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
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
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

// The trading accounts of the tests. Alice owns the USD and the EUR
// account; Bob owns one USD account.
const (
	aliceUSD = int64(8673590)
	aliceEUR = int64(8673591)
	bobUSD   = int64(8673592)
)

var (
	alice = funding.Customer{UserID: "usr_alice", Country: "DE", KYCLevel: 2, Lang: "en", Email: "alice@example.com"}
	bob   = funding.Customer{UserID: "usr_bob", Country: "GB", KYCLevel: 2, Lang: "en", Email: "bob@example.com"}
)

// directory is the fake AccountDirectory.
type directory map[int64]identity.Account

func (d directory) AccountOf(_ context.Context, userID string, login int64) (identity.Account, error) {
	a, ok := d[login]
	switch {
	case !ok:
		return identity.Account{}, errs.Ef(errs.NotFound, "directory", "trading account %d not found", login)
	case a.UserID != userID:
		return identity.Account{}, errs.Ef(errs.Forbidden, "directory", "trading account %d belongs to someone else", login)
	}
	return a, nil
}

// failingMailer fails while fail is set, then delivers to the mailbox.
type failingMailer struct {
	mu   sync.Mutex
	fail bool
	box  *mail.Mailbox
}

func (m *failingMailer) Send(ctx context.Context, msg mail.Message) error {
	m.mu.Lock()
	fail := m.fail
	m.mu.Unlock()
	if fail {
		return errs.E(errs.Unavailable, "failingMailer", "the mail server is down")
	}
	return m.box.Send(ctx, msg)
}

func (m *failingMailer) setFail(v bool) {
	m.mu.Lock()
	m.fail = v
	m.mu.Unlock()
}

// rig is the whole funding stack on one database: the real ledger, push
// service with the cTrader client against an in-process simulator, the
// payments service with the sandbox provider served on 127.0.0.1, a fake
// clock, and a job runner driven by RunOnce.
type rig struct {
	t       *testing.T
	db      *sqlstore.DB
	clk     *clock.Fake
	sim     *ctradersim.Sim
	ledger  *ledger.Ledger
	push    *push.Service
	pay     *payments.Service
	runner  *jobs.Runner
	svc     *funding.Service
	mailer  *failingMailer
	browser *http.Client
	base    string // the httptest server's URL
	opening map[int64]money.Amount
	// callsBefore counts the changebalance requests the simulator saw
	// before its counters were restarted by setChangeBalanceFaults.
	callsBefore uint64
}

type rigOptions struct {
	cfg      funding.Config
	hooks    []funding.Hook
	screener funding.Screener
	sandbox  func(*sandbox.Options)
	sim      func(*ctradersim.Config)
}

func newRig(t *testing.T, db *sqlstore.DB, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{t: t, db: db, clk: clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}

	simCfg := ctradersim.Config{Clock: r.clk, Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders: []ctradersim.TraderSeed{
			{Login: aliceUSD, Currency: "USD", Balance: "1000.00", Password: "pw"},
			{Login: aliceEUR, Currency: "EUR", Balance: "500.00", Password: "pw"},
			{Login: bobUSD, Currency: "USD", Balance: "250.00", Password: "pw"},
		},
	}}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	simSrv, err := ctradersim.Start(ctx, simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = simSrv.Close() })
	r.sim = simSrv.Sim()
	conn, err := ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.opening = map[int64]money.Amount{}
	for _, login := range []int64{aliceUSD, aliceEUR, bobUSD} {
		r.opening[login] = r.simBalance(login)
	}

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.base = srv.URL
	sbOpts := sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: "whsec_test", Clock: r.clk, Logger: logger}
	if o.sandbox != nil {
		o.sandbox(&sbOpts)
	}
	sb, err := sandbox.NewServer(db, sbOpts)
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

	r.ledger = ledger.New(db, r.clk)
	r.push = push.New(db, conn, push.Options{Clock: r.clk, SendTimeout: 5 * time.Second, LookupMargin: 10 * time.Second, RetryAfter: time.Minute, Logger: logger})
	r.mailer = &failingMailer{box: mail.NewMailbox(0, r.clk)}
	dir := directory{
		aliceUSD: {Login: aliceUSD, Currency: "USD", Kind: identity.KindTrading, UserID: alice.UserID},
		aliceEUR: {Login: aliceEUR, Currency: "EUR", Kind: identity.KindTrading, UserID: alice.UserID},
		bobUSD:   {Login: bobUSD, Currency: "USD", Kind: identity.KindTrading, UserID: bob.UserID},
	}
	cfg := o.cfg
	if cfg.AutoApproveWithdrawalsUpTo == nil {
		cfg.AutoApproveWithdrawalsUpTo = map[string]money.Amount{"USD": money.New(100000, usd), "EUR": money.New(100000, eur)}
	}
	r.svc, err = funding.New(funding.Deps{DB: db, Clock: r.clk, Ledger: r.ledger, Push: r.push, Payments: r.pay, Platform: conn,
		Accounts: dir, Mailer: r.mailer, Observer: obs, Logger: logger, Hooks: o.hooks, Screener: o.screener}, cfg)
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
	r.svc.RegisterJobs(r.runner)
	r.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(r.checkBooks)
	return r
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

// advance moves the clock and runs what became due.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clk.Advance(d)
	r.run()
}

// advanceUntil moves the clock on in steps, running what became due, until
// done reports true; it fails the test if that takes longer than limit. It
// returns how far the clock moved.
func (r *rig) advanceUntil(step, limit time.Duration, done func() bool) time.Duration {
	r.t.Helper()
	var moved time.Duration
	for !done() {
		if moved >= limit {
			r.t.Fatalf("still not done after %s", limit)
		}
		r.advance(step)
		moved += step
	}
	return moved
}

// changeBalanceCalls returns how many changebalance requests reached the
// simulator (also across setChangeBalanceFaults, which restarts the
// simulator's counters).
func (r *rig) changeBalanceCalls() uint64 {
	return r.callsBefore + r.sim.Stats().Endpoints[ctradersim.EndpointChangeBalance].Calls
}

// setChangeBalanceFaults sets the faults of changebalance (none for nil).
func (r *rig) setChangeBalanceFaults(rule *ctradersim.Rule) {
	r.t.Helper()
	cfg := ctradersim.FaultConfig{}
	if rule != nil {
		cfg.Endpoints = map[string]ctradersim.Rule{ctradersim.EndpointChangeBalance: *rule}
	}
	calls := r.changeBalanceCalls()
	if err := r.sim.SetFaults(cfg); err != nil {
		r.t.Fatal(err)
	}
	r.callsBefore = calls
}

func (r *rig) simBalance(login int64) money.Amount {
	r.t.Helper()
	tr, err := r.sim.Trader(login)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr.Balance
}

// simChanges returns how many balance changes of the platform carry ext as
// externalId.
func (r *rig) simChanges(login int64, ext string) int {
	r.t.Helper()
	h, err := r.sim.History(login)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, e := range h {
		if e.ExternalID == ext {
			n++
		}
	}
	return n
}

// posted returns an account's posted balance from its normal side (zero
// when the account does not exist).
func (r *rig) posted(id string, cur money.Currency) money.Amount {
	r.t.Helper()
	b, err := r.ledger.Balance(context.Background(), id)
	if errs.Is(err, errs.NotFound) {
		return money.Zero(cur)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return b.Posted
}

func (r *rig) balance(id string) ledger.Balance {
	r.t.Helper()
	b, err := r.ledger.Balance(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// checkBooks runs after every test: the ledger is clean, and every
// simulator balance differs from its opening balance by exactly what the
// ledger says the cashier moved onto the account.
func (r *rig) checkBooks() {
	t := r.t
	rep, err := ledger.Verify(context.Background(), r.db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("ledger.Verify:\n%s", rep)
	}
	for login, opening := range r.opening {
		moved := r.posted(r.svc.PlatformAccountID(login), opening.Currency())
		want, err := opening.Add(moved)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.simBalance(login); got != want {
			t.Errorf("login %d: simulator balance %s, want opening %s + ledger %s = %s", login, got, opening, moved, want)
		}
	}
}

// payByCard submits the sandbox's hosted card form of a deposit.
func (r *rig) payByCard(d funding.Deposit, number string) {
	r.t.Helper()
	if d.Next.Kind != psp.NextRedirect || d.Next.RedirectURL == "" {
		r.t.Fatalf("deposit %s has no hosted page: %+v", d.ID, d.Next)
	}
	form := url.Values{"number": {number}, "expiry": {"12/30"}, "cvc": {"123"}}
	resp, err := r.browser.PostForm(d.Next.RedirectURL+"/card", form)
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("card form answered %d: %s", resp.StatusCode, body)
	}
}

// control presses a button of the sandbox's control page for a payment.
func (r *rig) control(paymentID, action string) {
	r.t.Helper()
	p, err := r.pay.Get(context.Background(), paymentID)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.browser.PostForm(r.base+sandbox.Prefix+"/control/"+p.ProviderRef+"/"+action, url.Values{})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || strings.Contains(loc, "error=") {
		r.t.Fatalf("control %s answered %d, %s", action, resp.StatusCode, loc)
	}
}

// deposit starts a deposit and fails the test on an error.
func (r *rig) deposit(c funding.Customer, login int64, method string, amount money.Amount) funding.Deposit {
	r.t.Helper()
	d, err := r.svc.StartDeposit(context.Background(), funding.DepositRequest{ID: "form-" + amount.String() + "-" + r.clk.Now().Format(time.RFC3339Nano),
		Customer: c, Login: login, MethodID: method, Amount: amount, ReturnURL: "https://cashier.example/inapp/deposit/return", Lang: "en"})
	if err != nil {
		r.t.Fatalf("StartDeposit: %v", err)
	}
	r.clk.Advance(time.Millisecond)
	return d
}

func (r *rig) getDeposit(c funding.Customer, id string) funding.Deposit {
	r.t.Helper()
	d, err := r.svc.Deposit(context.Background(), c.UserID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *rig) getWithdrawal(c funding.Customer, id string) funding.Withdrawal {
	r.t.Helper()
	w, err := r.svc.Withdrawal(context.Background(), c.UserID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

var bankDetails = map[string]string{funding.DetailIBAN: "DE89 3704 0044 0532 0130 00", funding.DetailHolderName: "Alice Archer"}

// withdraw requests a withdrawal and fails the test on an error.
func (r *rig) withdraw(c funding.Customer, login int64, method string, amount money.Amount, details map[string]string) funding.Withdrawal {
	r.t.Helper()
	w, err := r.svc.RequestWithdrawal(context.Background(), funding.WithdrawalRequest{ID: "wd-form-" + r.clk.Now().Format(time.RFC3339Nano),
		Customer: c, Login: login, MethodID: method, Amount: amount, Details: details})
	if err != nil {
		r.t.Fatalf("RequestWithdrawal: %v", err)
	}
	r.clk.Advance(time.Millisecond)
	return w
}

// statuses returns the To of every history entry.
func statuses(t *testing.T, h []funding.StatusChange, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(h))
	for i, c := range h {
		out[i] = c.To
	}
	return out
}

var codeRE = regexp.MustCompile(`\n    (\d{6})\n`)

// lastCode returns the code in the newest mail to the customer.
func (r *rig) lastCode(c funding.Customer) string {
	r.t.Helper()
	m, ok := r.mailer.box.Last(c.Email)
	if !ok {
		r.t.Fatal("no mail to " + c.Email)
	}
	found := codeRE.FindStringSubmatch(m.Mail.Text)
	if found == nil {
		r.t.Fatalf("no code in %q", m.Mail.Text)
	}
	return found[1]
}

func each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	dbtest.Each(t, fn, ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, jobsSchema)
}

var jobsSchema = jobs.Schema

func amt(s string, c money.Currency) money.Amount {
	a, err := money.Parse(s, c)
	if err != nil {
		panic(err)
	}
	return a
}
