package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/twofactor"
)

const demoSynopsis = `Run the whole system on this machine, with no setup: the cashier on SQLite
in a fresh data folder, a cTrader simulator with its fake cTrader app, and the
sandbox payment provider, seeded with demo users whose trading accounts hold
money in USD, EUR, JPY and BTC. It prints what to open; Ctrl-C stops it.

The cashier and the simulator listen on 127.0.0.1 only. The demo ignores the
CASHIER_* environment variables; its flags are:`

// The simulator's manager and broker names, from ctradersim.DemoSeed and the
// simulator's defaults.
const (
	demoManagerLogin    = 1001
	demoManagerPassword = "manager-password"
	demoBrokerCrmName   = "demo_crm"
	demoBrokerName      = "demo_broker"
	// demoAutoApprove are the withdrawals paid without an operator; larger
	// ones wait (cashier withdrawals approve).
	demoAutoApprove = "USD:500.00,EUR:500.00,GBP:500.00,JPY:75000,BTC:0.01"
)

// demoPassword is the cashier password of a demo user.
func demoPassword(nick string) string { return nick + "-password" }

// Manifest is what `cashier demo --manifest FILE` writes: the demo's
// addresses and credentials, a contract outside test tools rely on (keys
// may be added, never renamed or removed).
type Manifest struct {
	CashierURL     string          `json:"cashierURL"`
	SimulatorURL   string          `json:"simulatorURL"`
	CRMAPIPassword string          `json:"crmApiPassword"`
	Manager        ManifestManager `json:"manager"`
	Users          []ManifestUser  `json:"users"`
	Staff          []ManifestStaff `json:"staff"`         // back-office members
	BackOfficeURL  string          `json:"backOfficeURL"` // the back office's login

	AppURL            string `json:"appURL"`            // the fake cTrader app
	LoginURL          string `json:"loginURL"`          // the broker login screen
	SuccessURL        string `json:"successURL"`        // the success URL the cashier is configured with
	SandboxControlURL string `json:"sandboxControlURL"` // the sandbox provider's control page
	MailboxURL        string `json:"mailboxURL"`        // mail the cashier sent
	SMSURL            string `json:"smsURL"`            // text messages the cashier sent (second-factor codes)
	DataDir           string `json:"dataDir"`
	DatabaseURL       string `json:"databaseURL"`
	IdentityMode      string `json:"identityMode"` // sso or handoff
}

// ManifestManager is the simulator's WebServices manager.
type ManifestManager struct {
	Login    int64  `json:"login"`
	Password string `json:"password"`
}

// ManifestUser is a demo user: cashier credentials, cTID user id and
// trading accounts.
type ManifestUser struct {
	Email      string            `json:"email"`
	Password   string            `json:"password"`
	CTIDUserID int64             `json:"ctidUserId"`
	Language   string            `json:"language"`
	AppURL     string            `json:"appURL"` // the user's page in the fake app
	Accounts   []ManifestAccount `json:"accounts"`
}

// ManifestAccount is a trading account on the simulator.
type ManifestAccount struct {
	Login       int64  `json:"login"`
	Currency    string `json:"currency"`
	Kind        string `json:"kind"`
	Environment string `json:"environment"`
	Balance     string `json:"balance"` // at start
}

