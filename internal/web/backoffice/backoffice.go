// Package backoffice serves the back office: the server-rendered screens
// a broker's finance, compliance and support staff work in, mounted under
// /backoffice/.
//
// Staff sign in with e-mail and password, then a TOTP code (the first
// login enrols an authenticator: the page shows the secret as a QR code
// and as text). The session lives in a cookie (HttpOnly, SameSite=Strict,
// Path=/backoffice, Secure unless the request is plain HTTP on a loopback
// address); every form carries the session's CSRF token, which is checked,
// and every POST also passes http.CrossOriginProtection. An expired
// session sends the browser back to the login page with a message.
//
// Every page and action checks a permission through the Staff port and
// answers 403 with a page that says what is missing; the navigation shows
// only what the member's role may open. The screens:
//
//   - work queues: withdrawals awaiting approval (approve, reject with a
//     reason; four-eyes above the configured amount), pushes in doubt with
//     their evidence (confirm applied or not applied), payments flagged for
//     review with the provider's events (accept or decline), deposits held
//     by a fraud rule (release or reject), other flagged transactions (clear
//     the flag with a note);
//   - users: search by e-mail or id, the user's accounts, KYC profile (set
//     level and country with a reason), holds and transactions;
//   - transactions: search with paging, CSV export, a detail page with
//     the whole timeline;
//   - the dashboard's charts; fraud rules and limits (each rule explained;
//     editable with PermRulesEdit); reconciliation runs and cases; the
//     audit trail's search and chain check; staff management.
//
// The pages need no JavaScript and load nothing from other origins: their
// CSS is inline in the head and allowed by its hash (the house CSP,
// script-src 'self'); QR codes and charts are data: images.
package backoffice

import (
	"crypto/rand"
	"embed"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/ratelimit"
	"github.com/opencashier/cashier/internal/web"
)

//go:embed pages/*.html
var pageFS embed.FS

//go:embed style/backoffice.css
var backofficeCSS []byte

// Deps are the services behind the screens. Staff and Renderer are
// required; a screen whose service is nil is left out (its routes answer
// 404 and the navigation does not show it).
type Deps struct {
	Staff      Staff
	Renderer   *web.Renderer
	Funding    Funding
	Pushes     Pushes
	Payments   Payments
	Users      Users
	Compliance Compliance
	Reports    Reports
	Reconcile  Reconcile
	Audit      Audit
}

// Options configure the screens.
type Options struct {
	// Prefix is where the screens are mounted (default "/backoffice");
	// mount the handler at Prefix+"/".
	Prefix string
	// Key signs the CSRF tokens of the login forms (before there is a
	// session): 32 bytes, the same on every replica. Empty: a random key
	// per process.
	Key []byte
	// HSTS adds Strict-Transport-Security.
	HSTS bool
	// PageSize is the number of rows of a result page (default 50).
	PageSize int
	// LoginEvery and LoginBurst limit login and code posts per client
	// address (defaults 2 s and 10).
	LoginEvery time.Duration
	LoginBurst int
	Clock      clock.Clock  // default clock.System
	Logger     *slog.Logger // default slog.Default()
}

// server is the handler.
type server struct {
	d       Deps
	opt     Options
	r       *web.Renderer
	logins  *ratelimit.Limiter
	log     *slog.Logger
	style   string
	handler http.Handler
}

