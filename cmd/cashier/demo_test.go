package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/platform/ctrader"
)

// demoRun is a `cashier demo` running in the test process.
type demoRun struct {
	m        *Main
	man      Manifest
	raw      map[string]any // the manifest as JSON
	dir      string
	stdout   *syncBuffer
	stderr   *syncBuffer
	cancel   context.CancelFunc
	result   chan error
	manifest string
}

// startDemo runs `cashier demo` on free ports in a fresh folder and waits
// until it serves; it reads the manifest it wrote.
func startDemo(t *testing.T, extra ...string) *demoRun {
	t.Helper()
	d := &demoRun{dir: t.TempDir(), stdout: &syncBuffer{}, stderr: &syncBuffer{}, result: make(chan error, 1)}
	d.manifest = filepath.Join(t.TempDir(), "manifest.json")
	d.m = &Main{Stdout: d.stdout, Stderr: d.stderr}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	args := append([]string{"demo", "-data", d.dir, "-addr", "127.0.0.1:0", "-sim-addr", "127.0.0.1:0",
		"--manifest", d.manifest}, extra...)
	go func() { d.result <- d.m.Run(ctx, args) }()
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	if _, err := d.m.WaitReady(wctx); err != nil {
		cancel()
		t.Fatalf("demo did not start: %v\nstdout:\n%s\nstderr:\n%s", err, d.stdout, d.stderr)
	}
	t.Cleanup(func() {
		cancel()
		d.m.Close()
	})
	b, err := os.ReadFile(d.manifest)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(b, &d.man); err != nil {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	if err := json.Unmarshal(b, &d.raw); err != nil {
		t.Fatal(err)
	}
	return d
}

// stop cancels the demo and returns Run's result.
func (d *demoRun) stop(t *testing.T) error {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.result:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not return within 30s of cancellation\nstderr:\n%s", d.stderr)
		return nil
	}
}