func (m *Main) demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data", "", "data folder (created if missing; kept afterwards); default: a new temporary folder")
	addr := fs.String("addr", "127.0.0.1:8080", "address of the cashier; port 0 picks a free port")
	simAddr := fs.String("sim-addr", "127.0.0.1:8081", "address of the cTrader simulator; port 0 picks a free port")
	manifestPath := fs.String("manifest", "", "also write the addresses and credentials as JSON to this file")
	logLevel := fs.String("log-level", "warn", "lowest level logged on standard error: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	handoff := fs.Bool("handoff", false, "one-time-token handoff instead of SSO: cTrader (the simulator) owns identity and issues the cashier's tokens")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: cashier demo [flags]\n\n%s\n\n", demoSynopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := m.parseFlags(fs, args, help); err != nil {
		return err
	}
	cfg := config.Defaults()
	for name, value := range map[string]string{"addr": *addr, "log-level": *logLevel, "log-format": *logFormat} {
		if err := config.Select(name)[0].Set(&cfg, value); err != nil {
			help(m.Stderr)
			return usageError{fmt.Errorf("-%s %q %v", name, value, err)}
		}
	}
	var simCheck config.Config
	if err := config.Select("addr")[0].Set(&simCheck, *simAddr); err != nil {
		help(m.Stderr)
		return usageError{fmt.Errorf("-sim-addr %q %v", *simAddr, err)}
	}

	dir := *dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "cashier-demo-")
		if err != nil {
			return errs.Wrap("demo: data folder", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.Wrap("demo: data folder", err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "cashier.db")
	cfg.ShutdownTimeout = 10 * time.Second

	log := newLogger(cfg, m.Stderr)
	prev := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prev)

	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	srv, cashierAddr, err := startServer(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	cashierURL := "http://" + cashierAddr

	// The simulator outlives the cashier's shutdown (pushes still running
	// must reach it), so it is stopped explicitly after the cashier.
	crmPassword := randomToken()
	sim, err := ctradersim.Start(context.WithoutCancel(ctx), ctradersim.Config{Addr: *simAddr, Seed: ctradersim.DemoSeed(),
		Logger: log.With("component", "simulator"), BrokerName: demoBrokerName, BrokerCrmName: demoBrokerCrmName,
		App: ctradersim.AppConfig{BrokerURL: cashierURL, CRMPassword: crmPassword, Handoff: *handoff}})
	if err != nil {
		abandon(ctx, srv)
		return err
	}
	statePath := filepath.Join(dir, "simulator.json")
	stopSim := func() {
		_ = sim.Close()
		if err := saveSimState(sim.Sim(), statePath); err != nil {
			log.Error("demo: simulator state not saved", "path", statePath, "err", err)
		}
	}
	if err := loadSimState(sim.Sim(), statePath); err != nil {
		stopSim()
		abandon(ctx, srv)
		return err
	}
	simURL := sim.URL()

	demoConfig(&cfg, simURL, crmPassword)
	if *handoff {
		cfg.Identity.Mode = identity.ModeHandoff
	}
	box := mail.NewMailbox(0, nil)
	phone := twofactor.NewSMSSink(clock.System{})
	a, err := m.compose(ctx, srv, wiring{cfg: cfg, db: db, log: log, registry: srv.Registry(),
		publicURL: cashierURL, internalURL: internalURL(cashierAddr), mailer: box, sms: phone, rates: payments.DemoRates()})
	if err != nil {
		stopSim()
		abandon(ctx, srv)
		return err
	}
	users, err := seedDemoUsers(ctx, a.identity, sim.Sim(), simURL)
	if err != nil {
		stopSim()
		abandon(ctx, srv)
		return err
	}
	staffMembers, err := seedDemoBackOffice(ctx, a)
	if err != nil {
		stopSim()
		abandon(ctx, srv)
		return err
	}
	man := Manifest{CashierURL: cashierURL, SimulatorURL: simURL, CRMAPIPassword: crmPassword,
		Manager: ManifestManager{Login: demoManagerLogin, Password: demoManagerPassword}, Users: users,
		Staff: staffMembers, BackOfficeURL: cashierURL + "/backoffice/",
		AppURL: simURL + "/app/", LoginURL: cashierURL + "/auth/login", SuccessURL: cfg.Screens.SuccessURL,
		SandboxControlURL: cashierURL + sandbox.Prefix + "/control", MailboxURL: cashierURL + "/_demo/mail/", SMSURL: cashierURL + "/_demo/sms/",
		DataDir: dir, DatabaseURL: cfg.DatabaseURL, IdentityMode: string(cfg.Identity.Mode)}

	sec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: cfg.FrameAncestors})
	srv.Mount("/_demo/mail/", sec(httpx.NoStore(http.StripPrefix("/_demo/mail", box.Handler()))))
	srv.Mount("GET /_demo/sms/{$}", sec(httpx.NoStore(smsPage(phone))))
	srv.Mount("GET /{$}", sec(httpx.NoStore(demoIndex(man))))

	if *manifestPath != "" {
		if err := writeManifest(*manifestPath, man); err != nil {
			stopSim()
			abandon(ctx, srv)
			return err
		}
	}
	printDemo(m.Stdout, man, a)
	m.setReady(cashierAddr)
	err = srv.Serve(ctx)
	stopSim()
	fmt.Fprintf(m.Stdout, "\nDemo stopped. Its data is kept in %s (run again with -data %s to continue).\n", dir, dir)
	return err
}

