package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/compliance/cashierprofiles"
	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/httpapi/validatetoken"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/idempotency"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/ctraderid"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/notify"
	"github.com/opencashier/cashier/internal/openapi"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/callback"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/staff"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/authpages"
	"github.com/opencashier/cashier/internal/web/cashierpages"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// schemas lists the database schema of every package, in version order.
// Each package owns a range of migration versions (docs/architecture.md);
// a package that adds tables adds its Schema here, and serve and migrate
// pick it up.
func schemas() []sqlstore.Schema {
	return []sqlstore.Schema{
		ledger.Schema,         // 00001–00009
		jobs.Schema,           // 00010–00019
		push.Schema,           // 00100–00199
		identity.Schema,       // 00200–00299
		payments.Schema,       // 00300–00349
		sandbox.Schema,        // 00350
		funding.Schema,        // 00400–00499
		clientauth.Schema,     // 00500
		idempotency.Schema,    // 00510
		banking.Schema,        // 00520
		twofactor.Schema,      // 00550
		withdrawwizard.Schema, // 00560
		audit.Schema,          // 00600
		staff.Schema,          // 00610
		compliance.Schema,     // 00620
		reconcile.Schema,      // 00630
		notify.Schema,         // 00640
	}
}

// wiring is what buildApp needs besides the settings.
type wiring struct {
	cfg      config.Config
	db       *sqlstore.DB
	log      *slog.Logger
	registry prometheus.Registerer
	clock    clock.Clock
	// publicURL is how browsers and the trading platform reach the cashier
	// (no trailing slash); internalURL is how the process reaches itself
	// (the sandbox's API and webhooks).
	publicURL, internalURL string
	// mailer, when set, replaces the mailer the settings choose (the demo's
	// mailbox).
	mailer mail.Mailer
	// rates, when set, are asked after the operators' rates and the rates
	// file (the demo's built-in rates).
	rates payments.RateSource
	// sms, when set, replaces the SMS provider the settings choose (the
	// demo's SMS sink).
	sms twofactor.SMSSender
}

// route is one handler mounted on the server.
type route struct {
	pattern string
	handler http.Handler
}

// app is the composed cashier: the routes to mount, the job kinds to run,
// and the services, for the commands that use them.
type app struct {
	routes []route
	jobs   map[string]jobs.Handler
	// registrars add job handlers that only register themselves on a
	// runner (the push service).
	registrars []func(*jobs.Runner)
	pushKinds  []string
	// periodic is work serve runs on a ticker until it shuts down.
	periodic []periodic
	notify   *notifier
	// off says which parts are not running and why, for the start-up log.
	off map[string]string

	audit         *audit.Log
	compliance    *compliance.Service
	notifications *notify.Service
	reconcile     *reconcile.Service
	staff         *staff.Service
	identity      *identity.Service
	ctrader       *ctrader.Client
	connector     platform.Connector
	push          *push.Service
	payments      *payments.Service
	sandbox       *sandbox.Server
	provider      psp.Provider
	funding       *funding.Service
	renderer      *web.Renderer
	twoFactor     *twofactor.Service
	banking       *banking.Service
}

func (a *app) mount(pattern string, h http.Handler) {
	a.routes = append(a.routes, route{pattern, h})
}

// jobKinds lists every job kind the app handles, sorted.
func (a *app) jobKinds() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range a.jobs {
			if !yield(k) {
				return
			}
		}
		for _, k := range a.pushKinds {
			if !yield(k) {
				return
			}
		}
	})
}

// register adds the app's job handlers, and extra ones, to a runner.
func (a *app) register(r *jobs.Runner, extra map[string]jobs.Handler) {
	all := maps.Clone(a.jobs)
	maps.Copy(all, extra)
	for _, kind := range slices.Sorted(maps.Keys(all)) {
		r.Handle(kind, all[kind])
	}
	for _, reg := range a.registrars {
		reg(r)
	}
	a.notify.set(r)
}