// postJSON posts a JSON body and returns the status and the decoded answer.
func postJSON(t *testing.T, url string, in any, out any) int {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: %d %s: %v", url, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

// TestDemo starts `cashier demo` and checks every key of the manifest with
// a working value: the crmApiToken password, the manager at the simulator,
// each user's accounts on the simulator, the fake app's pages, the login
// screen, the sandbox control page and the mailbox; then it stops on
// cancellation.
func TestDemo(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()

	// Every key outside tools rely on is present.
	for _, key := range []string{"cashierURL", "simulatorURL", "crmApiPassword", "manager", "users"} {
		if _, ok := d.raw[key]; !ok {
			t.Errorf("manifest lacks %q", key)
		}
	}
	if mgr, _ := d.raw["manager"].(map[string]any); mgr["login"] == nil || mgr["password"] == nil {
		t.Errorf("manifest manager = %v, want login and password", d.raw["manager"])
	}
	users, _ := d.raw["users"].([]any)
	if len(users) < 2 {
		t.Fatalf("manifest has %d users, want at least two", len(users))
	}
	currencies := map[string]bool{}
	for _, u := range users {
		um, _ := u.(map[string]any)
		for _, key := range []string{"email", "password", "ctidUserId", "accounts"} {
			if um[key] == nil {
				t.Errorf("manifest user %v lacks %q", um["email"], key)
			}
		}
		accs, _ := um["accounts"].([]any)
		if len(accs) == 0 {
			t.Errorf("manifest user %v has no accounts", um["email"])
		}
		for _, a := range accs {
			am, _ := a.(map[string]any)
			if _, ok := am["login"].(float64); !ok || am["currency"] == nil || am["kind"] != "trading" {
				t.Errorf("manifest account %v lacks a numeric login, currency or kind trading", am)
			}
			currencies[am["currency"].(string)] = true
		}
	}
	if len(currencies) < 3 {
		t.Errorf("demo accounts are in %v, want several currencies", currencies)
	}

	// The shared password gets a crmApiToken at the root of cashierURL.
	var tok struct {
		CRMAPIToken string `json:"crmApiToken"`
	}
	if code := postJSON(t, d.man.CashierURL+"/oauth2/crmApiToken", map[string]string{"password": d.man.CRMAPIPassword}, &tok); code != 200 || tok.CRMAPIToken == "" {
		t.Errorf("POST /oauth2/crmApiToken with the manifest's password = %d %+v, want 200 with a token", code, tok)
	}
	if code := postJSON(t, d.man.CashierURL+"/oauth2/crmApiToken", map[string]string{"password": "not-the-password"}, nil); code != 403 {
		t.Errorf("POST /oauth2/crmApiToken with a wrong password = %d, want 403", code)
	}

	// The manager logs in at the simulator's WebServices, and every user's
	// accounts exist there in the manifest's currencies.
	var hashed struct {
		WebservToken string `json:"webservToken"`
	}
	if code := postJSON(t, d.man.SimulatorURL+"/v2/webserv/managers/token",
		map[string]any{"login": d.man.Manager.Login, "hashedPassword": ctrader.HashPassword(d.man.Manager.Password)}, &hashed); code != 200 || hashed.WebservToken == "" {
		t.Errorf("manager token at the simulator = %d, want 200 with a token", code)
	}
	ws, err := ctrader.New(ctrader.Config{BaseURL: d.man.SimulatorURL, ManagerLogin: d.man.Manager.Login, ManagerPassword: d.man.Manager.Password})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range d.man.Users {
		for _, acc := range u.Accounts {
			tr, err := ws.GetTrader(ctx, acc.Login)
			if err != nil {
				t.Errorf("%s's account %d on the simulator: %v", u.Email, acc.Login, err)
				continue
			}
			if tr.Currency.Code != acc.Currency || tr.Balance.IsZero() {
				t.Errorf("account %d on the simulator is %s %s, want a funded %s account", acc.Login, tr.Balance, tr.Currency, acc.Currency)
			}
		}
		if resp, body := get(t, u.AppURL, nil); resp.StatusCode != 200 || !strings.Contains(body, u.Email) {
			t.Errorf("fake app page of %s = %d, want 200 naming the user", u.Email, resp.StatusCode)
		}
	}

	for name, page := range map[string]struct{ url, want string }{
		"fake app":        {d.man.AppURL, d.man.Users[0].Email},
		"login screen":    {d.man.LoginURL, `name="password"`},
		"sandbox control": {d.man.SandboxControlURL, "Sandbox"},
		"mailbox":         {d.man.MailboxURL, "<html"},
		"SMS page":        {d.man.SMSURL, "No messages yet."},
		"front page":      {d.man.CashierURL + "/", d.man.AppURL},
	} {
		resp, body := get(t, page.url, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, page.want) {
			t.Errorf("%s %s = %d, want 200 containing %q", name, page.url, resp.StatusCode, page.want)
		}
	}

	out := d.stdout.String()
	for _, want := range []string{d.man.AppURL, d.man.CashierURL, d.man.SandboxControlURL, d.man.MailboxURL, d.man.SMSURL,
		d.man.Users[0].Email, d.man.Users[0].Password, d.dir} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}

	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v after cancellation, want nil\n%s", err, d.stderr)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "simulator.json")); err != nil {
		t.Errorf("the simulator's state was not saved in the data folder: %v", err)
	}
}

