// Package authpages serves the broker's identity screens that cTrader opens
// (spec §8.1): login and signup at one URL (/auth/login, `firstLogin=true`
// shows signup), password reset by e-mail (/auth/reset), and trading-account
// creation (/account/create). Successful login and signup end with a
// redirect to the configured success URL carrying the one-time login token
// as `token`, which the app hands to cTrader for /oauth2/onetime/authorize.
//
// The `lang`, `theme`, `source`, `partnerId`, UTM and `gclid` parameters
// travel through every form and link as hidden fields (no cookies needed,
// so the screens work in third-party iframes); signup stores them on the
// user for attribution. Every state-changing form is protected by
// http.CrossOriginProtection and rate limited per client address; failed
// logins also count towards the per-user lockout in the database.
package authpages

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/ratelimit"
	"github.com/opencashier/cashier/internal/web"
)

//go:embed pages/*.html
var pageFS embed.FS

// Options configures the screens.
type Options struct {
	// SuccessURL is the success URL Spotware builds into the app
	// (required); login and signup redirect there with `token`.
	SuccessURL string
	// CloseURL is where the X control leads; default SuccessURL.
	CloseURL string
	// PublicURL is the broker CRM's public base URL, e.g.
	// https://crm.broker.example (required): reset links in e-mails are
	// built on it, never on the request's Host header.
	PublicURL string
	// Environments offered when opening a trading account; default demo
	// and live. Empty entries are ignored.
	Environments []identity.Environment
	// Currencies offered when opening a trading account; default USD, EUR.
	Currencies []string
	// Mailer sends password-reset mail (required).
	Mailer mail.Mailer
	// FormEvery and FormBurst limit login, signup, reset and account
	// creation posts per client address. Defaults: 3s and 10.
	FormEvery time.Duration
	FormBurst int
	// ResetEvery and ResetBurst limit reset mails per e-mail address.
	// Defaults: 1m and 3.
	ResetEvery time.Duration
	ResetBurst int
	Clock      clock.Clock  // default system clock
	Logger     *slog.Logger // default slog.Default()
}

// Pages serves the identity screens.
type Pages struct {
	svc      *identity.Service
	r        *web.Renderer
	opt      Options
	success  *url.URL
	public   *url.URL
	forms    *ratelimit.Limiter
	resets   *ratelimit.Limiter
	log      *slog.Logger
	handler  http.Handler
	resetTTL time.Duration
}

// New returns the screens. It adds its page templates to r. It returns an
// errs.Invalid error for a missing or malformed SuccessURL or PublicURL, a
// missing mailer, or an unknown currency or environment.
func New(svc *identity.Service, r *web.Renderer, opt Options) (*Pages, error) {
	const op = "authpages.New"
	success, err := url.Parse(opt.SuccessURL)
	if err != nil || opt.SuccessURL == "" || success.Scheme == "" || success.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "success URL %q must be an absolute URL", opt.SuccessURL)
	}
	public, err := url.Parse(strings.TrimRight(opt.PublicURL, "/"))
	if err != nil || opt.PublicURL == "" || public.Scheme == "" || public.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "public URL %q must be an absolute URL", opt.PublicURL)
	}
	if opt.Mailer == nil {
		return nil, errs.E(errs.Invalid, op, "a mailer is required for password reset")
	}
	if opt.CloseURL == "" {
		opt.CloseURL = opt.SuccessURL
	}
	if len(opt.Environments) == 0 {
		opt.Environments = []identity.Environment{identity.Demo, identity.Live}
	}
	for _, e := range opt.Environments {
		if e != identity.Demo && e != identity.Live {
			return nil, errs.Ef(errs.Invalid, op, "environment %q is neither demo nor live", e)
		}
	}
	if len(opt.Currencies) == 0 {
		opt.Currencies = []string{"USD", "EUR"}
	}
	for i, c := range opt.Currencies {
		opt.Currencies[i] = strings.ToUpper(strings.TrimSpace(c))
		if len(opt.Currencies[i]) < 3 {
			return nil, errs.Ef(errs.Invalid, op, "currency %q is not a currency code", c)
		}
	}
	if opt.FormEvery <= 0 {
		opt.FormEvery = 3 * time.Second
	}
	if opt.FormBurst <= 0 {
		opt.FormBurst = 10
	}
	if opt.ResetEvery <= 0 {
		opt.ResetEvery = time.Minute
	}
	if opt.ResetBurst <= 0 {
		opt.ResetBurst = 3
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := r.AddPages(pageFS, "pages/*.html"); err != nil {
		return nil, err
	}
	p := &Pages{svc: svc, r: r, opt: opt, success: success, public: public, log: opt.Logger,
		forms:    ratelimit.New(opt.FormEvery, opt.FormBurst, opt.Clock),
		resets:   ratelimit.New(opt.ResetEvery, opt.ResetBurst, opt.Clock),
		resetTTL: svc.Config().ResetTokenTTL}
	mux := http.NewServeMux()
	csrf := http.NewCrossOriginProtection()
	post := func(h http.HandlerFunc) http.Handler { return csrf.Handler(p.limited(h)) }
	mux.HandleFunc("GET /auth/login", p.loginPage)
	mux.Handle("POST /auth/login", post(p.login))
	mux.Handle("POST /auth/signup", post(p.signup))
	mux.HandleFunc("GET /auth/reset", p.resetPage)
	mux.Handle("POST /auth/reset", post(p.reset))
	mux.HandleFunc("GET /auth/reset/confirm", p.resetConfirmPage)
	mux.Handle("POST /auth/reset/confirm", post(p.resetConfirm))
	mux.HandleFunc("GET /account/create", p.accountPage)
	mux.Handle("POST /account/create", post(p.createAccount))
	p.handler = mux
	return p, nil
}

