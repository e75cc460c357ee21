// Package adminapi serves the back office's JSON API under /api/admin/v1/,
// over the same ports as the screens (internal/web/backoffice) and with
// the same permission checks.
//
// Staff sign in with two calls: POST /login with e-mail and password
// returns a pending token (and, at a member's first login, the TOTP secret
// to enrol); POST /login/totp with the pending token and the current code
// returns a session token. Every other call carries it as
// "Authorization: Bearer <token>". It is a staff session like the screens'
// (idle and absolute expiry, ended by POST /logout, by disabling the member
// or resetting their TOTP); the API never reads the screens' cookie, so a
// browser cannot be tricked into calling it (no CSRF). Errors are RFC 9457
// problem+json: 401 without a valid session (WWW-Authenticate: Bearer),
// 403 naming the missing permission, 400/404/409/422 with the service's
// message. Amounts are exact JSON numbers with their currency code;
// instants are RFC 3339 in UTC. docs/back-office.md describes every call.
package adminapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/ratelimit"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// Prefix is where the API lives.
const Prefix = "/api/admin/v1"

// MaxBody bounds request bodies.
const MaxBody = 16 << 10

// Options configure the API.
type Options struct {
	// LoginEvery and LoginBurst limit the login calls per client address
	// (defaults 2 s and 10).
	LoginEvery time.Duration
	LoginBurst int
	Clock      clock.Clock  // default clock.System
	Logger     *slog.Logger // default slog.Default()
}

type api struct {
	d      bo.Deps
	opt    Options
	logins *ratelimit.Limiter
	log    *slog.Logger
}

// New returns the API as one handler to mount at Prefix+"/". The services
// are those of the screens (Renderer is not needed); a call whose service
// is nil answers 404. It returns errs.Invalid without the staff service.
func New(d bo.Deps, opt Options) (http.Handler, error) {
	if d.Staff == nil {
		return nil, errs.E(errs.Invalid, "adminapi.New", "the staff service is required")
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
	a := &api{d: d, opt: opt, logins: ratelimit.New(opt.LoginEvery, opt.LoginBurst, opt.Clock), log: opt.Logger}
	return httpx.NoStore(a.routes()), nil
}

func (a *api) routes() http.Handler {
	mux := http.NewServeMux()
	p := Prefix
	mux.HandleFunc("POST "+p+"/login", a.login)
	mux.HandleFunc("POST "+p+"/login/totp", a.loginTOTP)
	mux.Handle("POST "+p+"/logout", a.auth("", a.logout))
	mux.Handle("GET "+p+"/me", a.auth("", a.me))
	if a.d.Funding != nil {
		mux.Handle("GET "+p+"/queues", a.auth(bo.PermView, a.queues))
		mux.Handle("POST "+p+"/withdrawals/{id}/approve", a.auth(bo.PermWithdrawalsDecide, a.approve))
		mux.Handle("POST "+p+"/withdrawals/{id}/reject", a.auth(bo.PermWithdrawalsDecide, a.reject))
		mux.Handle("POST "+p+"/deposits/{id}/release", a.auth(bo.PermHoldsDecide, a.release))
		mux.Handle("POST "+p+"/deposits/{id}/reject", a.auth(bo.PermHoldsDecide, a.rejectDeposit))
	}
	if a.d.Pushes != nil {
		mux.Handle("POST "+p+"/pushes/{id}/resolve", a.auth(bo.PermPushesResolve, a.resolvePush))
	}
	if a.d.Payments != nil {
		mux.Handle("POST "+p+"/payments/{id}/resolve", a.auth(bo.PermPaymentsReview, a.resolvePayment))
	}
	if a.d.Reports != nil {
		mux.Handle("GET "+p+"/transactions", a.auth(bo.PermView, a.transactions))
		mux.Handle("GET "+p+"/transactions/{id}", a.auth(bo.PermView, a.transaction))
		mux.Handle("GET "+p+"/dashboard", a.auth(bo.PermView, a.dashboard))
	}
	if a.d.Compliance != nil {
		mux.Handle("GET "+p+"/users/{id}/kyc", a.auth(bo.PermUsersView, a.kyc))
		mux.Handle("PUT "+p+"/users/{id}/kyc", a.auth(bo.PermKYCSet, a.setKYC))
	}
	if a.d.Reconcile != nil {
		mux.Handle("GET "+p+"/reconcile/cases", a.auth(bo.PermView, a.cases))
		mux.Handle("POST "+p+"/reconcile/cases/{id}/resolve", a.auth(bo.PermReconcile, a.resolveCase))
	}
	if a.d.Audit != nil {
		mux.Handle("GET "+p+"/audit", a.auth(bo.PermAuditView, a.audit))
		mux.Handle("POST "+p+"/audit/verify", a.auth(bo.PermAuditView, a.verify))
	}
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteProblem(w, r, errs.E(errs.NotFound, "adminapi", "no such endpoint"))
	})
	return mux
}

