package wizardapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/wizardapi"
	"github.com/opencashier/cashier/internal/identity"
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
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

var usd = money.MustCurrency("USD")

// The trading accounts: Alice owns aliceUSD, Bob owns bobUSD.
const (
	aliceUSD = int64(8673590)
	bobUSD   = int64(8673592)
)

var customers = map[string]withdrawwizard.Customer{
	"usr_alice": {Customer: funding.Customer{UserID: "usr_alice", Country: "DE", KYCLevel: 2, Lang: "en", Email: "alice@example.com"}, Name: "Alice Archer"},
	"usr_bob":   {Customer: funding.Customer{UserID: "usr_bob", Country: "GB", KYCLevel: 2, Lang: "en", Email: "bob@example.com"}, Name: "Bob Baker"},
}

// tokens is the fake client authentication: "Bearer tok-alice" is Alice.
var tokens = map[string]string{"tok-alice": "usr_alice", "tok-bob": "usr_bob"}

func authenticate(r *http.Request) (string, error) {
	user, ok := tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		return "", errs.E(errs.Unauthorized, "fakeauth", "no valid bearer token")
	}
	return user, nil
}

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

// rig is the whole stack on one database: the simulator behind the cTrader
// client, the sandbox provider, payments, ledger, push, funding, twofactor
// (mailbox and SMS sink) and the wizard, served on 127.0.0.1.
type rig struct {
	t      *testing.T
	db     *sqlstore.DB
	clk    *clock.Fake
	sim    *ctradersim.Sim
	runner *jobs.Runner
	fund   *funding.Service
	tfa    *twofactor.Service
	box    *mail.Mailbox
	sms    *twofactor.SMSSink
	base   string
}

func newRig(t *testing.T, db *sqlstore.DB, require2FA bool) *rig {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{t: t, db: db, clk: clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}
	simSrv, err := ctradersim.Start(ctx, ctradersim.Config{Clock: r.clk, Seed: ctradersim.Seed{
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
	conn, err := ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{Ignore: []string{sandbox.Prefix + "/"}}).Handler(mux))
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
	pay, err := payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs, Clock: r.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	pay.Routes(mux.Handle)
	led := ledger.New(db, r.clk)
	pu := push.New(db, conn, push.Options{Clock: r.clk, SendTimeout: 5 * time.Second, LookupMargin: 10 * time.Second, RetryAfter: time.Minute, Logger: logger})
	r.box = mail.NewMailbox(0, r.clk)
	r.sms = twofactor.NewSMSSink(r.clk)
	dir := directory{
		aliceUSD: {Login: aliceUSD, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_alice"},
		bobUSD:   {Login: bobUSD, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_bob"},
	}
	r.fund, err = funding.New(funding.Deps{DB: db, Clock: r.clk, Ledger: led, Push: pu, Payments: pay, Platform: conn,
		Accounts: dir, Mailer: r.box, Observer: obs, Logger: logger},
		funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(100000, usd)}})
	if err != nil {
		t.Fatal(err)
	}
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: r.clk, Workers: 1, HeartbeatInterval: -1, Logger: logger, BackoffBase: time.Second, BackoffMax: time.Second})
	pu.Register(r.runner)
	for _, hs := range []map[string]jobs.Handler{pay.JobHandlers(), sb.JobHandlers()} {
		for kind, h := range hs {
			r.runner.Handle(kind, h)
		}
	}
	r.fund.RegisterJobs(r.runner)

	r.tfa, err = twofactor.New(twofactor.Deps{DB: db, Clock: r.clk, Mailer: r.box, SMS: r.sms},
		twofactor.Config{CodeTTL: 10 * time.Minute, Attempts: 3, ResendCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wiz, err := withdrawwizard.New(withdrawwizard.Deps{DB: db, Clock: r.clk, Funding: r.fund, Pricer: pay, TwoFactor: r.tfa,
		Customers: func(_ context.Context, userID string) (withdrawwizard.Customer, error) {
			c, ok := customers[userID]
			if !ok {
				return withdrawwizard.Customer{}, errs.E(errs.NotFound, "customers", "no such user")
			}
			return c, nil
		}}, withdrawwizard.Config{Require2FA: require2FA})
	if err != nil {
		t.Fatal(err)
	}
	h, err := wizardapi.New(wizardapi.Options{Wizard: wiz, Authenticate: authenticate, TwoFactor: r.tfa, Clock: r.clk,
		Profiles: func(_ context.Context, userID string) (wizardapi.Profile, error) {
			c, ok := customers[userID]
			if !ok {
				return wizardapi.Profile{}, errs.E(errs.NotFound, "profiles", "no such user")
			}
			return wizardapi.Profile{Email: c.Email, Name: c.Name}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.Routes(mux)
	h.TwoFactorRoutes(mux)
	return r
}

func each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	dbtest.Each(t, fn, ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, jobs.Schema,
		twofactor.Schema, withdrawwizard.Schema)
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

func (r *rig) simBalance(login int64) string {
	r.t.Helper()
	tr, err := r.sim.Trader(login)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr.Balance.String()
}

// withdrawals returns how many withdrawals funding holds for a user.
func (r *rig) withdrawals(userID string) int {
	r.t.Helper()
	ws, err := r.fund.Withdrawals(context.Background(), userID, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return len(ws)
}

// call sends a request with the token and decodes the JSON answer into a map.
func (r *rig) call(method, path, token, body string) (int, map[string]any, http.Header) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		r.t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header
}

// startWizard opens a wizard and returns its uuid.
func (r *rig) startWizard(token string) string {
	r.t.Helper()
	status, body, _ := r.call("GET", "/api/v2/my/withdrawals/wizard", token, "")
	if status != http.StatusOK {
		r.t.Fatalf("start: %d %v", status, body)
	}
	return body["uuid"].(string)
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

func (r *rig) mailedCode(to string) string {
	r.t.Helper()
	m, ok := r.box.Last(to)
	if !ok {
		r.t.Fatalf("no mail to %s", to)
	}
	got := codeRE.FindStringSubmatch(m.Mail.Text)
	if got == nil {
		r.t.Fatalf("no code in %q", m.Mail.Text)
	}
	return got[1]
}

func (r *rig) textedCode(to string) string {
	r.t.Helper()
	m, ok := r.sms.Last(to)
	if !ok {
		r.t.Fatalf("no SMS to %s", to)
	}
	got := codeRE.FindStringSubmatch(m.Text)
	if got == nil {
		r.t.Fatalf("no code in %q", m.Text)
	}
	return got[1]
}

func bankWithdrawal(uuid string, login int64, amount string, pretend bool) string {
	b, _ := json.Marshal(map[string]any{
		"accountId": login, "methodId": 2, "amount": json.Number(amount), "currencyCode": 840, "uuid": uuid, "isPretend": pretend,
		"data": map[string]string{"iban": "DE89 3704 0044 0532 0130 00", "holderName": "Alice Archer"},
	})
	return string(b)
}

func confirmBody(uuid, code string) string {
	b, _ := json.Marshal(map[string]any{"data": map[string]string{"action": "code", "code": code, "uuid": uuid}})
	return string(b)
}

// wrongCode returns a six-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}