// notifier forwards Notify to the job runner once there is one, so that
// services built before the runner can wake it after enqueuing a job.
type notifier struct{ r atomic.Pointer[jobs.Runner] }

func (n *notifier) set(r *jobs.Runner) { n.r.Store(r) }

// Notify wakes the runner, if any.
func (n *notifier) Notify() {
	if r := n.r.Load(); r != nil {
		r.Notify()
	}
}

// buildApp composes every package from the settings: identity and the
// cTrader-facing endpoints always; the trading platform, balance pushes,
// payments, funding and the screens when their settings allow. It returns
// an errs.Invalid error for settings a package refuses (a methods file
// that does not validate, a malformed URL) and the packages' other errors.
func buildApp(ctx context.Context, w wiring) (*app, error) {
	cfg := w.cfg
	if w.clock == nil {
		w.clock = clock.System{}
	}
	a := &app{jobs: map[string]jobs.Handler{}, notify: &notifier{}, off: map[string]string{}}
	// The audit trail: every part that changes money or state records in it.
	a.audit = audit.New(w.db, w.clock)
	sec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: cfg.FrameAncestors, HSTS: cfg.HSTS})

	// The trading platform.
	var adapter *ctraderid.Adapter
	if cfg.CTrader.URL != "" {
		client, err := ctrader.New(ctrader.Config{BaseURL: cfg.CTrader.URL, ManagerLogin: cfg.CTrader.ManagerLogin,
			ManagerPassword: cfg.CTrader.ManagerPassword, Timeout: cfg.CTrader.Timeout, Metrics: w.registry})
		if err != nil {
			return nil, err
		}
		a.ctrader = client
		if cfg.CTrader.BrokerCrmName != "" && cfg.CTrader.BrokerName != "" {
			adapter, err = ctraderid.New(client, map[string]*ctrader.Client{"demo": client, "live": client}, ctraderid.Config{
				BrokerCrmName: cfg.CTrader.BrokerCrmName, BrokerName: cfg.CTrader.BrokerName,
				Groups: cfg.CTrader.Groups, DemoBalance: cfg.CTrader.DemoBalance})
			if err != nil {
				return nil, err
			}
		} else {
			a.off["ctid provisioning"] = "CASHIER_CTRADER_BROKER_CRM_NAME and CASHIER_CTRADER_BROKER_NAME are not set: signup creates no cTID and no trading account"
		}
		switch cfg.Platform.Connector {
		case "callback":
			cb, err := callback.New(callback.Config{URL: cfg.Platform.CallbackURL, Token: cfg.Platform.CallbackToken,
				Accounts: client, Timeout: cfg.CTrader.Timeout, Clock: w.clock})
			if err != nil {
				return nil, err
			}
			a.connector = cb
		default:
			a.connector = client
		}
	} else {
		a.off["trading platform"] = "CASHIER_CTRADER_URL is not set: no balance pushes, deposits, withdrawals or /api/validate-token"
	}

	// Identity and the endpoints cTrader calls.
	deps := identity.Deps{DB: w.db, Clock: w.clock, Logger: w.log, Audit: a.audit}
	if adapter != nil {
		deps.Provisioner, deps.Traders, deps.Redeemer, deps.Lookup = adapter, adapter, adapter, adapter
	}
	idsvc, err := identity.New(deps, identity.Config{
		Mode: cfg.Identity.Mode, CRMPasswords: cfg.Identity.CRMPasswords, CRMTokenTTL: cfg.Identity.CRMTokenTTL,
		OTTokenTTL: cfg.Identity.OTTokenTTL, AccessTokenTTL: cfg.Identity.AccessTokenTTL, InAppTokenTTL: cfg.Identity.InAppTokenTTL,
		CashierSessionTTL: cfg.Identity.CashierSessionTTL, ResetTokenTTL: cfg.Identity.ResetTokenTTL,
		LockoutThreshold: cfg.Identity.LockoutThreshold, LockoutPeriod: cfg.Identity.LockoutPeriod,
		DefaultLanguage: cfg.Identity.DefaultLanguage, HandoffKnownUsersOnly: cfg.Identity.HandoffKnownUsersOnly,
	})
	if err != nil {
		return nil, err
	}
	a.identity = idsvc
	issuer := cfg.Screens.BrandName + " back office"
	if cfg.Screens.BrandName == "" {
		issuer = staff.DefaultIssuer
	}
	a.staff = staff.New(w.db, w.clock, staff.Options{Issuer: issuer, SessionIdle: cfg.BackOffice.StaffSessionIdle,
		SessionMax: cfg.BackOffice.StaffSessionMax, Audit: a.audit})
	a.periodic = append(a.periodic,
		periodic{name: "staff sessions sweep", every: time.Hour, run: a.staff.Sweep},
		periodic{name: "identity tokens purge", every: time.Hour, run: func(ctx context.Context) (int64, error) {
			return idsvc.PurgeExpiredTokens(ctx, 7*24*time.Hour) // kept a week for investigations
		}})
	api, err := ctraderapi.New(idsvc, ctraderapi.Options{BasePath: cfg.Identity.BasePath,
		AllowedNetworks: cfg.Identity.AllowedNetworks, Clock: w.clock, Logger: w.log})
	if err != nil {
		return nil, err
	}
	a.mount(api.Prefix(), api)
	a.mount("GET "+openapi.Path, openapi.Handler()) // the OpenAPI document of every JSON endpoint
	if len(cfg.Identity.CRMPasswords) == 0 && cfg.Identity.Mode == identity.ModeSSO {
		a.off["crmApiToken"] = "CASHIER_CTRADER_CRM_PASSWORDS is empty: POST /oauth2/crmApiToken refuses every password"
	}

	mailer := w.mailer
	if mailer == nil {
		if cfg.SMTP.Host != "" {
			smtp, err := mail.NewSMTP(mail.SMTPConfig{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
				Password: cfg.SMTP.Password, From: cfg.SMTP.From, RequireTLS: cfg.SMTP.RequireTLS})
			if err != nil {
				return nil, err
			}
			mailer = smtp
		} else {
			mailer = noMailer{log: w.log}
			a.off["mail"] = "CASHIER_SMTP_HOST is not set: password-reset mail and withdrawal codes cannot be sent"
		}
	}

	// Balance pushes.
	if a.connector != nil {
		vt, err := validatetoken.New(idsvc, validatetoken.Options{Balances: validatetoken.ConnectorBalances(a.connector),
			Clock: w.clock, Logger: w.log})
		if err != nil {
			return nil, err
		}
		a.mount("POST /api/validate-token", vt)

		var conn platform.Connector = a.connector
		if !cfg.Platform.PushLookup {
			conn = withoutLookup{a.connector}
		}
		a.push = push.New(w.db, conn, push.Options{Clock: w.clock, SendTimeout: cfg.CTrader.Timeout,
			Logger: w.log, Registerer: w.registry})
		a.registrars = append(a.registrars, a.push.Register)
		a.pushKinds = append(a.pushKinds, push.JobKind)
	}

	// Payments: the sandbox is the only provider so far.
	observer := new(funding.PaymentObserver)
	var catalog *payments.Catalog
	if cfg.Payments.Sandbox {
		catalog, err = payments.LoadMethodsFile(cfg.Payments.MethodsFile)
		if err != nil {
			return nil, err
		}
		static, err := payments.LoadStaticRatesFile(cfg.Payments.RatesFile)
		if err != nil {
			return nil, err
		}
		rates := payments.Sources{payments.NewRateStore(w.db, w.clock).Audit(a.audit), static}
		if w.rates != nil {
			rates = append(rates, w.rates)
		}
		apiKey, secret := cfg.Payments.SandboxAPIKey, cfg.Payments.SandboxWebhookSecret
		if apiKey == "" {
			apiKey = randomHex(16)
		}
		if secret == "" {
			secret = randomHex(32)
		}
		sb, err := sandbox.NewServer(w.db, sandbox.Options{BaseURL: w.publicURL + sandbox.Prefix, APIKey: apiKey,
			WebhookURL: w.internalURL + "/psp/sandbox/webhook", WebhookSecret: secret,
			ControlPassword: cfg.Payments.SandboxControlPassword, Clock: w.clock, Logger: w.log, Notify: a.notify.Notify})
		if err != nil {
			return nil, err
		}
		client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: w.internalURL + sandbox.Prefix, APIKey: apiKey,
			WebhookSecret: secret, Clock: w.clock})
		if err != nil {
			return nil, err
		}
		providers, err := psp.NewRegistry(client)
		if err != nil {
			return nil, err
		}
		psvc, err := payments.NewService(w.db, payments.Options{Providers: providers, Methods: catalog, Rates: rates,
			SpreadBps: cfg.Payments.SpreadBps, Observer: observer, Clock: w.clock, Logger: w.log, Notify: a.notify.Notify})
		if err != nil {
			return nil, err
		}
		a.sandbox, a.payments, a.provider = sb, psvc, client
		psvc.Routes(a.mount)
		sb.Routes(func(pattern string, h http.Handler) { a.mount(pattern, sec(h)) })
		maps.Copy(a.jobs, psvc.JobHandlers())
		maps.Copy(a.jobs, sb.JobHandlers())
	} else {
		a.off["payments"] = "no payment provider: the sandbox (CASHIER_SANDBOX) is off and no other provider exists yet"
	}

	// Deposits and withdrawals.
	if a.push != nil && a.payments != nil {
		hooks, screener, err := buildFundingHooks(w, a, catalog, mailer)
		if err != nil {
			return nil, err
		}
		books := ledger.New(w.db, w.clock)
		books.Observe(ledgerTrail(a.audit))
		fsvc, err := funding.New(funding.Deps{DB: w.db, Clock: w.clock, Ledger: books, Push: a.push,
			Payments: a.payments, Platform: a.connector, Accounts: idsvc, Mailer: mailer, Observer: observer,
			Notify: a.notify.Notify, Logger: w.log, Hooks: hooks, Screener: screener}, funding.Config{
			AutoApproveWithdrawalsUpTo: cfg.Funding.AutoApprove, AutoApproveMethods: cfg.Funding.AutoApproveMethods,
			Require2FA: cfg.Funding.Require2FA, DepositExpiry: cfg.Funding.DepositExpiry, FourEyesAbove: cfg.Funding.FourEyesAbove})
		if err != nil {
			return nil, err
		}
		a.funding = fsvc
		maps.Copy(a.jobs, fsvc.JobHandlers())
		if err := buildReconcile(ctx, w, a); err != nil {
			return nil, err
		}
	} else {
		a.off["funding"] = "deposits and withdrawals need a trading platform and a payment provider"
	}

	// The client API (seeds 002 and 003).
	if err := buildClientAPI(w, a, idsvc, mailer, sec); err != nil {
		return nil, err
	}

	// The shared look, the back office and the screens.
	a.renderer = web.New(web.Options{Brand: cfg.Screens.BrandName, LegalEntity: cfg.Screens.LegalEntity,
		DefaultLang: cfg.Identity.DefaultLanguage})
	a.mount("GET "+a.renderer.StaticPrefix(), sec(a.renderer.StaticHandler()))
	if err := buildBackOffice(w, a); err != nil {
		return nil, err
	}
	if cfg.Screens.SuccessURL == "" {
		a.off["screens"] = "CASHIER_SUCCESS_URL is not set: no login, signup, account or cashier screens"
		return a, nil
	}
	auth, err := authpages.New(idsvc, a.renderer, authpages.Options{SuccessURL: cfg.Screens.SuccessURL,
		CloseURL: cfg.Screens.CloseURL, PublicURL: w.publicURL, Environments: cfg.Screens.AccountEnvironments,
		Currencies: cfg.Screens.AccountCurrencies, Mailer: mailer, Clock: w.clock, Logger: w.log})
	if err != nil {
		return nil, err
	}
	// The identity screens carry the shared stylesheet inline: their CSP
	// allows it by its hash (and nothing else inline).
	authSec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: cfg.FrameAncestors, HSTS: cfg.HSTS,
		InlineStyles: []string{a.renderer.StyleSource()}})
	a.mount("/auth/", authSec(httpx.NoStore(auth)))
	a.mount("/account/", authSec(httpx.NoStore(auth)))
	if a.funding == nil {
		a.off["cashier screens"] = "deposits and withdrawals are off"
		return a, nil
	}
	// The cashier screens set their own security headers (a CSP with the
	// hash of their inline CSS) and no-store (their versioned script is
	// cached); they are mounted without sec, so theirs is the one policy sent.
	screenDeps := cashierpages.Deps{Identity: idsvc, Funding: a.funding, Renderer: a.renderer, Methods: catalog}
	if a.compliance != nil {
		screenDeps.Profiles = cashierprofiles.New(a.compliance)
	}
	screens, err := cashierpages.New(screenDeps,
		cashierpages.Options{DepositPath: cfg.Screens.DepositPath, WithdrawPath: cfg.Screens.WithdrawPath,
			PublicURL: w.publicURL, SuccessURL: cfg.Screens.SuccessURL, CloseURL: cfg.Screens.CloseURL,
			HelpURL: cfg.Screens.HelpURL, SupportEmail: cfg.Screens.SupportEmail, FrameAncestors: cfg.FrameAncestors,
			HSTS: cfg.HSTS, Key: cfg.Screens.SessionKey, DefaultCountry: cfg.Screens.DefaultCountry,
			DefaultKYCLevel: cfg.Screens.DefaultKYCLevel, Clock: w.clock, Logger: w.log})
	if err != nil {
		return nil, err
	}
	const prefix = "/inapp/"
	a.mount(prefix, screens)
	for _, p := range []string{cfg.Screens.DepositPath, cfg.Screens.WithdrawPath} {
		if !strings.HasPrefix(p, prefix) {
			a.mount("GET "+p, screens)
		}
	}
	return a, nil
}

