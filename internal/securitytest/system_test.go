package securitytest

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/httpapi/validatetoken"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/ctraderid"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/server"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/authpages"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

var ctx = context.Background()

// The simulator's demo users (ctradersim.DemoSeed): Alice with a USD and a
// EUR account, Bob with a JPY account.
const (
	simAlice    = int64(10000001)
	simBob      = int64(10000002)
	simAliceUSD = int64(3000001)
	simAliceEUR = int64(3000002)
	simBobJPY   = int64(3000003)
)

const (
	webhookSecret = "whsec_security"
	successURL    = "https://app.example/callback/success"
	frameAncestor = "https://app.ctrader.com"
	password      = "long enough"
)

// system is the cashier in one process on a test server.
type system struct {
	t      *testing.T
	url    string
	clk    *clock.Fake // identity's, the screens' and the rate limits' clock
	ids    *identity.Service
	pay    *payments.Service
	db     *sqlstore.DB
	box    *mail.Mailbox
	alice  identity.User
	bob    identity.User
	client *http.Client // does not follow redirects
}

func newSystem(t *testing.T) *system {
	t.Helper()
	c, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	logger := slog.New(slog.DiscardHandler)
	s := &system{t: t, clk: clock.NewFake(time.Now()), box: mail.NewMailbox(0, nil),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	s.db = dbtest.Open(t, sqlstore.SQLite, identity.Schema, jobs.Schema, ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema)
	// The server of cashier serve: request ids, access log, metrics, panic
	// recovery, /healthz, /readyz and /metrics; the parts mount on it.
	app := server.New(server.Options{Logger: logger})
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{Ignore: []string{sandbox.Prefix + "/"}}).Handler(app.Handler()))
	t.Cleanup(srv.Close)
	s.url = srv.URL

	sim, err := ctradersim.Start(c, ctradersim.Config{Seed: ctradersim.DemoSeed(), Logger: logger,
		App: ctradersim.AppConfig{BrokerURL: srv.URL, CRMPassword: identitytest.CRMPassword}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ws, err := ctrader.New(ctrader.Config{BaseURL: sim.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	adapter, err := ctraderid.New(ws, map[string]*ctrader.Client{"demo": ws, "live": ws},
		ctraderid.Config{BrokerCrmName: "demo_crm", BrokerName: "demo_broker", Groups: map[string]string{"demo": "default"}})
	if err != nil {
		t.Fatal(err)
	}
	s.ids, err = identity.New(identity.Deps{DB: s.db, Clock: s.clk, Provisioner: adapter, Traders: adapter, Redeemer: adapter,
		Lookup: adapter, Logger: logger}, identity.Config{Mode: identity.ModeSSO, CRMPasswords: []string{identitytest.CRMPassword},
		Password: identitytest.FastPasswords, DefaultLanguage: "en"})
	if err != nil {
		t.Fatal(err)
	}
	sec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: []string{frameAncestor}})

	// The endpoints cTrader calls, with serve's default limits.
	api, err := ctraderapi.New(s.ids, ctraderapi.Options{Clock: s.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	app.Mount(api.Prefix(), api)
	vt, err := validatetoken.New(s.ids, validatetoken.Options{Balances: validatetoken.ConnectorBalances(ws), Clock: s.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	app.Mount("POST /api/validate-token", vt)

	// Payments with the sandbox, funding.
	sb, err := sandbox.NewServer(s.db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_security",
		WebhookURL: srv.URL + "/psp/sandbox/webhook", WebhookSecret: webhookSecret, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_security", WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	s.pay, err = payments.NewService(s.db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs,
		Rates: payments.StaticRates{"EUR/USD": money.MustParseRate("1.0835"), "USD/JPY": money.MustParseRate("151.237")}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	s.pay.Routes(app.Mount)
	sb.Routes(func(pattern string, h http.Handler) { app.Mount(pattern, sec(h)) })
	pushes := push.New(s.db, ws, push.Options{SendTimeout: 5 * time.Second, LookupMargin: time.Second, RetryAfter: time.Second, Logger: logger})
	fund, err := funding.New(funding.Deps{DB: s.db, Ledger: ledger.New(s.db, nil), Push: pushes, Payments: s.pay, Platform: ws, Accounts: s.ids,
		Mailer: s.box, Observer: obs, Logger: logger}, funding.Config{Require2FA: true})
	if err != nil {
		t.Fatal(err)
	}

	// The identity screens and the cashier screens, as serve mounts them.
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	app.Mount("GET "+r.StaticPrefix(), sec(r.StaticHandler()))
	auth, err := authpages.New(s.ids, r, authpages.Options{SuccessURL: successURL, PublicURL: srv.URL, Mailer: s.box, Clock: s.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	authSec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: []string{frameAncestor}, InlineStyles: []string{r.StyleSource()}})
	app.Mount("/auth/", authSec(httpx.NoStore(auth)))
	app.Mount("/account/", authSec(httpx.NoStore(auth)))
	screens, err := cashierpages.New(cashierpages.Deps{Identity: s.ids, Funding: fund, Renderer: r, Methods: payments.DefaultCatalog()},
		cashierpages.Options{PublicURL: srv.URL, SuccessURL: successURL, FrameAncestors: []string{frameAncestor},
			SupportEmail: "support@broker.example", DefaultCountry: "DE", DefaultKYCLevel: 2, Clock: s.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	app.Mount("/inapp/", screens)

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
		if *u.into, err = s.ids.CreateUser(ctx, identity.NewUser{Email: u.email, Password: password, Language: "en", CTIDUserID: u.ctid}); err != nil {
			t.Fatal(err)
		}
		for i, login := range u.logins {
			if _, err := s.ids.LinkAccount(ctx, identity.NewAccount{UserID: u.into.ID, Login: login, Environment: identity.Demo, Currency: u.cur[i]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) location() string { return r.header.Get("Location") }

// do sends a request; body is a form (url.Values), a JSON string or nil.
func (s *system) do(method, path string, body any, hdr http.Header) reply {
	s.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = s.url + path
	}
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (s *system) get(path string) reply {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil, nil)
}

func (s *system) postForm(path string, form url.Values) reply {
	s.t.Helper()
	return s.do(http.MethodPost, path, form, nil)
}

func (s *system) postJSON(path, body string) reply {
	s.t.Helper()
	return s.do(http.MethodPost, path, body, nil)
}

// inAppToken issues a one-time token for the cashier screens.
func (s *system) inAppToken(u identity.User, login int64) string {
	s.t.Helper()
	tok, _, err := s.ids.IssueInAppToken(ctx, u.ID, login)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func (s *system) cashierURL(screen string, u identity.User, login int64, extra string) string {
	return "/inapp/" + screen + "?token=" + url.QueryEscape(s.inAppToken(u, login)) + "&account=" + strconv.FormatInt(login, 10) + extra
}

var handleRe = regexp.MustCompile(`[?&](?:amp;)?s=([A-Za-z0-9_%.=-]+)`)

// open opens a screen with a fresh token and returns the session handle
// and the first page.
func (s *system) open(screen string, u identity.User, login int64, extra string) (string, reply) {
	s.t.Helper()
	first := s.get(s.cashierURL(screen, u, login, extra))
	if first.status != http.StatusOK && first.status != http.StatusSeeOther {
		s.t.Fatalf("opening %s answered %d:\n%s", screen, first.status, first.body)
	}
	m := handleRe.FindStringSubmatch(first.location() + " " + first.body)
	if m == nil {
		s.t.Fatalf("opening %s: no session handle in:\n%s", screen, first.body)
	}
	h, err := url.QueryUnescape(html.UnescapeString(m[1]))
	if err != nil {
		s.t.Fatal(err)
	}
	return h, first
}

func mustCur(code string) money.Currency { return money.MustCurrency(code) }

func mustUSD(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s, money.MustCurrency("USD"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
