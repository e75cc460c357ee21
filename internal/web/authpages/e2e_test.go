package authpages_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/ctraderid"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/authpages"
)

// world is the broker (identity, the cTrader endpoints and the screens on
// one test server) next to the cTrader simulator, whose fake app is the
// client: it opens the broker's screens, calls the /oauth2 endpoints and
// watches for the success URL.
type world struct {
	t      *testing.T
	broker string
	sim    *ctradersim.Server
	svc    *identity.Service
	client *http.Client // the user's browser, with a cookie jar
}

func newWorld(t *testing.T, db *sqlstore.DB, mode identity.Mode) *world {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	broker := httptest.NewServer(mux)
	t.Cleanup(broker.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := ctradersim.Start(ctx, ctradersim.Config{Seed: ctradersim.DemoSeed(),
		App: ctradersim.AppConfig{BrokerURL: broker.URL, CRMPassword: identitytest.CRMPassword, Handoff: mode == identity.ModeHandoff}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	client, err := ctrader.New(ctrader.Config{BaseURL: sim.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password"})
	if err != nil {
		t.Fatal(err)
	}
	adapter, err := ctraderid.New(client, map[string]*ctrader.Client{"demo": client},
		ctraderid.Config{BrokerCrmName: "demo_crm", BrokerName: "demo_broker", Groups: map[string]string{"demo": "default"}, DemoBalance: "10000"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(identity.Deps{DB: db, Provisioner: adapter, Traders: adapter, Redeemer: adapter, Lookup: adapter, Logger: quiet},
		identity.Config{Mode: mode, CRMPasswords: []string{identitytest.CRMPassword}, Password: identitytest.FastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	api, err := ctraderapi.New(svc, ctraderapi.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := web.New(web.Options{Brand: "Demo Broker"})
	pages, err := authpages.New(svc, r, authpages.Options{SuccessURL: sim.URL() + "/app/success", PublicURL: broker.URL,
		Mailer: mail.NewMailbox(0, nil), Environments: []identity.Environment{identity.Demo}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(api.Prefix(), api)
	mux.Handle("/auth/", pages)
	mux.Handle("/account/", pages)
	mux.Handle("GET /static/", r.StaticHandler())
	jar, _ := cookiejar.New(nil)
	return &world{t: t, broker: broker.URL, sim: sim, svc: svc, client: &http.Client{Jar: jar}}
}

func (w *world) do(method, u string, form url.Values) page {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, url: res.Request.URL.String(), body: string(b)}
}

var iframeRe = regexp.MustCompile(`<iframe src="([^"]+)"`)

// openFrame asks the fake app for a screen and loads the broker page its
// frame shows.
func (w *world) openFrame(appPath string) page {
	w.t.Helper()
	app := w.do(http.MethodGet, w.sim.URL()+appPath, nil)
	m := iframeRe.FindStringSubmatch(app.body)
	if app.status != 200 || m == nil {
		w.t.Fatalf("the app did not open a frame (%d):\n%s", app.status, app.body)
	}
	src := html.UnescapeString(m[1])
	if !strings.HasPrefix(src, w.broker+"/auth/login?") {
		w.t.Fatalf("frame shows %q, want the broker's login screen", src)
	}
	return w.do(http.MethodGet, src, nil)
}

func (w *world) session(userID int64) ctradersim.AppSession {
	w.t.Helper()
	for _, s := range w.sim.Sim().AppState().Sessions {
		if s.UserID == userID {
			return s
		}
	}
	w.t.Fatalf("the app has no session for user %d: %+v", userID, w.sim.Sim().AppState())
	return ctradersim.AppSession{}
}

// deposit taps Deposit on an account in the app, which fetches an in-app
// token (from the broker under SSO, from cTrader under handoff) and opens
// the cashier URL; it returns that URL's token and account.
func (w *world) deposit(userID, login int64) (string, int64) {
	w.t.Helper()
	p := w.do(http.MethodPost, w.sim.URL()+"/app/"+strconv.FormatInt(userID, 10)+"/open",
		url.Values{"op": {"deposit:" + strconv.FormatInt(login, 10)}})
	if p.status != 200 {
		w.t.Fatalf("deposit did not open (%d):\n%s", p.status, p.body)
	}
	u, err := url.Parse(w.sim.Sim().AppState().LastCashierURL)
	if err != nil || !strings.HasPrefix(u.String(), w.broker+"/inapp/deposit?") {
		w.t.Fatalf("cashier URL %q", w.sim.Sim().AppState().LastCashierURL)
	}
	acc, _ := strconv.ParseInt(u.Query().Get("account"), 10, 64)
	return u.Query().Get("token"), acc
}

// Conformance 6.3.1 (and Flow 2 from scratch): signup on the broker's
// screen opened by the app, with a trading account; the app exchanges the
// token from the success URL; the new account can open the cashier.
func TestConformance_6_3_1_SignupFlow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db, identity.ModeSSO)
		signup := w.openFrame("/app/login?firstLogin=true&lang=de&theme=dark&source=iOS")
		signup.must(t, 200, "Konto erstellen", `data-theme="dark"`)
		done := w.do(http.MethodPost, w.broker+"/auth/signup", signup.form("email", "neu@example.com", "password", "long enough",
			"password_confirm", "long enough", "open_account", "on", "environment", "demo", "currency", "USD", "remember", "on"))
		if done.status != 200 || !strings.HasPrefix(done.url, w.sim.URL()+"/app/success?token=") || !strings.Contains(done.body, "Logged in as user") {
			t.Fatalf("signup ended at %s (%d):\n%s", done.url, done.status, done.body)
		}
		u, err := w.svc.UserByEmail(ctx, "neu@example.com")
		if err != nil || u.CTIDUserID == 0 || u.Language != "de" || u.Attribution.Source != "iOS" {
			t.Fatalf("user %+v, %v", u, err)
		}
		s := w.session(u.CTIDUserID)
		if s.AccessToken == "" || s.InappToken == "" {
			t.Fatalf("app session %+v: want accessToken (keep me logged in) and inappToken", s)
		}
		accounts, err := w.svc.Accounts(ctx, u.ID)
		if err != nil || len(accounts) != 1 {
			t.Fatalf("accounts %+v, %v", accounts, err)
		}
		var simUser ctradersim.UserInfo
		for _, su := range w.sim.Sim().Users() {
			if su.UserID == u.CTIDUserID {
				simUser = su
			}
		}
		if simUser.Email != "neu@example.com" || len(simUser.Logins) != 1 || simUser.Logins[0] != accounts[0].Login {
			t.Fatalf("cTrader's cTID user %+v; want the new account %d linked", simUser, accounts[0].Login)
		}
		tok, acc := w.deposit(u.CTIDUserID, accounts[0].Login)
		sess, err := w.svc.OpenInApp(ctx, tok, acc)
		if err != nil || sess.UserID != u.ID || sess.Account != accounts[0].Login {
			t.Fatalf("OpenInApp = %+v, %v", sess, err)
		}
	}, identity.Schema)
}

// Conformance 6.3.2 (Flow 2, then Flow 1): login on the broker's screen
// with "keep me logged in", then an app restart re-logs in through
// /oauth2/authorize, and the in-app token still works.
func TestConformance_6_3_2_LoginAndRelogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db, identity.ModeSSO)
		res, err := w.svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"},
			Account: &identity.AccountRequest{Environment: identity.Demo, Currency: "EUR"}})
		if err != nil || res.Account == nil {
			t.Fatalf("signup: %+v, %v", res, err)
		}
		login := w.openFrame("/app/login?lang=es")
		login.must(t, 200, "Iniciar sesión", `id="reset-password"`)
		wrong := w.do(http.MethodPost, w.broker+"/auth/login", login.form("email", "anna@example.com", "password", "not it"))
		wrong.must(t, 401, "incorrectos")
		done := w.do(http.MethodPost, w.broker+"/auth/login", login.form("email", "anna@example.com", "password", "long enough", "remember", "on"))
		if done.status != 200 || !strings.Contains(done.body, "Logged in as user "+strconv.FormatInt(res.User.CTIDUserID, 10)) {
			t.Fatalf("login ended at %s (%d):\n%s", done.url, done.status, done.body)
		}
		first := w.session(res.User.CTIDUserID)

		// Flow 1: the app restarts and re-logs in with the stored accessToken.
		restart := w.do(http.MethodPost, w.sim.URL()+"/app/"+strconv.FormatInt(res.User.CTIDUserID, 10)+"/restart", url.Values{})
		again := w.session(res.User.CTIDUserID)
		if restart.status != 200 || again.Relogins != 1 || again.InappToken == "" || again.InappToken == first.InappToken {
			t.Fatalf("re-login: status %d, session %+v", restart.status, again)
		}
		tok, acc := w.deposit(res.User.CTIDUserID, res.Account.Login)
		if _, err := w.svc.OpenInApp(ctx, tok, acc); err != nil {
			t.Fatalf("OpenInApp after re-login: %v", err)
		}
		// After cTrader's logout the stored accessToken no longer works.
		if _, err := w.svc.Logout(ctx, res.User.CTIDUserID, ""); err != nil {
			t.Fatal(err)
		}
		w.do(http.MethodPost, w.sim.URL()+"/app/"+strconv.FormatInt(res.User.CTIDUserID, 10)+"/restart", url.Values{}).must(t, 502, "re-login failed")
	}, identity.Schema)
}

// Handoff mode: cTrader issues the in-app token; the broker redeems it at
// /ctid2/inAppToken/redeem and maps the user and account.
func TestHandoffFlow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db, identity.ModeHandoff)
		tok, acc := w.deposit(10000001, 3000002) // alice's EUR account in the demo seed
		sess, err := w.svc.OpenInApp(ctx, tok, acc)
		if err != nil {
			t.Fatalf("OpenInApp: %v", err)
		}
		u, err := w.svc.UserByCTID(ctx, 10000001)
		if err != nil || u.Email != "alice@example.com" || sess.UserID != u.ID || sess.Account != 3000002 || sess.Mode != identity.ModeHandoff {
			t.Fatalf("session %+v for user %+v (%v)", sess, u, err)
		}
		a, err := w.svc.AccountOf(ctx, u.ID, 3000002)
		if err != nil || a.Currency != "EUR" {
			t.Fatalf("adopted account %+v, %v", a, err)
		}
		if _, err := w.svc.OpenInApp(ctx, tok, acc); err == nil {
			t.Fatal("a handoff token worked twice")
		}
		// Bob's token cannot open Alice's account.
		bobTok, _ := w.deposit(10000002, 3000003)
		if _, err := w.svc.OpenInApp(ctx, bobTok, 3000002); err == nil {
			t.Fatal("bob opened alice's account")
		}
	}, identity.Schema)
}
