package sandbox

import (
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Prefix is the path under which the cashier serves the sandbox.
const Prefix = "/sandbox"

// SignatureHeader carries a webhook's signature (see psp.Sign).
const SignatureHeader = "Sandbox-Signature"

// EventIDHeader carries a webhook's event id.
const EventIDHeader = "Sandbox-Event-Id"

// BankAccount is the account customers pay bank transfers into.
type BankAccount struct {
	Name   string // the bank
	Holder string
	IBAN   string
	BIC    string
}

// Options configures the sandbox provider's server side.
type Options struct {
	// BaseURL is the public URL of the sandbox, e.g.
	// https://pay.broker.example/sandbox; hosted pages are linked from it.
	BaseURL string
	// APIKey is the secret the cashier's adapter (Client) sends as a
	// bearer token. Required.
	APIKey string
	// WebhookURL is where events are delivered, normally the cashier's
	// https://…/psp/sandbox/webhook. Required.
	WebhookURL string
	// WebhookSecret signs the webhooks (HMAC-SHA256). Required.
	WebhookSecret string
	// ControlPassword, when set, protects the control page with HTTP Basic
	// authentication (user "sandbox").
	ControlPassword string

	Clock  clock.Clock  // default clock.System
	Logger *slog.Logger // default slog.Default()
	// HTTPClient delivers webhooks (default: a client with a 10 s timeout).
	HTTPClient *http.Client

	// DelayedOutcome is when delayed cards and payouts complete (default
	// 2 minutes).
	DelayedOutcome time.Duration
	// CheckoutTTL is how long a hosted card or e-wallet page waits for the
	// customer before the payment expires (default 30 minutes).
	CheckoutTTL time.Duration
	// BankTransferTTL is how long a bank transfer waits for the money
	// (default 72 hours).
	BankTransferTTL time.Duration
	// BankArrivalDelay, when positive, makes every bank transfer's money
	// "arrive" in full after this long; zero leaves it to the control page.
	BankArrivalDelay time.Duration
	// CryptoTTL is how long a crypto address waits for a transaction
	// (default 1 hour); CryptoConfirmations is how many confirmations make
	// it final (default 3).
	CryptoTTL           time.Duration
	CryptoConfirmations int
	// OutOfOrderDelay is how long non-final events are held back when
	// out-of-order delivery is on (default 1 minute).
	OutOfOrderDelay time.Duration
	// Initial webhook settings; the control page changes them at run time.
	DuplicateWebhooks  bool // deliver every event twice
	OutOfOrderWebhooks bool // deliver final events before earlier ones
	DropWebhooks       bool // deliver nothing (to watch polling work)

	Bank BankAccount // default: a sandbox bank account

	// Notify, if set, is called after a transaction that enqueued jobs
	// commits (pass the job runner's Notify).
	Notify func()
}

// Defaults of Options.
const (
	DefaultDelayedOutcome      = 2 * time.Minute
	DefaultCheckoutTTL         = 30 * time.Minute
	DefaultBankTransferTTL     = 72 * time.Hour
	DefaultCryptoTTL           = time.Hour
	DefaultCryptoConfirmations = 3
	DefaultOutOfOrderDelay     = time.Minute
)

// DefaultBank is the account bank transfers are paid into.
var DefaultBank = BankAccount{Name: "Sandbox Bank plc", Holder: "OpenCashier Sandbox Client Funds", IBAN: "GB33BUKB20201555555555", BIC: "BUKBGB22"}

// Server is the sandbox provider: its API, hosted pages, control page,
// webhook delivery and timers. Its state lives in the sandbox_* tables of
// the database it is given.
type Server struct {
	db    *sqlstore.DB
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	http  *http.Client
	pages *template.Template
	base  *url.URL
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed migrations
var migrations embed.FS

// Schema is the sandbox's tables (versions 00350–00351), for sqlstore.DB.Migrate
// alongside jobs.Schema.
var Schema = sqlstore.Schema{Name: "sandbox", FS: mustSub(migrations, "migrations")}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("sandbox: embedded " + dir + ": " + err.Error())
	}
	return sub
}