type handler func(w http.ResponseWriter, r *http.Request, s bo.Session)

// auth runs h for a valid bearer session whose role has perm ("" for any
// member): 401 otherwise, or 403 naming the permission.
func (a *api) auth(perm bo.Permission, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			a.unauthorized(w, r, "send the session token as Authorization: Bearer <token>; get one from POST "+Prefix+"/login")
			return
		}
		s, err := a.d.Staff.Session(r.Context(), strings.TrimSpace(token))
		if err != nil {
			switch errs.CodeOf(err) {
			case errs.Unauthorized, errs.NotFound:
				a.unauthorized(w, r, "the session token is not valid (signed out, or the member was disabled); sign in again")
			case errs.Expired:
				a.unauthorized(w, r, "the session expired; sign in again")
			default:
				httpx.WriteProblem(w, r, err)
			}
			return
		}
		if perm != "" {
			if err := a.d.Staff.Authorize(s, perm); err != nil {
				if errs.Is(err, errs.Forbidden) {
					err = errs.Ef(errs.Forbidden, "adminapi", "the role %s lacks the permission %q", s.Member.Role, perm)
				}
				httpx.WriteProblem(w, r, err)
				return
			}
		}
		h(w, r, s)
	})
}

func (a *api) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="back office"`)
	httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "adminapi", msg))
}

func actor(s bo.Session) string { return "staff:" + s.Member.ID }

func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := httpx.DecodeJSON(w, r, dst, httpx.DecodeOptions{MaxBytes: MaxBody}); err != nil {
		httpx.WriteProblem(w, r, err)
		return false
	}
	return true
}

// --- wire types ---

// Money is an exact amount and its currency.
type Money struct {
	Amount   json.Number `json:"amount"`
	Currency string      `json:"currency"`
}

func moneyOf(a money.Amount) *Money {
	if a.Currency().Code == "" {
		return nil
	}
	return &Money{Amount: a.JSONNumber(), Currency: a.Currency().Code}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// MemberJSON is a staff member.
type MemberJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

func memberJSON(m bo.Member) MemberJSON {
	return MemberJSON{ID: m.ID, Email: m.Email, Name: m.Name, Role: m.Role}
}

// --- login ---

// PendingJSON is the answer to the password step.
type PendingJSON struct {
	PendingToken string         `json:"pendingToken"`
	ExpiresAt    string         `json:"expiresAt"`
	Enrolment    *EnrolmentJSON `json:"enrolment,omitempty"`
}

// EnrolmentJSON is the TOTP secret to add to an authenticator at the
// first login.
type EnrolmentJSON struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauthUri"`
}

// SessionJSON is a signed-in member.
type SessionJSON struct {
	Token     string     `json:"token"`
	ExpiresAt string     `json:"expiresAt"`
	Member    MemberJSON `json:"member"`
}