// logParts logs what runs and what is off, with the reason.
func (a *app) logParts(log *slog.Logger) {
	for _, part := range slices.Sorted(maps.Keys(a.off)) {
		log.Warn("part off", "part", part, "reason", a.off[part])
	}
	var patterns []string
	for _, r := range a.routes {
		patterns = append(patterns, r.pattern)
	}
	log.Info("routes mounted", "routes", patterns)
}

// withoutLookup hides a connector's ChangeLookup (CASHIER_PUSH_LOOKUP=off),
// so that an in-doubt push waits for an operator.
type withoutLookup struct{ platform.Connector }

// noMailer is the mailer without a mail server: every message fails with
// errs.Unavailable, and is logged without its text (which may hold a link
// or a code).
type noMailer struct{ log *slog.Logger }

// Send implements mail.Mailer. It returns errs.Unavailable.
func (n noMailer) Send(ctx context.Context, m mail.Message) error {
	n.log.WarnContext(ctx, "mail not sent: no mail server (set CASHIER_SMTP_HOST)", "to", m.To, "subject", m.Subject)
	return errs.E(errs.Unavailable, "mail.Send", "no mail server is configured")
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// internalURL is how the process reaches its own listener: the listen
// address, with an unspecified host (0.0.0.0, ::) replaced by loopback.
func internalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, port))
}