// demoConfig sets what the demo changes in the default settings: the
// simulator as cTrader, its fake app's origin as the success URL and a
// frame ancestor, the shared crmApiToken password, the sandbox provider,
// look-ups of in-doubt pushes (the simulator offers them), every payment
// method (KYC level 2) and automatic approval of small withdrawals.
func demoConfig(cfg *config.Config, simURL, crmPassword string) {
	cfg.FrameAncestors = []string{"'self'", simURL}
	cfg.Screens.SuccessURL = simURL + "/app/success"
	cfg.Screens.BrandName = "OpenCashier demo"
	cfg.Screens.LegalEntity = "Demo Broker Ltd (not a real company)"
	cfg.Screens.SupportEmail = "support@example.com"
	cfg.Screens.DefaultKYCLevel = 2
	cfg.Identity.CRMPasswords = []string{crmPassword}
	cfg.CTrader.URL = simURL
	cfg.CTrader.ManagerLogin = demoManagerLogin
	cfg.CTrader.ManagerPassword = demoManagerPassword
	cfg.CTrader.BrokerCrmName = demoBrokerCrmName
	cfg.CTrader.BrokerName = demoBrokerName
	cfg.CTrader.DemoBalance = "10000"
	cfg.Platform.PushLookup = true
	cfg.Payments.Sandbox = true
	limits, err := funding.ParseAutoApproveLimits(demoAutoApprove)
	if err != nil {
		panic("demo: auto-approval limits: " + err.Error()) // a constant
	}
	cfg.Funding.AutoApprove = limits
	if cfg.Funding.FourEyesAbove, err = funding.ParseAutoApproveLimits(demoFourEyes); err != nil {
		panic("demo: four-eyes amounts: " + err.Error()) // a constant
	}
	cfg.BackOffice.ReconcileEvery = 10 * time.Minute
}

// seedDemoUsers makes sure every cTID user of the simulator's demo seed is
// a cashier user with a known password, its cTID user id and its trading
// accounts, and returns them for the manifest. Running it again on the same
// database changes nothing but the passwords, which it sets again.
func seedDemoUsers(ctx context.Context, svc *identity.Service, sim *ctradersim.Sim, simURL string) ([]ManifestUser, error) {
	const op = "demo: users"
	var out []ManifestUser
	for _, su := range sim.Users() {
		nick := su.NickName
		if nick == "" {
			nick, _, _ = strings.Cut(su.Email, "@")
		}
		lang := su.PreferredLanguage
		if lang == "" {
			lang = "en"
		}
		mu := ManifestUser{Email: su.Email, Password: demoPassword(nick), CTIDUserID: su.UserID, Language: lang,
			AppURL: simURL + "/app/" + strconv.FormatInt(su.UserID, 10)}
		u, err := svc.UserByEmail(ctx, su.Email)
		switch {
		case errs.CodeOf(err) == errs.NotFound:
			u, err = svc.CreateUser(ctx, identity.NewUser{Email: su.Email, Password: mu.Password, Language: lang, CTIDUserID: su.UserID})
			if err != nil {
				return nil, errs.Wrap(op, err)
			}
		case err != nil:
			return nil, errs.Wrap(op, err)
		default:
			if err := svc.SetPassword(ctx, u.ID, mu.Password); err != nil {
				return nil, errs.Wrap(op, err)
			}
			if u.CTIDUserID != su.UserID {
				if err := svc.SetCTIDUserID(ctx, u.ID, su.UserID); err != nil {
					return nil, errs.Wrap(op, err)
				}
			}
		}
		for _, login := range su.Logins {
			t, err := sim.Trader(login)
			if err != nil {
				return nil, errs.Wrap(op, err)
			}
			_, err = svc.LinkAccount(ctx, identity.NewAccount{UserID: u.ID, Login: login, Environment: identity.Demo,
				Currency: t.Currency, Kind: identity.KindTrading})
			if err != nil && errs.CodeOf(err) != errs.Conflict {
				return nil, errs.Wrap(op, err)
			}
			if err != nil { // recorded by an earlier run: it must be this user's
				if _, err := svc.AccountOf(ctx, u.ID, login); err != nil {
					return nil, errs.Wrap(op, err)
				}
			}
			mu.Accounts = append(mu.Accounts, ManifestAccount{Login: login, Currency: t.Currency, Kind: string(identity.KindTrading),
				Environment: string(identity.Demo), Balance: t.Balance.Decimal()})
		}
		out = append(out, mu)
	}
	if len(out) == 0 {
		return nil, errs.E(errs.Internal, op, "the simulator has no users")
	}
	return out, nil
}