// TestDemoAgainOnTheSameFolder runs the demo twice on one data folder: the
// second run starts with the same users and their accounts.
func TestDemoAgainOnTheSameFolder(t *testing.T) {
	d := startDemo(t)
	if err := d.stop(t); err != nil {
		t.Fatalf("first run: %v", err)
	}
	again := &Main{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	manifest := filepath.Join(t.TempDir(), "m.json")
	go func() {
		result <- again.Run(ctx, []string{"demo", "-data", d.dir, "-addr", "127.0.0.1:0", "-sim-addr", "127.0.0.1:0", "-manifest", manifest})
	}()
	defer again.Close()
	if _, err := again.WaitReady(context.Background()); err != nil {
		cancel()
		t.Fatalf("second run on %s: %v\n%s", d.dir, err, again.Stderr)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var man Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Users) != len(d.man.Users) || man.Users[0].Email != d.man.Users[0].Email || len(man.Users[0].Accounts) != len(d.man.Users[0].Accounts) {
		t.Errorf("second run's users = %+v, want those of the first run", man.Users)
	}
	cancel()
	if err := <-result; err != nil {
		t.Errorf("second run returned %v", err)
	}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes a request with a form body (for POST) and returns the response
// (body read and closed) and the body.
func send(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestDemoDepositEndToEnd drives a card deposit through the demo over
// HTTP, the way the fake app and a browser would: log in on the broker's
// screen (the app exchanges the login token), press Deposit in the app
// (which asks the cashier for a one-time token), open the cashier screen,
// confirm 100.00 USD by card, pay on the sandbox's hosted page; then the
// simulator's balance changes exactly once.
func TestDemoDepositEndToEnd(t *testing.T) {
	d := startDemo(t)
	alice := d.man.Users[0]
	acc := alice.Accounts[0]
	if acc.Currency != "USD" {
		t.Fatalf("first demo account is %s, want USD", acc.Currency)
	}

	appLogin(t, d, alice)

	// Deposit in the app: the cashier opens with a one-time token.
	handle := openCashier(t, d, alice, "deposit", acc.Login)

	// Confirm 100.00 USD by card: the browser goes to the sandbox's page.
	resp, body := send(t, client, http.MethodPost, d.man.CashierURL+"/inapp/deposit/confirm", url.Values{
		"s": {handle}, "method": {"card"}, "currency": {"USD"}, "amount": {"100.00"}, "id": {"req_e2e_deposit_1"}})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), d.man.CashierURL+"/sandbox/checkout/") {
		t.Fatalf("confirm = %d at %s, want the sandbox's card page:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	checkout := resp.Request.URL.String()

	// Pay with the card that succeeds; the sandbox sends the browser back.
	resp, body = send(t, client, http.MethodPost, checkout+"/card", url.Values{
		"number": {"4242 4242 4242 4242"}, "expiry": {"12/39"}, "cvc": {"123"}, "name": {"Alice Archer"}})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), d.man.CashierURL+"/inapp/deposit/") {
		t.Fatalf("card payment = %d at %s, want the cashier's status page:\n%s", resp.StatusCode, resp.Request.URL, body)
	}

	// The webhook, the ledger and the push run as jobs: wait (a real
	// process) for the DEPOSIT on the simulator.
	var history []simEntry
	eventually(t, "the DEPOSIT on the simulator", func() bool {
		history = simHistory(t, d, acc.Login)
		return len(history) > 0
	})
	if len(history) != 1 || history[0].Type != "DEPOSIT" || history[0].Delta <= 0 || history[0].Delta >= 10000 {
		t.Fatalf("simulator history = %+v, want one DEPOSIT of at most 100.00", history)
	}

	// The cashier's push is applied, and was sent once.
	dbURL := "sqlite:" + filepath.Join(d.dir, "cashier.db")
	eventually(t, "push "+history[0].ExternalID+" applied", func() bool {
		out, _, err := run(t, nil, "push", "show", history[0].ExternalID, "-database-url", dbURL)
		if err != nil || !strings.Contains(out, "state: applied") {
			return false
		}
		if !strings.Contains(out, "sends: 1\n") || !strings.Contains(out, "owner: deposit dep_") {
			t.Errorf("push show:\n%s\nwant a deposit's push sent once", out)
		}
		return true
	})
	_, body = get(t, d.man.SimulatorURL+"/_sim/stats", nil)
	var stats struct {
		BalanceChanges       int `json:"balanceChanges"`
		DuplicateExternalIDs int `json:"duplicateExternalIds"`
	}
	if err := json.Unmarshal([]byte(body), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.BalanceChanges != 1 || stats.DuplicateExternalIDs != 0 {
		t.Errorf("simulator stats = %+v, want one balance change and no duplicate", stats)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}

// appLogin logs the user in to the fake app as the app does it: the
// broker's login screen (posted directly here) redirects to the success URL
// on the simulator with a one-time login token, which the app exchanges at
// the cashier's /oauth2/onetime/authorize.
func appLogin(t *testing.T, d *demoRun, u ManifestUser) {
	t.Helper()
	resp, body := send(t, noRedirect, http.MethodPost, d.man.CashierURL+"/auth/login",
		url.Values{"email": {u.Email}, "password": {u.Password}, "lang": {"en"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, d.man.SuccessURL+"?") {
		t.Fatalf("POST /auth/login = %d to %q, want 303 to the success URL %s\n%s", resp.StatusCode, loc, d.man.SuccessURL, body)
	}
	if resp, body := send(t, client, http.MethodGet, loc, nil); resp.StatusCode != 200 || !strings.Contains(body, "Logged in as user") {
		t.Fatalf("success page = %d, want the app to have exchanged the login token:\n%s", resp.StatusCode, body)
	}
}

// openCashier presses Deposit or Withdraw (op) in the fake app for one of
// the user's accounts: the app asks the cashier for a one-time token and
// frames the cashier screen with it. It opens the screen as the frame
// would and returns the session handle the cashier moved to. A second use
// of the same token must fail.
func openCashier(t *testing.T, d *demoRun, u ManifestUser, op string, login int64) string {
	t.Helper()
	resp, body := send(t, client, http.MethodPost, u.AppURL+"/open", url.Values{"op": {op + ":" + itoa64(login)}})
	m := regexp.MustCompile(`src="([^"]*/inapp/` + op + `\?[^"]*)"`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("app %s = %d without a cashier frame:\n%s", op, resp.StatusCode, body)
	}
	cashierURL := html.UnescapeString(m[1])
	if !strings.HasPrefix(cashierURL, d.man.CashierURL+"/inapp/"+op+"?") {
		t.Fatalf("the app framed %s, want the cashier's /inapp/%s", cashierURL, op)
	}

	// The cashier consumes the token and moves to a URL without it (by a
	// redirect, or on the page, which names its address without the token).
	resp, body = send(t, client, http.MethodGet, cashierURL, nil)
	handle := resp.Request.URL.Query().Get("s")
	if c := regexp.MustCompile(`id="canonical" data-url="([^"]*)"`).FindStringSubmatch(body); handle == "" && c != nil {
		if u, err := url.Parse(html.UnescapeString(c[1])); err == nil && !u.Query().Has("token") {
			handle = u.Query().Get("s")
		}
	}
	if resp.StatusCode != 200 || handle == "" {
		t.Fatalf("GET %s = %d at %s, want 200 and an address with a session handle instead of the token:\n%s", cashierURL, resp.StatusCode, resp.Request.URL, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' "+d.man.SimulatorURL) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("cashier screen headers = %v, want a CSP letting the fake app frame it, and no-store", resp.Header)
	}
	if again, _ := send(t, noRedirect, http.MethodGet, cashierURL, nil); again.StatusCode < 400 || again.StatusCode >= 500 {
		t.Errorf("the used one-time token opened the cashier again: %d, want a 4xx", again.StatusCode)
	}
	return handle
}

// simHistory is an account's balance history on the simulator.
type simEntry struct {
	Type       string `json:"type"`
	Delta      int64  `json:"delta"`
	Balance    int64  `json:"balance"`
	ExternalID string `json:"externalId"`
}

func simHistory(t *testing.T, d *demoRun, login int64) []simEntry {
	t.Helper()
	_, body := get(t, d.man.SimulatorURL+"/_sim/traders/"+itoa64(login)+"/history", nil)
	var h []simEntry
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("simulator history: %v\n%s", err, body)
	}
	return h
}

// eventually polls check every 100 ms until it reports true, failing the
// test after 30 s. The demo runs its jobs in real time, so a test waits on
// it as on an outside process.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemoWithdrawalApprovedEndToEnd asks for a bank withdrawal above the
// demo's automatic approval: the platform is debited at once, an operator
// approves it with `cashier withdrawals approve`, the sandbox pays it out
// and the withdrawal completes, with one WITHDRAW on the simulator.
func TestDemoWithdrawalApprovedEndToEnd(t *testing.T) {
	d := startDemo(t)
	alice := d.man.Users[0]
	acc := alice.Accounts[0]
	dbURL := "sqlite:" + filepath.Join(d.dir, "cashier.db")

	appLogin(t, d, alice)
	handle := openCashier(t, d, alice, "withdraw", acc.Login)
	resp, body := send(t, client, http.MethodPost, d.man.CashierURL+"/inapp/withdraw/confirm", url.Values{
		"s": {handle}, "method": {"bank-transfer"}, "amount": {"600.00"}, "holderName": {"Alice Archer"},
		"iban": {"DE89 3704 0044 0532 0130 00"}, "id": {"req_e2e_withdraw_1"}})
	ticket := resp.Request.URL.Query().Get("t")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/inapp/withdraw/status" || ticket == "" {
		t.Fatalf("withdrawal confirm = %d at %s, want its status page:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	status := func() string {
		_, body := get(t, d.man.CashierURL+"/inapp/withdraw/status.json?t="+url.QueryEscape(ticket), nil)
		var s struct{ Status string }
		_ = json.Unmarshal([]byte(body), &s)
		return s.Status
	}

	// The money leaves the trading account before anyone approves.
	eventually(t, "the WITHDRAW on the simulator", func() bool { return len(simHistory(t, d, acc.Login)) > 0 })
	var id string
	eventually(t, "the withdrawal awaiting approval", func() bool {
		out, _, err := run(t, nil, "withdrawals", "list", "-database-url", dbURL)
		if err != nil {
			t.Fatalf("withdrawals list: %v", err)
		}
		if f := regexp.MustCompile(`(?m)^(wd_\S+)\s+` + itoa64(acc.Login) + `\s`).FindStringSubmatch(out); f != nil {
			id = f[1]
			return true
		}
		return false
	})
	if s := status(); s != "awaiting_approval" {
		t.Errorf("status before approval = %q, want awaiting_approval", s)
	}
	if _, _, err := run(t, nil, "withdrawals", "approve", id, "-database-url", dbURL); ExitCode(err) != 2 {
		t.Errorf("approve without -by = %v, want a usage error", err)
	}
	out, _, err := run(t, nil, "withdrawals", "approve", id, "-by", "tester", "-database-url", dbURL)
	if err != nil || !strings.Contains(out, "withdrawal "+id+" is ") {
		t.Fatalf("withdrawals approve = %q, %v", out, err)
	}
	eventually(t, "the withdrawal completed", func() bool { return status() == "completed" })

	h := simHistory(t, d, acc.Login)
	if len(h) != 1 || h[0].Type != "WITHDRAW" || h[0].Delta != -60000 || h[0].Balance != 40000 {
		t.Errorf("simulator history = %+v, want one WITHDRAW of 600.00 leaving 400.00", h)
	}
	if out, _, err := run(t, nil, "withdrawals", "list", "-database-url", dbURL); err != nil || !strings.Contains(out, "0 withdrawals awaiting approval") {
		t.Errorf("withdrawals list after approval = %q, %v", out, err)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestDemoHandoff runs the demo in one-time-token handoff mode: the app
// issues its own token without any broker login, and the cashier redeems
// it at the simulator and opens the screen for the user's account.
func TestDemoHandoff(t *testing.T) {
	d := startDemo(t, "-handoff")
	if d.man.IdentityMode != "handoff" {
		t.Errorf("manifest identityMode = %q, want handoff", d.man.IdentityMode)
	}
	bob := d.man.Users[1]
	handle := openCashier(t, d, bob, "deposit", bob.Accounts[0].Login)
	resp, body := send(t, client, http.MethodGet, d.man.CashierURL+"/inapp/deposit?s="+url.QueryEscape(handle), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, itoa64(bob.Accounts[0].Login)) {
		t.Errorf("deposit screen in handoff mode = %d, want 200 showing account %d", resp.StatusCode, bob.Accounts[0].Login)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}
