package cashierpages_test

// system is the whole cashier in one process, assembled the way
// cmd/cashier assembles it: identity (SSO mode) with the cTrader
// endpoints, payments with the sandbox provider, the ledger, the balance
// push, funding, the job runner and the cashier screens, on SQLite, served
// on 127.0.0.1 next to the cTrader simulator, whose fake app opens the
// screens. Time is real (a browser drives it), except identity's clock,
// which tests move to expire tokens.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/ctraderid"
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
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

// The simulator's demo users (ctradersim.DemoSeed): Alice (cTID 10000001)
// with a USD and a EUR account, Bob (10000002) with a JPY account.
const (
	simAlice    = int64(10000001)
	simBob      = int64(10000002)
	simAliceUSD = int64(3000001)
	simAliceEUR = int64(3000002)
	simBobJPY   = int64(3000003)
)

type system struct {
	t       *testing.T
	url     string // the cashier
	sim     *ctradersim.Server
	ids     *identity.Service
	idClock *clock.Fake
	fund    *funding.Service
	pay     *payments.Service
	ledger  *ledger.Ledger
	db      *sqlstore.DB
	box     *mail.Mailbox
	alice   identity.User
	bob     identity.User
	logs    *syncBuffer
	opening map[int64]money.Amount
}

type systemOptions struct {
	funding func(*funding.Config)
	screens func(*cashierpages.Options)
}