// NewServer returns the sandbox server over db (migrated with Schema and
// jobs.Schema). It returns an errs.Invalid error when BaseURL or WebhookURL
// is not an absolute http(s) URL or APIKey or WebhookSecret is empty.
func NewServer(db *sqlstore.DB, opts Options) (*Server, error) {
	const op = "sandbox.NewServer"
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "sandbox base URL %q must be an absolute http(s) URL", opts.BaseURL)
	}
	if u, err := url.Parse(opts.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "sandbox webhook URL %q must be an absolute http(s) URL", opts.WebhookURL)
	}
	if opts.APIKey == "" || opts.WebhookSecret == "" {
		return nil, errs.E(errs.Invalid, op, "the sandbox needs an API key and a webhook secret")
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	defaults := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&opts.DelayedOutcome, DefaultDelayedOutcome}, {&opts.CheckoutTTL, DefaultCheckoutTTL},
		{&opts.BankTransferTTL, DefaultBankTransferTTL}, {&opts.CryptoTTL, DefaultCryptoTTL},
		{&opts.OutOfOrderDelay, DefaultOutOfOrderDelay},
	}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if opts.CryptoConfirmations <= 0 {
		opts.CryptoConfirmations = DefaultCryptoConfirmations
	}
	if opts.Bank == (BankAccount{}) {
		opts.Bank = DefaultBank
	}
	pages, err := template.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	return &Server{
		db: db, opts: opts, clock: opts.Clock, log: opts.Logger.With("component", "sandbox"),
		http: opts.HTTPClient, pages: pages, base: base,
	}, nil
}

// JobHandlers returns the sandbox's job handlers by kind (webhook delivery
// and timers), for the cashier's job runner.
func (s *Server) JobHandlers() map[string]jobs.Handler {
	return map[string]jobs.Handler{webhookJobKind: s.deliverJob, timerJobKind: s.timerJob}
}

// Routes registers the sandbox's routes under Prefix with mount (the
// server's Mount, or an http.ServeMux's Handle): the API (bearer token;
// payments, payouts and the transaction report),
// the hosted checkout pages, the control page and the stylesheet. Pages
// are protected against cross-origin form posts.
func (s *Server) Routes(mount func(pattern string, h http.Handler)) {
	pages := http.NewCrossOriginProtection()
	page := func(pattern string, h http.HandlerFunc) {
		mount(pattern, pages.Handler(httpx.NoStore(h)))
	}
	control := func(pattern string, h http.HandlerFunc) {
		mount(pattern, pages.Handler(httpx.NoStore(s.controlAuth(h))))
	}
	api := func(pattern string, h http.HandlerFunc) {
		mount(pattern, httpx.NoStore(s.apiAuth(h)))
	}
	api("POST "+Prefix+"/api/payments", s.apiCreatePayment)
	api("GET "+Prefix+"/api/payments/{reference}", s.apiGet("payment"))
	api("POST "+Prefix+"/api/payouts", s.apiCreatePayout)
	api("GET "+Prefix+"/api/payouts/{reference}", s.apiGet("payout"))
	api("GET "+Prefix+"/api/report", s.apiReport)

	page("GET "+Prefix+"/checkout/{id}", s.checkoutPage)
	page("POST "+Prefix+"/checkout/{id}/card", s.checkoutCard)
	page("GET "+Prefix+"/checkout/{id}/3ds", s.threeDSPage)
	page("POST "+Prefix+"/checkout/{id}/3ds", s.threeDSSubmit)
	page("POST "+Prefix+"/checkout/{id}/wallet", s.walletSubmit)

	control("GET "+Prefix+"/{$}", s.controlPage)
	control("GET "+Prefix+"/control", s.controlPage)
	control("GET "+Prefix+"/control/{id}", s.controlDetail)
	control("POST "+Prefix+"/control/{id}/{action}", s.controlAction)
	control("POST "+Prefix+"/control/settings", s.controlSettings)

	static := http.FileServerFS(staticFS)
	mount("GET "+Prefix+"/static/", http.StripPrefix(Prefix, static))
}

// Handler returns the sandbox's routes as a handler of their own.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Routes(mux.Handle)
	return mux
}

func (s *Server) apiAuth(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + s.opts.APIKey)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "sandbox.api", "missing or wrong API key"))
			return
		}
		h(w, r)
	}
}

func (s *Server) controlAuth(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.ControlPassword == "" {
		return h
	}
	want := []byte(s.opts.ControlPassword)
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "sandbox" || subtle.ConstantTimeCompare([]byte(pass), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="sandbox control", charset="UTF-8"`)
			http.Error(w, "sandbox control needs the password", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// url returns the public URL of a sandbox path.
func (s *Server) url(path string) string { return s.base.String() + path }

// Provider capabilities, shared by Client.
var capabilities = psp.Capabilities{
	Methods:          []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet, psp.Crypto},
	PayoutMethods:    []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet},
	CryptoCurrencies: []string{"BTC", "ETH", "USDT"},
}