func (a *api) limited(w http.ResponseWriter, r *http.Request) bool {
	if !a.logins.Allow(httpx.ClientIP(r)) {
		w.Header().Set("Retry-After", strconv.Itoa(int(a.opt.LoginEvery/time.Second)+1))
		httpx.WriteProblem(w, r, errs.E(errs.RateLimited, "adminapi", "too many login attempts from this address; wait and try again"))
		return true
	}
	return false
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	if a.limited(w, r) {
		return
	}
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !decode(w, r, &body) {
		return
	}
	pl, err := a.d.Staff.BeginLogin(r.Context(), strings.TrimSpace(body.Email), body.Password)
	if err != nil {
		if errs.Is(err, errs.Unauthorized) || errs.Is(err, errs.NotFound) {
			err = errs.E(errs.Unauthorized, "adminapi.login", "wrong e-mail address or password")
		}
		httpx.WriteProblem(w, r, err)
		return
	}
	out := PendingJSON{PendingToken: pl.Token, ExpiresAt: stamp(pl.ExpiresAt)}
	if pl.Enrol != nil {
		out.Enrolment = &EnrolmentJSON{Secret: pl.Enrol.Secret, OTPAuthURI: pl.Enrol.URI}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *api) loginTOTP(w http.ResponseWriter, r *http.Request) {
	if a.limited(w, r) {
		return
	}
	var body struct {
		PendingToken string `json:"pendingToken"`
		Code         string `json:"code"`
	}
	if !decode(w, r, &body) {
		return
	}
	s, err := a.d.Staff.CompleteLogin(r.Context(), body.PendingToken, body.Code)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, SessionJSON{Token: s.Token, ExpiresAt: stamp(s.ExpiresAt), Member: memberJSON(s.Member)})
}