// syncBuffer collects the system's log for a failing test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSystem(t testing.TB, o systemOptions) *system {
	tt, _ := t.(*testing.T)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &system{t: tt, logs: &syncBuffer{}, box: mail.NewMailbox(0, nil)}
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("system log:\n%s", s.logs.String())
		}
	})
	s.db = dbtest.Open(t, sqlstore.SQLite, identity.Schema, jobs.Schema, ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema)

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL

	sim, err := ctradersim.Start(ctx, ctradersim.Config{Seed: ctradersim.DemoSeed(), Logger: logger,
		App: ctradersim.AppConfig{BrokerURL: srv.URL, CRMPassword: identitytest.CRMPassword}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	s.sim = sim
	s.opening = map[int64]money.Amount{}
	for _, login := range []int64{simAliceUSD, simAliceEUR, simBobJPY} {
		tr, err := sim.Sim().Trader(login)
		if err != nil {
			t.Fatal(err)
		}
		s.opening[login] = tr.Balance
	}
	ws, err := ctrader.New(ctrader.Config{BaseURL: sim.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// Identity, SSO mode, with the cTrader endpoints the fake app calls.
	adapter, err := ctraderid.New(ws, map[string]*ctrader.Client{"demo": ws},
		ctraderid.Config{BrokerCrmName: "demo_crm", BrokerName: "demo_broker", Groups: map[string]string{"demo": "default"}})
	if err != nil {
		t.Fatal(err)
	}
	s.idClock = clock.NewFake(time.Now())
	s.ids, err = identity.New(identity.Deps{DB: s.db, Clock: s.idClock, Provisioner: adapter, Traders: adapter, Redeemer: adapter,
		Lookup: adapter, Logger: logger}, identity.Config{Mode: identity.ModeSSO, CRMPasswords: []string{identitytest.CRMPassword},
		Password: identitytest.FastPasswords, DefaultLanguage: "en"})
	if err != nil {
		t.Fatal(err)
	}
	api, err := ctraderapi.New(s.ids, ctraderapi.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(api.Prefix(), api)

	// Jobs, payments with the sandbox, ledger, push, funding.
	runner := jobs.NewRunner(s.db, jobs.Options{Workers: 2, PollInterval: 50 * time.Millisecond, BackoffBase: 100 * time.Millisecond,
		BackoffMax: time.Second, Logger: logger})
	sb, err := sandbox.NewServer(s.db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: "whsec_test", Logger: logger, Notify: runner.Notify})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookSecret: "whsec_test"})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	s.pay, err = payments.NewService(s.db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs,
		Rates:  payments.StaticRates{"EUR/USD": money.MustParseRate("1.0835"), "USD/JPY": money.MustParseRate("151.237")},
		Logger: logger, Notify: runner.Notify})
	if err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	s.pay.Routes(mux.Handle)
	s.ledger = ledger.New(s.db, nil)
	pushes := push.New(s.db, ws, push.Options{SendTimeout: 5 * time.Second, LookupMargin: time.Second, RetryAfter: time.Second, Logger: logger})
	cfg := funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(10000, money.MustCurrency("USD")),
		"EUR": money.New(10000, money.MustCurrency("EUR"))}}
	if o.funding != nil {
		o.funding(&cfg)
	}
	s.fund, err = funding.New(funding.Deps{DB: s.db, Ledger: s.ledger, Push: pushes, Payments: s.pay, Platform: ws, Accounts: s.ids,
		Mailer: s.box, Observer: obs, Notify: runner.Notify, Logger: logger}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pushes.Register(runner)
	for _, hs := range []map[string]jobs.Handler{s.pay.JobHandlers(), sb.JobHandlers(), s.fund.JobHandlers()} {
		for kind, h := range hs {
			runner.Handle(kind, h)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	// The screens.
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	opt := cashierpages.Options{PublicURL: srv.URL, SuccessURL: sim.URL() + "/app/success", FrameAncestors: []string{sim.URL()},
		SupportEmail: "support@broker.example", DefaultCountry: "DE", DefaultKYCLevel: 2, Clock: s.idClock, Logger: logger}
	if o.screens != nil {
		o.screens(&opt)
	}
	screens, err := cashierpages.New(cashierpages.Deps{Identity: s.ids, Funding: s.fund, Renderer: r, Methods: payments.DefaultCatalog()}, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/inapp/", screens)
	mux.Handle("GET /static/", r.StaticHandler())

	// The users, known to the broker with their cTIDs and accounts, and
	// logged in to the fake app.
	for _, u := range []struct {
		email  string
		ctid   int64
		logins []int64
		cur    []string
		into   *identity.User
	}{
		{"alice@example.com", simAlice, []int64{simAliceUSD, simAliceEUR}, []string{"USD", "EUR"}, &s.alice},
		{"bob@example.com", simBob, []int64{simBobJPY}, []string{"JPY"}, &s.bob},
	} {
		if *u.into, err = s.ids.CreateUser(ctx, identity.NewUser{Email: u.email, Password: "long enough", Language: "en", CTIDUserID: u.ctid}); err != nil {
			t.Fatal(err)
		}
		for i, login := range u.logins {
			if _, err := s.ids.LinkAccount(ctx, identity.NewAccount{UserID: u.into.ID, Login: login, Environment: identity.Demo, Currency: u.cur[i]}); err != nil {
				t.Fatal(err)
			}
		}
		s.appLogin(t, *u.into)
	}
	t.Cleanup(s.checkBooks)
	return s
}

// appLogin logs a user in to the fake app the way the login screen ends:
// the app reaches the success URL with a login token and exchanges it at
// the broker's /oauth2/onetime/authorize.
func (s *system) appLogin(t testing.TB, u identity.User) {
	tok, _, err := s.ids.IssueLoginToken(context.Background(), u.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).Get(s.sim.URL() + "/app/success?token=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("app login of %s: %d %s", u.Email, res.StatusCode, body)
	}
}

// cashierURL is the URL the app would open for a user's in-app action,
// with a fresh one-time token issued by the broker (as for
// /oauth2/onetime/generate).
func (s *system) cashierURL(t testing.TB, u identity.User, action string, login int64, q string) string {
	tok, _, err := s.ids.IssueInAppToken(context.Background(), u.ID, login)
	if err != nil {
		t.Fatal(err)
	}
	return s.url + "/inapp/" + action + "?token=" + url.QueryEscape(tok) + "&account=" + strconv.FormatInt(login, 10) + q
}

func (s *system) simBalance(login int64) money.Amount {
	s.t.Helper()
	tr, err := s.sim.Sim().Trader(login)
	if err != nil {
		s.t.Fatal(err)
	}
	return tr.Balance
}

// checkBooks runs after every test: the ledger verifies, and each trading
// account's balance on the platform moved by exactly what the ledger says
// the cashier moved onto it (nothing credited twice, nothing lost).
func (s *system) checkBooks() {
	t := s.t
	if t == nil {
		return
	}
	rep, err := ledger.Verify(context.Background(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("ledger.Verify:\n%s", rep)
	}
	for login, opening := range s.opening {
		moved := money.Zero(opening.Currency())
		if b, err := s.ledger.Balance(context.Background(), s.fund.PlatformAccountID(login)); err == nil {
			moved = b.Posted
		}
		want, err := opening.Add(moved)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.simBalance(login); got != want {
			t.Errorf("login %d: platform balance %s, want opening %s + ledger %s = %s", login, got, opening, moved, want)
		}
	}
}

// sandboxControl presses a button of the sandbox's control page for a
// payment, as a tester does ("arrive" makes a bank transfer's money come).
func (s *system) sandboxControl(t testing.TB, paymentID, action string) {
	t.Helper()
	p, err := s.pay.Get(context.Background(), paymentID)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(s.url+sandbox.Prefix+"/control/"+p.ProviderRef+"/"+action, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || strings.Contains(loc, "error=") {
		t.Fatalf("control %s answered %d, %s", action, res.StatusCode, loc)
	}
}