// New returns the back office as one handler, to mount at
// Options.Prefix+"/". It adds its pages to the renderer. It returns an
// errs.Invalid error without Staff or the renderer, for a prefix that is
// not a plain absolute path, or for a key that is not 32 bytes.
func New(d Deps, opt Options) (http.Handler, error) {
	const op = "backoffice.New"
	if d.Staff == nil || d.Renderer == nil {
		return nil, errs.E(errs.Invalid, op, "the staff service and the renderer are required")
	}
	if opt.Prefix == "" {
		opt.Prefix = "/backoffice"
	}
	opt.Prefix = "/" + strings.Trim(opt.Prefix, "/")
	if opt.Prefix == "/" || strings.ContainsAny(opt.Prefix, "?#{} ") {
		return nil, errs.Ef(errs.Invalid, op, "prefix %q must be a plain absolute path", opt.Prefix)
	}
	if len(opt.Key) == 0 {
		opt.Key = make([]byte, 32)
		if _, err := rand.Read(opt.Key); err != nil {
			return nil, errs.Wrap(op, err)
		}
	}
	if len(opt.Key) != 32 {
		return nil, errs.E(errs.Invalid, op, "the key must be 32 bytes")
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 50
	}
	if opt.LoginEvery <= 0 {
		opt.LoginEvery = 2 * time.Second
	}
	if opt.LoginBurst <= 0 {
		opt.LoginBurst = 10
	}
	if opt.Clock == nil {
		opt.Clock = clock.System{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	style, err := d.Renderer.AddPagesWithCSS(pageFS, "pages/*.html", backofficeCSS)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	s := &server{d: d, opt: opt, r: d.Renderer, logins: ratelimit.New(opt.LoginEvery, opt.LoginBurst, opt.Clock),
		log: opt.Logger, style: style}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the screens; nothing they answer is cached.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	s.handler.ServeHTTP(w, r)
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.opt.Prefix
	csrf := http.NewCrossOriginProtection()
	post := func(h http.Handler) http.Handler {
		return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			h.ServeHTTP(w, r)
		}))
	}
	// Signing in and out.
	mux.HandleFunc("GET "+p+"/login", s.loginPage)
	mux.Handle("POST "+p+"/login", post(http.HandlerFunc(s.loginPost)))
	mux.HandleFunc("GET "+p+"/login/totp", s.totpPage)
	mux.Handle("POST "+p+"/login/totp", post(http.HandlerFunc(s.totpPost)))
	mux.Handle("POST "+p+"/logout", post(s.member("", s.logout)))

	mux.Handle("GET "+p+"/{$}", s.member(PermView, s.home))

	// Work queues.
	if s.d.Funding != nil {
		mux.Handle("GET "+p+"/queues/withdrawals", s.member(PermView, s.withdrawals))
		mux.Handle("POST "+p+"/queues/withdrawals/{id}/approve", post(s.member(PermWithdrawalsDecide, s.approveWithdrawal)))
		mux.Handle("POST "+p+"/queues/withdrawals/{id}/reject", post(s.member(PermWithdrawalsDecide, s.rejectWithdrawal)))
		mux.Handle("GET "+p+"/queues/deposits", s.member(PermView, s.heldDeposits))
		mux.Handle("POST "+p+"/queues/deposits/{id}/release", post(s.member(PermHoldsDecide, s.releaseDeposit)))
		mux.Handle("POST "+p+"/queues/deposits/{id}/reject", post(s.member(PermHoldsDecide, s.rejectDeposit)))
		mux.Handle("GET "+p+"/queues/flagged", s.member(PermView, s.flagged))
		mux.Handle("POST "+p+"/queues/flagged/{id}/clear", post(s.member(PermPaymentsReview, s.clearFlag)))
		if s.d.Pushes != nil {
			mux.Handle("GET "+p+"/queues/pushes", s.member(PermView, s.pushes))
			mux.Handle("GET "+p+"/queues/pushes/{id}", s.member(PermView, s.pushDetail))
			mux.Handle("POST "+p+"/queues/pushes/{id}/resolve", post(s.member(PermPushesResolve, s.resolvePush)))
		}
		if s.d.Payments != nil {
			mux.Handle("GET "+p+"/queues/payments", s.member(PermView, s.reviews))
			mux.Handle("GET "+p+"/queues/payments/{id}", s.member(PermView, s.paymentDetail))
			mux.Handle("POST "+p+"/queues/payments/{id}/resolve", post(s.member(PermPaymentsReview, s.resolvePayment)))
		}
	}
	// Users.
	if s.d.Users != nil {
		mux.Handle("GET "+p+"/users", s.member(PermUsersView, s.users))
		mux.Handle("GET "+p+"/users/{id}", s.member(PermUsersView, s.user))
		if s.d.Compliance != nil {
			mux.Handle("POST "+p+"/users/{id}/kyc", post(s.member(PermKYCSet, s.setKYC)))
		}
	}
	// Transactions and the dashboard.
	if s.d.Reports != nil {
		mux.Handle("GET "+p+"/transactions", s.member(PermView, s.transactions))
		mux.Handle("GET "+p+"/transactions.csv", s.member(PermExport, s.transactionsCSV))
		mux.Handle("GET "+p+"/transactions/{id}", s.member(PermView, s.transaction))
		mux.Handle("GET "+p+"/dashboard", s.member(PermView, s.dashboard))
	}
	// Rules and limits.
	if s.d.Compliance != nil {
		mux.Handle("GET "+p+"/rules", s.member(PermView, s.rules))
		mux.Handle("POST "+p+"/rules/{id}", post(s.member(PermRulesEdit, s.setRule)))
		mux.Handle("POST "+p+"/limits", post(s.member(PermRulesEdit, s.setLimit)))
	}
	// Reconciliation.
	if s.d.Reconcile != nil {
		mux.Handle("GET "+p+"/reconcile", s.member(PermView, s.reconcile))
		mux.Handle("POST "+p+"/reconcile/run", post(s.member(PermReconcile, s.runReconcile)))
		mux.Handle("POST "+p+"/reconcile/cases/{id}/resolve", post(s.member(PermReconcile, s.resolveCase)))
	}
	// Audit.
	if s.d.Audit != nil {
		mux.Handle("GET "+p+"/audit", s.member(PermAuditView, s.audit))
		mux.Handle("POST "+p+"/audit/verify", post(s.member(PermAuditView, s.verifyAudit)))
	}
	// Staff.
	mux.Handle("GET "+p+"/staff", s.member(PermStaffManage, s.staffPage))
	mux.Handle("POST "+p+"/staff", post(s.member(PermStaffManage, s.addStaff)))
	mux.Handle("POST "+p+"/staff/{id}/role", post(s.member(PermStaffManage, s.setStaffRole)))
	mux.Handle("POST "+p+"/staff/{id}/disable", post(s.member(PermStaffManage, s.disableStaff)))
	mux.Handle("POST "+p+"/staff/{id}/enable", post(s.member(PermStaffManage, s.enableStaff)))
	mux.Handle("POST "+p+"/staff/{id}/reset-totp", post(s.member(PermStaffManage, s.resetStaffTOTP)))

	mux.HandleFunc(p+"/", s.notFound)
	// The screens' own CSP, set last: it replaces one a server-wide
	// wrapper may have set, so the browser sees one policy, with the hash.
	sec := httpx.SecurityHeaders(httpx.SecurityOptions{HSTS: s.opt.HSTS, InlineStyles: []string{s.style}})
	return sec(mux)
}