func (a *api) logout(w http.ResponseWriter, r *http.Request, s bo.Session) {
	if err := a.d.Staff.Logout(r.Context(), s.Token); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// MeJSON is the signed-in member and what their role may do.
type MeJSON struct {
	Member      MemberJSON `json:"member"`
	ExpiresAt   string     `json:"expiresAt"`
	Permissions []string   `json:"permissions"`
}

// allPermissions are the permissions /me reports on.
var allPermissions = []bo.Permission{bo.PermView, bo.PermExport, bo.PermUsersView, bo.PermWithdrawalsDecide, bo.PermPushesResolve,
	bo.PermPaymentsReview, bo.PermHoldsDecide, bo.PermKYCSet, bo.PermRulesEdit, bo.PermReconcile, bo.PermAuditView, bo.PermStaffManage}

func (a *api) me(w http.ResponseWriter, r *http.Request, s bo.Session) {
	out := MeJSON{Member: memberJSON(s.Member), ExpiresAt: stamp(s.ExpiresAt), Permissions: []string{}}
	for _, p := range allPermissions {
		if a.d.Staff.Authorize(s, p) == nil {
			out.Permissions = append(out.Permissions, string(p))
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// --- queues ---

// TaskJSON is one item of a work queue.
type TaskJSON struct {
	Kind            string `json:"kind"`
	ID              string `json:"id"`
	PushID          string `json:"pushId,omitempty"`
	PaymentID       string `json:"paymentId,omitempty"`
	Flag            string `json:"flag,omitempty"`
	UserID          string `json:"userId,omitempty"`
	Email           string `json:"email,omitempty"`
	Login           int64  `json:"login"`
	MethodID        string `json:"methodId,omitempty"`
	Destination     string `json:"destination,omitempty"`
	Amount          *Money `json:"amount,omitempty"`
	Status          string `json:"status,omitempty"`
	Since           string `json:"since"`
	CreatedAt       string `json:"createdAt,omitempty"`
	HoldRule        string `json:"holdRule,omitempty"`
	HoldNote        string `json:"holdNote,omitempty"`
	FourEyes        bool   `json:"fourEyes"`
	FirstApprovedBy string `json:"firstApprovedBy,omitempty"`
}

// QueuesJSON are the work queues.
type QueuesJSON struct {
	Withdrawals    []TaskJSON `json:"withdrawals"`
	PushesInDoubt  []TaskJSON `json:"pushesInDoubt"`
	PaymentReviews []TaskJSON `json:"paymentReviews"`
	HeldDeposits   []TaskJSON `json:"heldDeposits"`
	Flagged        []TaskJSON `json:"flagged"`
}

func (a *api) queues(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	ts, err := a.d.Funding.Tasks(r.Context())
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := QueuesJSON{Withdrawals: []TaskJSON{}, PushesInDoubt: []TaskJSON{}, PaymentReviews: []TaskJSON{}, HeldDeposits: []TaskJSON{}, Flagged: []TaskJSON{}}
	for _, t := range ts {
		j := TaskJSON{Kind: t.Kind, ID: t.ID, PushID: t.PushID, PaymentID: t.PaymentID, Flag: t.Flag, UserID: t.UserID, Email: t.Email,
			Login: t.Login, MethodID: t.MethodID, Destination: t.Destination, Amount: moneyOf(t.Amount), Status: t.Status, Since: stamp(t.Since),
			CreatedAt: stamp(t.CreatedAt), HoldRule: t.HoldRule, HoldNote: t.HoldNote, FourEyes: t.FourEyes, FirstApprovedBy: t.FirstApprovedBy}
		switch {
		case t.Kind == bo.TaskApproval:
			out.Withdrawals = append(out.Withdrawals, j)
		case t.Kind == bo.TaskPushInDoubt:
			out.PushesInDoubt = append(out.PushesInDoubt, j)
		case t.Flag == bo.FlagPaymentReview:
			out.PaymentReviews = append(out.PaymentReviews, j)
		case t.Flag == bo.FlagReviewHold:
			out.HeldDeposits = append(out.HeldDeposits, j)
		default:
			out.Flagged = append(out.Flagged, j)
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// DecisionJSON is a deposit or withdrawal after a decision.
type DecisionJSON struct {
	ID                  string `json:"id"`
	Status              string `json:"status"`
	FirstApprovedBy     string `json:"firstApprovedBy,omitempty"`
	NeedsSecondApproval bool   `json:"needsSecondApproval"`
}

func (a *api) decided(w http.ResponseWriter, r *http.Request, d bo.Decision, err error) {
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, DecisionJSON{ID: d.ID, Status: d.Status, FirstApprovedBy: d.FirstApprovedBy, NeedsSecondApproval: d.NeedsSecondApproval})
}

// reasonBody reads {"reason": "…"} or {"note": "…"}: one required, at most
// 500 characters.
func reasonBody(w http.ResponseWriter, r *http.Request, field string) (string, bool) {
	body := map[string]string{}
	if !decode(w, r, &body) {
		return "", false
	}
	for k := range body {
		if k != field {
			httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, "adminapi", "unknown field %q", k))
			return "", false
		}
	}
	v := strings.TrimSpace(body[field])
	if v == "" || len([]rune(v)) > 500 {
		httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, "adminapi", "%q is required (at most 500 characters)", field))
		return "", false
	}
	return v, true
}

func (a *api) approve(w http.ResponseWriter, r *http.Request, s bo.Session) {
	if r.ContentLength > 0 {
		var empty struct{}
		if !decode(w, r, &empty) {
			return
		}
	}
	d, err := a.d.Funding.ApproveWithdrawal(r.Context(), r.PathValue("id"), actor(s))
	a.decided(w, r, d, err)
}

func (a *api) reject(w http.ResponseWriter, r *http.Request, s bo.Session) {
	reason, ok := reasonBody(w, r, "reason")
	if !ok {
		return
	}
	d, err := a.d.Funding.RejectWithdrawal(r.Context(), r.PathValue("id"), actor(s), reason)
	a.decided(w, r, d, err)
}

func (a *api) release(w http.ResponseWriter, r *http.Request, s bo.Session) {
	note, ok := reasonBody(w, r, "note")
	if !ok {
		return
	}
	d, err := a.d.Funding.ReleaseDeposit(r.Context(), r.PathValue("id"), actor(s), note)
	a.decided(w, r, d, err)
}

func (a *api) rejectDeposit(w http.ResponseWriter, r *http.Request, s bo.Session) {
	reason, ok := reasonBody(w, r, "reason")
	if !ok {
		return
	}
	d, err := a.d.Funding.RejectDeposit(r.Context(), r.PathValue("id"), actor(s), reason)
	a.decided(w, r, d, err)
}

func (a *api) resolvePush(w http.ResponseWriter, r *http.Request, s bo.Session) {
	var body struct {
		Applied *bool  `json:"applied"`
		Note    string `json:"note"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Applied == nil || strings.TrimSpace(body.Note) == "" {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", `"applied" (true or false) and a "note" are required`))
		return
	}
	p, err := a.d.Pushes.Resolve(r.Context(), r.PathValue("id"), *body.Applied, actor(s), strings.TrimSpace(body.Note))
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": p.ID, "state": string(p.State)})
}

func (a *api) resolvePayment(w http.ResponseWriter, r *http.Request, s bo.Session) {
	var body struct {
		Status string `json:"status"`
		Note   string `json:"note"`
	}
	if !decode(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.Note) == "" {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", `a "note" is required`))
		return
	}
	p, err := a.d.Payments.ResolveReview(r.Context(), r.PathValue("id"), payments.Status(body.Status), actor(s), strings.TrimSpace(body.Note))
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": p.ID, "status": string(p.Status)})
}

// --- transactions ---

// TxJSON is a deposit or withdrawal.
type TxJSON struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	UserID    string `json:"userId"`
	Email     string `json:"email,omitempty"`
	Login     int64  `json:"login"`
	MethodID  string `json:"methodId"`
	Provider  string `json:"provider,omitempty"`
	Status    string `json:"status"`
	Flag      string `json:"flag,omitempty"`
	Amount    *Money `json:"amount,omitempty"`
	Fee       *Money `json:"fee,omitempty"`
	Credit    *Money `json:"credit,omitempty"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt,omitempty"`
}

func txJSON(t bo.TxRow) TxJSON {
	return TxJSON{ID: t.ID, Kind: t.Kind, UserID: t.UserID, Email: t.Email, Login: t.Login, MethodID: t.MethodID, Provider: t.Provider,
		Status: t.State, Flag: t.Flag, Amount: moneyOf(t.Amount), Fee: moneyOf(t.Fee), Credit: moneyOf(t.Credit),
		CreatedAt: stamp(t.CreatedAt), UpdatedAt: stamp(t.UpdatedAt)}
}

// TxPageJSON is a page of search results; next is the cursor of the next
// page (absent on the last).
type TxPageJSON struct {
	Items []TxJSON `json:"items"`
	Next  string   `json:"next,omitempty"`
}

func (a *api) transactions(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	q := r.URL.Query()
	f, txID, err := bo.ParseTxFilter(q)
	if err == nil && txID != "" {
		err = errs.E(errs.Invalid, "adminapi", "q takes an e-mail address or user id here; get one transaction at "+Prefix+"/transactions/{id}")
	}
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", "limit must be between 1 and 500"))
			return
		}
		f.Limit = n
	}
	page, err := a.d.Reports.Search(r.Context(), f)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := TxPageJSON{Items: make([]TxJSON, 0, len(page.Rows)), Next: page.Next}
	for _, t := range page.Rows {
		out.Items = append(out.Items, txJSON(t))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// TimelineJSON is one step of a transaction's life.
type TimelineJSON struct {
	At     string `json:"at"`
	Source string `json:"source"`
	What   string `json:"what"`
	Detail string `json:"detail,omitempty"`
	Actor  string `json:"actor,omitempty"`
}

// TxDetailJSON is a transaction with its timeline.
type TxDetailJSON struct {
	Transaction TxJSON         `json:"transaction"`
	PaymentID   string         `json:"paymentId,omitempty"`
	PushIDs     []string       `json:"pushIds"`
	Timeline    []TimelineJSON `json:"timeline"`
}

func (a *api) transaction(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	t, err := a.d.Reports.Timeline(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := TxDetailJSON{Transaction: txJSON(t.Row), PaymentID: t.PaymentID, PushIDs: append([]string{}, t.PushIDs...), Timeline: []TimelineJSON{}}
	for _, e := range t.Timeline {
		out.Timeline = append(out.Timeline, TimelineJSON{At: stamp(e.At), Source: e.Source, What: e.What, Detail: e.Detail, Actor: e.Actor})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// --- dashboard ---

// DashboardJSON is the dashboard's numbers (the charts' series without
// their pictures).
type DashboardJSON struct {
	From    string       `json:"from"`
	To      string       `json:"to"`
	Figures []FigureJSON `json:"figures"`
	Charts  []ChartJSON  `json:"charts"`
}

// FigureJSON is a headline number.
type FigureJSON struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Value string `json:"value"`
}

// ChartJSON is one chart's numbers.
type ChartJSON struct {
	ID     string       `json:"id"`
	Title  string       `json:"title"`
	Series []SeriesJSON `json:"series"`
}

// SeriesJSON is one series of a chart; values are exact decimals or
// counts, as strings.
type SeriesJSON struct {
	Name   string      `json:"name"`
	Points []PointJSON `json:"points"`
}

// PointJSON is one value of a series.
type PointJSON struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

func (a *api) dashboard(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	q := r.URL.Query()
	today := a.opt.Clock.Now().UTC().Truncate(24 * time.Hour)
	from, to := today.AddDate(0, 0, -29), today.AddDate(0, 0, 1)
	for _, d := range []struct {
		name string
		into *time.Time
		end  bool
	}{{"from", &from, false}, {"to", &to, true}} {
		if v := q.Get(d.name); v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, "adminapi", "%s must be a date, YYYY-MM-DD", d.name))
				return
			}
			if d.end {
				t = t.AddDate(0, 0, 1)
			}
			*d.into = t
		}
	}
	if !from.Before(to) {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", "from must not be after to"))
		return
	}
	db, err := a.d.Reports.Dashboard(r.Context(), from, to)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := DashboardJSON{From: stamp(db.From), To: stamp(db.To), Figures: []FigureJSON{}, Charts: []ChartJSON{}}
	for _, f := range db.Figures {
		out.Figures = append(out.Figures, FigureJSON(f))
	}
	for _, c := range db.Charts {
		ch := ChartJSON{ID: c.ID, Title: c.Title, Series: []SeriesJSON{}}
		for _, s := range c.Series {
			sj := SeriesJSON{Name: s.Name, Points: []PointJSON{}}
			for _, p := range s.Points {
				sj.Points = append(sj.Points, PointJSON(p))
			}
			ch.Series = append(ch.Series, sj)
		}
		out.Charts = append(out.Charts, ch)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// --- KYC ---

// KYCJSON is a user's KYC profile.
type KYCJSON struct {
	UserID    string `json:"userId"`
	Level     int    `json:"level"`
	Country   string `json:"country"`
	Source    string `json:"source,omitempty"`
	Reference string `json:"reference,omitempty"`
	UpdatedBy string `json:"updatedBy,omitempty"`
	UpdatedAt string `json:"updatedAt,omitempty"`
	Stored    bool   `json:"stored"`
}

func (a *api) kyc(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	a.writeKYC(w, r, r.PathValue("id"))
}

func (a *api) writeKYC(w http.ResponseWriter, r *http.Request, userID string) {
	if a.d.Users != nil {
		if _, err := a.d.Users.UserByID(r.Context(), userID); err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
	}
	p, err := a.d.Compliance.Profile(r.Context(), userID)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, KYCJSON{UserID: p.UserID, Level: p.Level, Country: p.Country, Source: p.Source, Reference: p.Reference,
		UpdatedBy: p.UpdatedBy, UpdatedAt: stamp(p.UpdatedAt), Stored: p.Stored})
}

func (a *api) setKYC(w http.ResponseWriter, r *http.Request, s bo.Session) {
	var body struct {
		Level     *int   `json:"level"`
		Country   string `json:"country"`
		Reference string `json:"reference"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Level == nil || strings.TrimSpace(body.Reference) == "" {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", `"level", "country" and a "reference" (the reason or case) are required`))
		return
	}
	id := r.PathValue("id")
	if a.d.Users != nil {
		if _, err := a.d.Users.UserByID(r.Context(), id); err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
	}
	if err := a.d.Compliance.SetKYC(r.Context(), actor(s), id, bo.KYCUpdate{Level: *body.Level, Country: strings.ToUpper(strings.TrimSpace(body.Country)),
		Reference: strings.TrimSpace(body.Reference)}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	a.writeKYC(w, r, id)
}

// --- reconciliation ---

// CaseJSON is a reconciliation case.
type CaseJSON struct {
	ID         string          `json:"id"`
	RunID      string          `json:"runId"`
	Seen       int             `json:"seen"`
	Kind       string          `json:"kind"`
	Subject    string          `json:"subject"`
	Ref        string          `json:"ref,omitempty"`
	Expected   string          `json:"expected"`
	Actual     string          `json:"actual"`
	Evidence   json.RawMessage `json:"evidence,omitempty"`
	Status     string          `json:"status"`
	ResolvedBy string          `json:"resolvedBy,omitempty"`
	Note       string          `json:"note,omitempty"`
	OpenedAt   string          `json:"openedAt"`
	ResolvedAt string          `json:"resolvedAt,omitempty"`
}

func caseJSON(c bo.ReconCase) CaseJSON {
	out := CaseJSON{ID: c.ID, RunID: c.RunID, Seen: c.Seen, Kind: c.Kind, Subject: c.Subject, Ref: c.Ref, Expected: c.Expected, Actual: c.Actual,
		Status: c.Status, ResolvedBy: c.ResolvedBy, Note: c.Note, OpenedAt: stamp(c.OpenedAt), ResolvedAt: stamp(c.ResolvedAt)}
	if json.Valid(c.Evidence) {
		out.Evidence = json.RawMessage(c.Evidence)
	}
	return out
}

func (a *api) cases(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	open := true
	switch r.URL.Query().Get("status") {
	case "", "open":
	case "resolved":
		open = false
	default:
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", "status must be open or resolved"))
		return
	}
	cs, err := a.d.Reconcile.Cases(r.Context(), open, 500)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := make([]CaseJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, caseJSON(c))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"cases": out})
}

func (a *api) resolveCase(w http.ResponseWriter, r *http.Request, s bo.Session) {
	note, ok := reasonBody(w, r, "note")
	if !ok {
		return
	}
	c, err := a.d.Reconcile.Resolve(r.Context(), r.PathValue("id"), actor(s), note)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, caseJSON(c))
}

// --- audit ---

// AuditEntryJSON is one record of the trail.
type AuditEntryJSON struct {
	Seq     int64             `json:"seq"`
	At      string            `json:"at"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Subject string            `json:"subject,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"`
	Hash    string            `json:"hash"`
}

// AuditPageJSON is a page of the trail, newest first; nextBefore pages on.
type AuditPageJSON struct {
	Entries    []AuditEntryJSON `json:"entries"`
	NextBefore int64            `json:"nextBefore,omitempty"`
}

func (a *api) audit(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	q, err := bo.ParseAuditQuery(r.URL.Query())
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	q.Limit = 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteProblem(w, r, errs.E(errs.Invalid, "adminapi", "limit must be between 1 and 1000"))
			return
		}
		q.Limit = n
	}
	es, err := a.d.Audit.Search(r.Context(), q)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := AuditPageJSON{Entries: make([]AuditEntryJSON, 0, len(es))}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditEntryJSON{Seq: e.Seq, At: stamp(e.At), Actor: e.Actor, Action: e.Action, Subject: e.Subject, Detail: e.Detail, Hash: e.Hash})
	}
	if len(es) == q.Limit {
		out.NextBefore = es[len(es)-1].Seq
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// ProblemJSON is one thing wrong with the chain.
type ProblemJSON struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// VerifyJSON is the outcome of the chain check.
type VerifyJSON struct {
	OK           bool          `json:"ok"`
	Checked      int64         `json:"checked"`
	HeadSeq      int64         `json:"headSeq"`
	HeadHash     string        `json:"headHash"`
	Problems     []ProblemJSON `json:"problems"`
	MoreProblems int64         `json:"moreProblems"`
}

func (a *api) verify(w http.ResponseWriter, r *http.Request, _ bo.Session) {
	c, err := a.d.Audit.Verify(r.Context())
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := VerifyJSON{OK: c.OK(), Checked: c.Checked, HeadSeq: c.HeadSeq, HeadHash: c.HeadHash, Problems: []ProblemJSON{}, MoreProblems: c.MoreProblems}
	for _, p := range c.Problems {
		out.Problems = append(out.Problems, ProblemJSON(p))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
