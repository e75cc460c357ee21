// Package cashierpages serves the in-app cashier that cTrader opens in its
// iframe or WebView: /inapp/deposit and /inapp/withdraw (spec §8–§10, seeds
// 000 and 001).
//
// The first request carries cTrader's `token`, `account`, `lang`, `theme`
// and `source` (unknown parameters are ignored). The token is consumed
// through identity (SSO or handoff mode), which checks that the account is
// the user's and opens a server-side cashier session; the browser is then
// redirected to the same screen without the token. From there every page
// carries a sealed handle of that session (`s`, see seal.go) in its links
// and forms, so the screens need no cookies (third-party cookies are
// blocked in many iframes and WebViews) and no JavaScript.
//
// Deposit: method → amount and currency (limits, fee and conversion shown,
// live with our own small script, or on the Review step without it) →
// confirmation → the provider's step (hosted page, bank details, crypto
// address) → a status page that refreshes itself → the result, then the
// success URL, which makes the app close the view. Withdrawal: balance and
// withdrawable amount → method and its fields (IBAN, wallet id) checked as
// you type and on the server → confirmation → an optional 2FA code →
// status tracking.
//
// Every page has the Back/X controls of the shared layout and a help link,
// light and dark themes, right-to-left layout for Arabic, and works at
// 360 px. Its CSS (the shared stylesheet and the screens' own) is inline in
// the head, so a page paints after one request even with an empty cache.
// Responses carry the house CSP (script-src 'self', no inline script,
// style-src 'self' plus the hash of exactly that CSS, frame-ancestors from
// Options), no-store, and every POST passes http.CrossOriginProtection.
package cashierpages

import (
	"crypto/rand"
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/ratelimit"
	"github.com/opencashier/cashier/internal/web"
)

//go:embed pages/*.html
var pageFS embed.FS

//go:embed i18n/*.json
var messageFS embed.FS

// Deps are the services behind the screens.
type Deps struct {
	Identity Identity      // required: *identity.Service
	Funding  Funding       // required: *funding.Service
	Renderer *web.Renderer // required: the shared look; its StaticHandler serves the stylesheet
	// Profiles gives customers' countries and KYC levels; optional.
	Profiles Profiles
	// Methods names payment methods on status pages and lets the
	// confirmation step find the method without reading the account
	// (funding checks both when it starts the deposit); optional (the
	// method's id is shown, and the account read, without it). It must be
	// the catalog funding uses.
	Methods *payments.Catalog
}

// Options configure the screens.
type Options struct {
	// DepositPath and WithdrawPath are the URLs Spotware opens (defaults
	// /inapp/deposit and /inapp/withdraw).
	DepositPath  string
	WithdrawPath string
	// Prefix is where the later steps, status pages, help and the screens'
	// script live (default /inapp). Mount the handler at Prefix+"/" and at
	// the two paths if they lie outside it.
	Prefix string
	// PublicURL is the cashier's public base URL, e.g.
	// https://crm.broker.example (required). Providers' return URLs are
	// built on it, never on the request's Host header.
	PublicURL string
	// RedirectAfterOpen answers the app's URL (with the one-time token)
	// with a 303 redirect to the token-less URL. By default the first
	// screen is shown at once and its script replaces the address, which
	// saves a round trip on the screen the trader waits for (a <meta>
	// refresh does the redirect without JavaScript).
	RedirectAfterOpen bool
	// SuccessURL is the success URL built into the app (required): reaching
	// it makes the app close the view.
	SuccessURL string
	// CloseURL is where the X control leads; default SuccessURL.
	CloseURL string
	// HelpURL is the help link on every screen; default a built-in page at
	// Prefix+"/help".
	HelpURL string
	// SupportEmail is shown on the built-in help page and on error pages.
	SupportEmail string
	// FrameAncestors are the origins allowed to frame the screens (the
	// cTrader web app, the broker's white-label terminal); empty: 'none'.
	FrameAncestors []string
	// HSTS adds Strict-Transport-Security (serve over HTTPS).
	HSTS bool
	// Key seals the session handles and tickets: 32 bytes, the same on every
	// replica. Empty: a random key per process, so handles do not survive a
	// restart and do not work across replicas.
	Key []byte
	// TicketTTL is how long a deposit's or withdrawal's status address
	// works (default 2 hours).
	TicketTTL time.Duration
	// RefreshEvery is how often a status page refreshes itself while the
	// outcome is open (default 3 s).
	RefreshEvery time.Duration
	// ResultDelay is how long a completed operation's result is shown before
	// the screen goes to the success URL by itself (default 5 s; negative:
	// only the Done button).
	ResultDelay time.Duration
	// DefaultCountry and DefaultKYCLevel describe customers when Deps has
	// no Profiles.
	DefaultCountry  string
	DefaultKYCLevel int
	// FormEvery and FormBurst limit posts per client address (defaults 1 s
	// and 20).
	FormEvery time.Duration
	FormBurst int
	Clock     clock.Clock  // default clock.System
	Logger    *slog.Logger // default slog.Default()
}