// ServeHTTP serves /auth/login, /auth/signup, /auth/reset,
// /auth/reset/confirm and /account/create. Mount it at "/auth/" and
// "/account/".
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p.handler.ServeHTTP(w, r)
}

// limited answers 429 with the form's page when a client posts too often.
func (p *Pages) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.forms.Allow(httpx.ClientIP(r)) {
			ps := readParams(r)
			p.render(w, r, http.StatusTooManyRequests, "message", ps, "common.error.too_many", messageData{Title: "common.error.generic"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		h(w, r)
	}
}

// params are the query parameters cTrader appends to screens (§8.2) that
// must survive every step of a flow.
type params struct {
	Lang, Theme, Source, PartnerID                                string
	UTMSource, UTMMedium, UTMCampaign, UTMTerm, UTMContent, GCLID string
	FirstLogin                                                    bool
}

// field is a hidden form field.
type field struct{ Name, Value string }

var paramNames = []string{"lang", "theme", "source", "partnerId", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid"}

func readParams(r *http.Request) params {
	get := func(k string) string {
		v := strings.TrimSpace(r.FormValue(k))
		if len(v) > 200 {
			v = v[:200]
		}
		return v
	}
	return params{Lang: get("lang"), Theme: get("theme"), Source: get("source"), PartnerID: get("partnerId"),
		UTMSource: get("utm_source"), UTMMedium: get("utm_medium"), UTMCampaign: get("utm_campaign"),
		UTMTerm: get("utm_term"), UTMContent: get("utm_content"), GCLID: get("gclid"),
		FirstLogin: strings.EqualFold(get("firstLogin"), "true")}
}

func (ps params) list() []field {
	vals := []string{ps.Lang, ps.Theme, ps.Source, ps.PartnerID, ps.UTMSource, ps.UTMMedium, ps.UTMCampaign, ps.UTMTerm, ps.UTMContent, ps.GCLID}
	var out []field
	for i, v := range vals {
		if v != "" {
			out = append(out, field{paramNames[i], v})
		}
	}
	return out
}

// link returns path with the parameters (and extra key/value pairs) in its query.
func (ps params) link(path string, extra ...string) string {
	q := url.Values{}
	for _, f := range ps.list() {
		q.Set(f.Name, f.Value)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (ps params) attribution() identity.Attribution {
	return identity.Attribution{Source: ps.Source, PartnerID: ps.PartnerID, UTMSource: ps.UTMSource, UTMMedium: ps.UTMMedium,
		UTMCampaign: ps.UTMCampaign, UTMTerm: ps.UTMTerm, UTMContent: ps.UTMContent, GCLID: ps.GCLID}
}

// formData is what every form page gets.
type formData struct {
	Hidden       []field
	Email        string
	Remember     bool
	OpenAccount  bool
	Environment  string
	Currency     string
	Environments []identity.Environment
	Currencies   []string
	LoginURL     string
	SignupURL    string
	ResetURL     string
	Token        string // reset token or cashier session, as a hidden field
	SuccessLink  string
}

// messageData is the generic message page.
type messageData struct {
	Title    string // message id
	LinkURL  string
	LinkText string // message id
}

func (p *Pages) form(ps params) formData {
	return formData{Hidden: ps.list(), Environments: p.opt.Environments, Currencies: p.opt.Currencies,
		Environment: string(p.opt.Environments[0]), Currency: p.opt.Currencies[0],
		LoginURL:  ps.link("/auth/login", "firstLogin", "false"),
		SignupURL: ps.link("/auth/login", "firstLogin", "true"),
		ResetURL:  ps.link("/auth/reset")}
}

// render shows a page; errID, if set, is the error message id.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, page string, ps params, errID string, data any) {
	pg := web.Page{Lang: ps.Lang, Theme: ps.Theme, CloseURL: p.opt.CloseURL, Data: data}
	pg.Lang = p.r.Lang(ps.Lang)
	if errID != "" {
		pg.Error = web.T(pg.Lang).Get(errID)
	}
	switch page {
	case "reset", "reset_confirm", "signup":
		pg.BackURL = ps.link("/auth/login")
	}
	p.r.Render(w, status, page, pg)
}

// successRedirect sends the browser to the success URL, with extra query
// parameters (the login token).
func (p *Pages) successRedirect(w http.ResponseWriter, r *http.Request, kv ...string) {
	http.Redirect(w, r, p.successLink(kv...), http.StatusSeeOther)
}

func (p *Pages) successLink(kv ...string) string {
	u := *p.success
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func checked(r *http.Request, name string) bool {
	switch strings.ToLower(r.FormValue(name)) {
	case "on", "1", "true", "yes":
		return true
	}
	return false
}

// --- login and signup ---

func (p *Pages) loginPage(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	if ps.FirstLogin {
		d := p.form(ps)
		d.Remember = true
		p.render(w, r, http.StatusOK, "signup", ps, "", d)
		return
	}
	p.render(w, r, http.StatusOK, "login", ps, "", p.form(ps))
}

func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	d := p.form(ps)
	d.Email, d.Remember = strings.TrimSpace(r.FormValue("email")), checked(r, "remember")
	res, err := p.svc.Login(r.Context(), d.Email, r.FormValue("password"), d.Remember)
	if err != nil {
		status, id := p.loginError(r.Context(), err)
		p.render(w, r, status, "login", ps, id, d)
		return
	}
	p.log.InfoContext(r.Context(), "user logged in", "user", res.User.ID, "remember", d.Remember, "source", ps.Source)
	p.successRedirect(w, r, "token", res.LoginToken)
}

func (p *Pages) loginError(ctx context.Context, err error) (int, string) {
	switch errs.CodeOf(err) {
	case errs.Unauthorized:
		return http.StatusUnauthorized, "login.error.wrong"
	case errs.RateLimited:
		return http.StatusTooManyRequests, "common.error.too_many"
	case errs.Forbidden:
		return http.StatusForbidden, "login.error.disabled"
	case errs.Unavailable:
		p.log.WarnContext(ctx, "login: cTrader unavailable", "err", err)
		return http.StatusServiceUnavailable, "common.error.unavailable"
	default:
		p.log.ErrorContext(ctx, "login failed", "err", err)
		return http.StatusInternalServerError, "common.error.generic"
	}
}

func (p *Pages) signup(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	ps.FirstLogin = true
	d := p.form(ps)
	d.Email, d.Remember, d.OpenAccount = strings.TrimSpace(r.FormValue("email")), checked(r, "remember"), checked(r, "open_account")
	if env := r.FormValue("environment"); env != "" {
		d.Environment = env
	}
	if cur := r.FormValue("currency"); cur != "" {
		d.Currency = cur
	}
	password := r.FormValue("password")
	fail := func(status int, id string) { p.render(w, r, status, "signup", ps, id, d) }
	switch {
	case identity.CheckEmail(d.Email) != nil:
		fail(http.StatusBadRequest, "signup.error.email")
		return
	case identity.CheckPassword(password) != nil:
		fail(http.StatusBadRequest, "signup.error.password")
		return
	case password != r.FormValue("password_confirm"):
		fail(http.StatusBadRequest, "signup.error.mismatch")
		return
	}
	in := identity.SignUp{NewUser: identity.NewUser{Email: d.Email, Password: password, Language: p.r.Lang(ps.Lang),
		Attribution: ps.attribution()}, Remember: d.Remember}
	if d.OpenAccount {
		if !slices.Contains(p.opt.Environments, identity.Environment(d.Environment)) || !slices.Contains(p.opt.Currencies, d.Currency) {
			fail(http.StatusBadRequest, "common.error.invalid")
			return
		}
		in.Account = &identity.AccountRequest{Environment: identity.Environment(d.Environment), Currency: d.Currency}
	}
	res, err := p.svc.SignUp(r.Context(), in)
	if err != nil {
		switch errs.CodeOf(err) {
		case errs.Conflict:
			fail(http.StatusConflict, "signup.error.taken")
		case errs.Invalid:
			fail(http.StatusBadRequest, "common.error.invalid")
		case errs.Unavailable:
			p.log.WarnContext(r.Context(), "signup: cTID not created", "err", err)
			fail(http.StatusServiceUnavailable, "signup.error.provision")
		default:
			if res.User.ID != "" {
				p.log.ErrorContext(r.Context(), "signup: cTID not created", "user", res.User.ID, "err", err)
				fail(http.StatusBadGateway, "signup.error.provision")
				return
			}
			p.log.ErrorContext(r.Context(), "signup failed", "err", err)
			fail(http.StatusInternalServerError, "common.error.generic")
		}
		return
	}
	p.log.InfoContext(r.Context(), "user signed up", "user", res.User.ID, "ctid", res.User.CTIDUserID, "partner", ps.PartnerID,
		"source", ps.Source, "account", res.Account != nil)
	if res.AccountErr != nil {
		// Signed up, but the account could not be opened: say so before
		// the app closes the view.
		c := p.form(ps)
		c.SuccessLink = p.successLink("token", res.LoginToken)
		p.render(w, r, http.StatusOK, "continue", ps, "", c)
		return
	}
	p.successRedirect(w, r, "token", res.LoginToken)
}

// --- password reset ---

func (p *Pages) resetPage(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	p.render(w, r, http.StatusOK, "reset", ps, "", p.form(ps))
}

func (p *Pages) reset(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	d := p.form(ps)
	d.Email = strings.TrimSpace(r.FormValue("email"))
	if identity.CheckEmail(d.Email) != nil {
		p.render(w, r, http.StatusBadRequest, "reset", ps, "signup.error.email", d)
		return
	}
	if !p.resets.Allow(strings.ToLower(d.Email)) {
		p.render(w, r, http.StatusTooManyRequests, "reset", ps, "common.error.too_many", d)
		return
	}
	minutes := int(p.resetTTL / time.Minute)
	pr, err := p.svc.RequestPasswordReset(r.Context(), d.Email)
	switch {
	case err == nil:
		lang := web.ResolveLang(pr.User.Language, p.r.DefaultLang())
		link := p.public.String() + params{Lang: lang, Theme: ps.Theme, Source: ps.Source}.link("/auth/reset/confirm", "token", pr.Token)
		tr := web.T(lang)
		msg := mail.Message{To: pr.User.Email, Subject: tr.Get("reset.mail.subject"),
			Text: tr.Get("reset.mail.body", "Brand", p.r.Brand(), "Minutes", minutes, "Link", link)}
		if err := p.opt.Mailer.Send(r.Context(), msg); err != nil {
			// The page says the same either way, so that it does not
			// reveal which addresses have accounts.
			p.log.ErrorContext(r.Context(), "password reset mail not sent", "user", pr.User.ID, "err", err)
		}
	case errs.Is(err, errs.NotFound), errs.Is(err, errs.Forbidden):
	default:
		p.log.ErrorContext(r.Context(), "password reset failed", "err", err)
		p.render(w, r, http.StatusInternalServerError, "reset", ps, "common.error.generic", d)
		return
	}
	pg := web.Page{Lang: p.r.Lang(ps.Lang), Theme: ps.Theme, CloseURL: p.opt.CloseURL, BackURL: ps.link("/auth/login"),
		Data: messageData{Title: "reset.title", LinkURL: ps.link("/auth/login"), LinkText: "reset.to_login"}}
	pg.Notice = web.T(pg.Lang).Get("reset.sent", "Minutes", minutes)
	p.r.Render(w, http.StatusOK, "message", pg)
}

func (p *Pages) resetConfirmPage(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	tok := r.FormValue("token")
	if _, err := p.svc.CheckResetToken(r.Context(), tok); err != nil {
		p.resetLinkError(w, r, ps, err)
		return
	}
	d := p.form(ps)
	d.Token = tok
	p.render(w, r, http.StatusOK, "reset_confirm", ps, "", d)
}

func (p *Pages) resetLinkError(w http.ResponseWriter, r *http.Request, ps params, err error) {
	status, id := http.StatusNotFound, "reset.error.link"
	switch errs.CodeOf(err) {
	case errs.Expired:
		status, id = http.StatusGone, "reset.error.expired"
	case errs.Invalid, errs.NotFound:
	default:
		p.log.ErrorContext(r.Context(), "password reset link check failed", "err", err)
		status, id = http.StatusInternalServerError, "common.error.generic"
	}
	p.render(w, r, status, "message", ps, id, messageData{Title: "reset.title", LinkURL: ps.link("/auth/reset"), LinkText: "reset.submit"})
}

func (p *Pages) resetConfirm(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	d := p.form(ps)
	d.Token = r.FormValue("token")
	password := r.FormValue("password")
	switch {
	case identity.CheckPassword(password) != nil:
		p.render(w, r, http.StatusBadRequest, "reset_confirm", ps, "signup.error.password", d)
		return
	case password != r.FormValue("password_confirm"):
		p.render(w, r, http.StatusBadRequest, "reset_confirm", ps, "signup.error.mismatch", d)
		return
	}
	u, err := p.svc.ResetPassword(r.Context(), d.Token, password)
	if err != nil {
		p.resetLinkError(w, r, ps, err)
		return
	}
	p.log.InfoContext(r.Context(), "password reset", "user", u.ID)
	pg := web.Page{Lang: p.r.Lang(ps.Lang), Theme: ps.Theme, CloseURL: p.opt.CloseURL,
		Data: messageData{Title: "reset.new.title", LinkURL: ps.link("/auth/login"), LinkText: "login.submit"}}
	pg.Notice = web.T(pg.Lang).Get("reset.done")
	p.r.Render(w, http.StatusOK, "message", pg)
}

// --- account creation ---

// accountPage opens the screen from cTrader's `token` (consumed here and
// replaced by a cashier session that travels as a hidden field).
func (p *Pages) accountPage(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	sess, err := p.svc.OpenInApp(r.Context(), r.FormValue("token"), 0)
	if err != nil {
		p.sessionError(w, r, ps, err)
		return
	}
	d := p.form(ps)
	d.Token = sess.Token
	p.render(w, r, http.StatusOK, "account", ps, "", d)
}

func (p *Pages) sessionError(w http.ResponseWriter, r *http.Request, ps params, err error) {
	status := http.StatusGone
	switch errs.CodeOf(err) {
	case errs.Invalid, errs.NotFound, errs.Expired:
	case errs.Forbidden:
		status = http.StatusForbidden
	case errs.Unavailable:
		p.render(w, r, http.StatusServiceUnavailable, "message", ps, "common.error.unavailable", messageData{Title: "account.title"})
		return
	default:
		p.log.ErrorContext(r.Context(), "account screen: session failed", "err", err)
		status = http.StatusInternalServerError
	}
	p.render(w, r, status, "message", ps, "account.error.session", messageData{Title: "account.title"})
}

func (p *Pages) createAccount(w http.ResponseWriter, r *http.Request) {
	ps := readParams(r)
	d := p.form(ps)
	d.Token, d.Environment, d.Currency = r.FormValue("session"), r.FormValue("environment"), r.FormValue("currency")
	sess, err := p.svc.Session(r.Context(), d.Token)
	if err != nil {
		p.sessionError(w, r, ps, err)
		return
	}
	if !slices.Contains(p.opt.Environments, identity.Environment(d.Environment)) || !slices.Contains(p.opt.Currencies, d.Currency) {
		p.render(w, r, http.StatusBadRequest, "account", ps, "common.error.invalid", d)
		return
	}
	a, err := p.svc.OpenTradingAccount(r.Context(), sess.UserID,
		identity.AccountRequest{Environment: identity.Environment(d.Environment), Currency: d.Currency})
	if err != nil {
		p.log.WarnContext(r.Context(), "trading account not opened", "user", sess.UserID, "err", err)
		p.render(w, r, http.StatusBadGateway, "account", ps, "account.error.failed", d)
		return
	}
	if err := p.svc.CloseSession(r.Context(), d.Token); err != nil {
		p.log.WarnContext(r.Context(), "account screen: session not closed", "err", err)
	}
	p.log.InfoContext(r.Context(), "trading account opened", "user", sess.UserID, "login", a.Login, "environment", a.Environment)
	p.successRedirect(w, r)
}