func loadSimState(sim *ctradersim.Sim, path string) error {
	b, err := os.ReadFile(path) // #nosec G304 -- the state file in the demo's data folder
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errs.Wrap("demo: simulator state", err)
	}
	return errs.Wrap("demo: simulator state "+path, sim.LoadState(bytes.NewReader(b)))
}

func saveSimState(sim *ctradersim.Sim, path string) error {
	var b bytes.Buffer
	if err := sim.SaveState(&b); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeManifest(path string, man Manifest) error {
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return errs.Wrap("demo: manifest", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return errs.Wrap("demo: manifest", err)
	}
	return nil
}

// printDemo writes what to open.
func printDemo(w io.Writer, man Manifest, a *app) {
	fmt.Fprintf(w, "OpenCashier demo is running. Press Ctrl-C to stop.\n\n")
	fmt.Fprintf(w, "Open the fake cTrader app:  %s\n", man.AppURL)
	if man.IdentityMode == string(identity.ModeHandoff) {
		fmt.Fprintf(w, "  One-time-token handoff: open a user's page and press Deposit or Withdraw (no broker login):\n\n")
	} else {
		fmt.Fprintf(w, "  Press Log in, sign in as one of these users, then Deposit or Withdraw on an account:\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  e-mail\tpassword\tcTID\taccounts\tapp page\n")
	for _, u := range man.Users {
		var accs []string
		for _, acc := range u.Accounts {
			accs = append(accs, fmt.Sprintf("%d (%s %s)", acc.Login, acc.Currency, acc.Balance))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", u.Email, u.Password, u.CTIDUserID, strings.Join(accs, ", "), u.AppURL)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nCashier:                    %s  (login screen %s)\n", man.CashierURL, man.LoginURL)
	fmt.Fprintf(w, "  cTrader-facing endpoints:  %s/oauth2/crmApiToken, /oauth2/onetime/…  (crmApiToken password %s)\n", man.CashierURL, man.CRMAPIPassword)
	if a.funding != nil {
		fmt.Fprintf(w, "  cashier screens:           %s/inapp/deposit, /inapp/withdraw (opened by the app with a one-time token)\n", man.CashierURL)
	}
	fmt.Fprintf(w, "cTrader simulator:          %s  (WebServices %s/v2/webserv/…, manager %d / %s, admin %s/_sim/)\n",
		man.SimulatorURL, man.SimulatorURL, man.Manager.Login, man.Manager.Password, man.SimulatorURL)
	fmt.Fprintf(w, "Sandbox payment provider:   %s\n", man.SandboxControlURL)
	fmt.Fprintf(w, "  test cards (any future expiry, any CVC): 4242 4242 4242 4242 succeeds; 4000 0000 0000 3220 asks for 3-D Secure\n")
	fmt.Fprintf(w, "  code %s; 4000 0000 0000 0002 is declined. Bank transfers arrive from the control page.\n", sandbox.ThreeDSCode)
	fmt.Fprintf(w, "Demo mailbox:               %s  (password-reset mail and withdrawal codes)\n", man.MailboxURL)
	fmt.Fprintf(w, "Demo SMS:                   %s  (codes for users enrolled for SMS)\n", man.SMSURL)
	if a.banking != nil {
		fmt.Fprintf(w, "Client API:                 %s/api/v2/auth/login, /api/v2/my/withdrawals…, /banks, /cash-transfer, /transactions (docs/client-api.md)\n", man.CashierURL)
	}
	printDemoStaff(w, man)
	fmt.Fprintf(w, "Data folder:                %s\n", man.DataDir)
	fmt.Fprintf(w, "\nWithdrawals up to %s are paid without an operator; larger ones wait for\n", strings.ReplaceAll(demoAutoApprove, ",", ", "))
	fmt.Fprintf(w, "  cashier withdrawals approve ID -by NAME -database-url %s\n", man.DatabaseURL)
}

var demoIndexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>OpenCashier demo</title></head><body>
<h1>OpenCashier demo</h1>
<p>Open the <a href="{{.AppURL}}">fake cTrader app</a>, log in as a demo user and press Deposit or Withdraw.</p>
<table>
<tr><th>E-mail</th><th>Password</th><th>cTID user id</th><th>Accounts</th></tr>
{{range .Users}}<tr><td>{{.Email}}</td><td><code>{{.Password}}</code></td><td><a href="{{.AppURL}}">{{.CTIDUserID}}</a></td>
<td>{{range .Accounts}}{{.Login}} ({{.Currency}}) {{end}}</td></tr>
{{end}}</table>
<ul>
<li><a href="{{.LoginURL}}">Broker login screen</a></li>
<li><a href="{{.SandboxControlURL}}">Sandbox payment provider: control page</a></li>
<li><a href="{{.MailboxURL}}">Demo mailbox</a></li>
<li><a href="{{.SMSURL}}">Demo SMS</a> (text messages with second-factor codes)</li>
<li>cTrader simulator: <a href="{{.SimulatorURL}}/_sim/traders">trading accounts</a>, <a href="{{.SimulatorURL}}/_sim/stats">statistics</a></li>
</ul>
<p>Test cards (any future expiry, any CVC): 4242 4242 4242 4242 succeeds; 4000 0000 0000 3220 asks for a 3-D Secure code (123456); 4000 0000 0000 0002 is declined.</p>
</body></html>
`))

// demoIndex is the demo's front page at the cashier's root: the same as
// what the command prints.
func demoIndex(man Manifest) http.Handler {
	var b bytes.Buffer
	if err := demoIndexPage.Execute(&b, man); err != nil {
		panic("demo: index page: " + err.Error()) // a constant template over plain data
	}
	page := b.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
}

var smsListPage = template.Must(template.New("sms").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo SMS</title></head><body>
<h1>Demo SMS</h1>
<p>Text messages the cashier sent (second-factor codes), newest first. Nothing leaves this machine.</p>
{{if .}}<table>
<tr><th>Sent</th><th>To</th><th>Text</th></tr>
{{range .}}<tr><td>{{.At.Format "2006-01-02 15:04:05"}}</td><td>{{.To}}</td><td><code>{{.Text}}</code></td></tr>
{{end}}</table>{{else}}<p>No messages yet.</p>{{end}}
</body></html>
`))

// smsPage lists the messages of the demo's SMS sink, newest first.
func smsPage(sink *twofactor.SMSSink) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msgs := sink.Messages()
		slices.Reverse(msgs)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := smsListPage.Execute(w, msgs); err != nil {
			http.Error(w, "SMS page failed", http.StatusInternalServerError)
		}
	})
}

// randomToken returns a random 24-character secret.
func randomToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