// screens is the handler.
type screens struct {
	id      Identity
	fund    Funding
	prof    Profiles
	methods *payments.Catalog
	r       *web.Renderer
	opt     Options
	public  *url.URL
	success *url.URL
	seal    *sealer
	forms   *ratelimit.Limiter
	log     *slog.Logger
	assets  assets
	style   string // the CSP hash source of the pages' inline CSS
	handler http.Handler
}

// New returns the cashier screens as one handler. It adds its pages to the
// renderer and its messages to the shared catalogue. It returns an
// errs.Invalid error for a missing dependency, a missing or relative
// PublicURL or SuccessURL, paths that do not start with "/", or a key that
// is not 32 bytes.
func New(d Deps, opt Options) (http.Handler, error) {
	const op = "cashierpages.New"
	if d.Identity == nil || d.Funding == nil || d.Renderer == nil {
		return nil, errs.E(errs.Invalid, op, "identity, funding and the renderer are required")
	}
	abs := func(name, s string) (*url.URL, error) {
		u, err := url.Parse(strings.TrimRight(s, "/"))
		if err != nil || s == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errs.Ef(errs.Invalid, op, "%s %q must be an absolute http(s) URL", name, s)
		}
		return u, nil
	}
	public, err := abs("public URL", opt.PublicURL)
	if err != nil {
		return nil, err
	}
	success, err := url.Parse(opt.SuccessURL)
	if err != nil || opt.SuccessURL == "" || success.Host == "" || (success.Scheme != "http" && success.Scheme != "https") {
		return nil, errs.Ef(errs.Invalid, op, "success URL %q must be an absolute http(s) URL", opt.SuccessURL)
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&opt.Prefix, "/inapp")
	opt.Prefix = "/" + strings.Trim(opt.Prefix, "/")
	def(&opt.DepositPath, opt.Prefix+"/deposit")
	def(&opt.WithdrawPath, opt.Prefix+"/withdraw")
	for _, p := range []string{opt.DepositPath, opt.WithdrawPath} {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#{} ") {
			return nil, errs.Ef(errs.Invalid, op, "screen path %q must be a plain absolute path", p)
		}
	}
	def(&opt.CloseURL, opt.SuccessURL)
	def(&opt.HelpURL, opt.Prefix+"/help")
	if len(opt.Key) == 0 {
		opt.Key = make([]byte, 32)
		if _, err := rand.Read(opt.Key); err != nil {
			return nil, errs.Wrap(op, err)
		}
	}
	seal, err := newSealer(opt.Key)
	if err != nil {
		return nil, err
	}
	if opt.TicketTTL <= 0 {
		opt.TicketTTL = 2 * time.Hour
	}
	if opt.RefreshEvery <= 0 {
		opt.RefreshEvery = 3 * time.Second
	}
	if opt.ResultDelay == 0 {
		opt.ResultDelay = 5 * time.Second
	}
	if opt.FormEvery <= 0 {
		opt.FormEvery = time.Second
	}
	if opt.FormBurst <= 0 {
		opt.FormBurst = 20
	}
	if opt.Clock == nil {
		opt.Clock = clock.System{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	opt.DefaultCountry = strings.ToUpper(strings.TrimSpace(opt.DefaultCountry))
	if err := web.LoadMessages(messageFS, "i18n"); err != nil {
		return nil, errs.Wrap(op, err)
	}
	style, err := d.Renderer.AddPagesWithCSS(pageFS, "pages/*.html", cashierCSS)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	s := &screens{id: d.Identity, fund: d.Funding, prof: d.Profiles, methods: d.Methods, r: d.Renderer, opt: opt, public: public, success: success,
		seal: seal, forms: ratelimit.New(opt.FormEvery, opt.FormBurst, opt.Clock), log: opt.Logger, style: style}
	s.assets = newAssets(opt.Prefix + "/assets/")
	s.handler = s.routes()
	return s, nil
}

func (s *screens) routes() http.Handler {
	mux := http.NewServeMux()
	csrf := http.NewCrossOriginProtection()
	post := func(h http.HandlerFunc) http.Handler { return csrf.Handler(s.limited(h)) }
	p := s.opt.Prefix
	mux.HandleFunc("GET "+s.opt.DepositPath, s.depositEntry)
	mux.HandleFunc("GET "+s.opt.WithdrawPath, s.withdrawEntry)
	mux.Handle("POST "+p+"/account", post(s.chooseAccount))

	mux.HandleFunc("GET "+p+"/deposit/amount", s.depositAmount)
	mux.HandleFunc("GET "+p+"/deposit/quote", s.depositQuote)
	mux.HandleFunc("GET "+p+"/deposit/review", s.depositReview)
	mux.Handle("POST "+p+"/deposit/confirm", post(s.depositConfirm))
	mux.HandleFunc("GET "+p+"/deposit/return", s.depositReturn)
	mux.HandleFunc("GET "+p+"/deposit/status", s.depositStatus)
	mux.HandleFunc("GET "+p+"/deposit/status.json", s.depositStatusJSON)
	mux.Handle("POST "+p+"/deposit/retry", post(s.depositRetry))

	mux.HandleFunc("GET "+p+"/withdraw/details", s.withdrawDetails)
	mux.Handle("POST "+p+"/withdraw/details", post(s.withdrawDetails))
	mux.Handle("POST "+p+"/withdraw/review", post(s.withdrawReview))
	mux.Handle("POST "+p+"/withdraw/confirm", post(s.withdrawConfirm))
	mux.HandleFunc("GET "+p+"/withdraw/status", s.withdrawStatus)
	mux.HandleFunc("GET "+p+"/withdraw/status.json", s.withdrawStatusJSON)
	mux.Handle("POST "+p+"/withdraw/code", post(s.withdrawCode))

	mux.HandleFunc("GET "+p+"/help", s.help)
	mux.Handle("GET "+p+"/assets/", s.assets.handler())
	mux.HandleFunc(p+"/", s.notFound)
	// The screens' own CSP, set last: it replaces one a server-wide
	// wrapper may have set, so the browser sees one policy, with the hash.
	sec := httpx.SecurityHeaders(httpx.SecurityOptions{FrameAncestors: s.opt.FrameAncestors, HSTS: s.opt.HSTS,
		InlineStyles: []string{s.style}})
	return sec(mux)
}

// ServeHTTP serves the screens. Pages and JSON are never cached; the
// versioned script is cached for a year.
func (s *screens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, s.opt.Prefix+"/assets/") {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
	}
	s.handler.ServeHTTP(w, r)
}

// limited answers 429 when a client posts too often, and bounds bodies.
func (s *screens) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.forms.Allow(httpx.ClientIP(r)) {
			s.problem(w, r, prefsOf(r), http.StatusTooManyRequests, "common.error.too_many", "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		h(w, r)
	}
}

func (s *screens) notFound(w http.ResponseWriter, r *http.Request) {
	s.problem(w, r, prefsOf(r), http.StatusNotFound, "cashier.error.not_found", "")
}
