package backoffice_test

// Hand-written fakes of the ports. They keep what they were asked to do in
// a shared log ("approve wd_1 by staff:stf_finance"), so tests check that
// an action reached the service with the right actor.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/push"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// actions is the shared log of what the fakes were asked to do.
type actions struct {
	mu  sync.Mutex
	log []string
}

func (a *actions) add(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log = append(a.log, fmt.Sprintf(format, args...))
}

func (a *actions) has(entry string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.log, entry)
}

func (a *actions) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.log)
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// --- staff ---

// roleMatrix is internal/staff's: which role has which permission.
var roleMatrix = map[string][]bo.Permission{
	"viewer":  {bo.PermView},
	"support": {bo.PermView, bo.PermUsersView},
	"finance": {bo.PermView, bo.PermUsersView, bo.PermExport, bo.PermWithdrawalsDecide, bo.PermPushesResolve,
		bo.PermPaymentsReview, bo.PermReconcile},
	"compliance": {bo.PermView, bo.PermUsersView, bo.PermKYCSet, bo.PermHoldsDecide, bo.PermRulesEdit, bo.PermAuditView},
	"admin": {bo.PermView, bo.PermExport, bo.PermUsersView, bo.PermWithdrawalsDecide, bo.PermPushesResolve,
		bo.PermPaymentsReview, bo.PermHoldsDecide, bo.PermKYCSet, bo.PermRulesEdit, bo.PermReconcile, bo.PermAuditView,
		bo.PermStaffManage},
}

type staffMember struct {
	bo.Member
	password string
	secret   string // the enrolled TOTP secret
}

type pendingLogin struct {
	memberID string
	enrol    string // the secret being enrolled
	expires  time.Time
}

type staffSession struct {
	memberID string
	csrf     string
	idleEnd  time.Time
}

// fakeStaff keeps staff in memory, with real TOTP codes (pquerna/otp) on
// the fake clock and sessions that expire after idle.
type fakeStaff struct {
	mu       sync.Mutex
	clk      *clock.Fake
	acts     *actions
	idle     time.Duration
	members  map[string]*staffMember
	pending  map[string]pendingLogin
	sessions map[string]staffSession
}

func newFakeStaff(clk *clock.Fake, acts *actions) *fakeStaff {
	return &fakeStaff{clk: clk, acts: acts, idle: 30 * time.Minute, members: map[string]*staffMember{},
		pending: map[string]pendingLogin{}, sessions: map[string]staffSession{}}
}

// add creates a member; enrolled members get a TOTP secret at once.
func (f *fakeStaff) add(id, email, name, role, password string, enrolled bool) *staffMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &staffMember{Member: bo.Member{ID: id, Email: email, Name: name, Role: role, Status: "active", CreatedAt: f.clk.Now()}, password: password}
	if enrolled {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: "OpenCashier", AccountName: email, Rand: rand.Reader})
		if err != nil {
			panic(err)
		}
		m.secret, m.TOTPEnrolled = key.Secret(), true
	}
	f.members[id] = m
	return m
}

// sessionFor opens a session for a member without the login screens.
func (f *fakeStaff) sessionFor(memberID string) bo.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := randomToken()
	f.sessions[tok] = staffSession{memberID: memberID, csrf: randomToken(), idleEnd: f.clk.Now().Add(f.idle)}
	return f.sessionLocked(tok)
}

func (f *fakeStaff) sessionLocked(tok string) bo.Session {
	s := f.sessions[tok]
	return bo.Session{Token: tok, CSRF: s.csrf, Member: f.members[s.memberID].Member, ExpiresAt: s.idleEnd}
}

func (f *fakeStaff) secretOf(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[id].secret
}

func (f *fakeStaff) BeginLogin(_ context.Context, email, password string) (bo.PendingLogin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if !strings.EqualFold(m.Email, email) || m.password != password {
			continue
		}
		if m.Status != "active" {
			return bo.PendingLogin{}, errs.E(errs.Forbidden, "fakeStaff.BeginLogin", "disabled")
		}
		tok := randomToken()
		p := pendingLogin{memberID: m.ID, expires: f.clk.Now().Add(5 * time.Minute)}
		out := bo.PendingLogin{Token: tok, ExpiresAt: p.expires}
		if !m.TOTPEnrolled {
			key, err := totp.Generate(totp.GenerateOpts{Issuer: "OpenCashier", AccountName: m.Email, Rand: rand.Reader})
			if err != nil {
				return bo.PendingLogin{}, err
			}
			p.enrol = key.Secret()
			out.Enrol = &bo.Enrolment{Secret: key.Secret(), URI: key.URL()}
		}
		f.pending[tok] = p
		return out, nil
	}
	return bo.PendingLogin{}, errs.E(errs.Unauthorized, "fakeStaff.BeginLogin", "wrong e-mail address or password")
}

func (f *fakeStaff) CompleteLogin(_ context.Context, token, code string) (bo.Session, error) {
	const op = "fakeStaff.CompleteLogin"
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[token]
	if !ok {
		return bo.Session{}, errs.E(errs.Unauthorized, op, "unknown login")
	}
	if f.clk.Now().After(p.expires) {
		delete(f.pending, token)
		return bo.Session{}, errs.E(errs.Expired, op, "the login expired")
	}
	m := f.members[p.memberID]
	secret := m.secret
	if p.enrol != "" {
		secret = p.enrol
	}
	good, err := totp.ValidateCustom(code, secret, f.clk.Now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil || !good {
		return bo.Session{}, errs.E(errs.Unauthorized, op, "wrong code")
	}
	delete(f.pending, token)
	if p.enrol != "" {
		m.secret, m.TOTPEnrolled = p.enrol, true
	}
	m.LastLoginAt = f.clk.Now()
	tok := randomToken()
	f.sessions[tok] = staffSession{memberID: m.ID, csrf: randomToken(), idleEnd: f.clk.Now().Add(f.idle)}
	f.acts.add("login %s", m.ID)
	return f.sessionLocked(tok), nil
}

func (f *fakeStaff) Session(_ context.Context, token string) (bo.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[token]
	if !ok {
		return bo.Session{}, errs.E(errs.Unauthorized, "fakeStaff.Session", "unknown session")
	}
	if !f.clk.Now().Before(s.idleEnd) {
		delete(f.sessions, token)
		return bo.Session{}, errs.E(errs.Expired, "fakeStaff.Session", "the session expired")
	}
	if f.members[s.memberID].Status != "active" {
		return bo.Session{}, errs.E(errs.Unauthorized, "fakeStaff.Session", "disabled")
	}
	s.idleEnd = f.clk.Now().Add(f.idle)
	f.sessions[token] = s
	return f.sessionLocked(token), nil
}

func (f *fakeStaff) Logout(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[token]; ok {
		f.acts.add("logout %s", s.memberID)
	}
	delete(f.sessions, token)
	return nil
}

func (f *fakeStaff) Authorize(s bo.Session, p bo.Permission) error {
	if slices.Contains(roleMatrix[s.Member.Role], p) {
		return nil
	}
	return errs.Ef(errs.Forbidden, "fakeStaff.Authorize", "role %s may not %s", s.Member.Role, p)
}

func (f *fakeStaff) Members(context.Context) ([]bo.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.Member
	for _, m := range f.members {
		out = append(out, m.Member)
	}
	slices.SortFunc(out, func(a, b bo.Member) int { return strings.Compare(a.Email, b.Email) })
	return out, nil
}

func (f *fakeStaff) AddMember(_ context.Context, n bo.NewMember) (bo.Member, error) {
	const op = "fakeStaff.AddMember"
	f.mu.Lock()
	for _, m := range f.members {
		if strings.EqualFold(m.Email, n.Email) {
			f.mu.Unlock()
			return bo.Member{}, errs.Ef(errs.Conflict, op, "%s is already a member", n.Email)
		}
	}
	f.mu.Unlock()
	if len(n.Password) < 12 {
		return bo.Member{}, errs.E(errs.Invalid, op, "the password needs at least 12 characters")
	}
	id := "stf_" + strconv.Itoa(len(f.members)+100)
	m := f.add(id, n.Email, n.Name, n.Role, n.Password, false)
	f.acts.add("add %s %s by %s", n.Email, n.Role, n.Actor)
	return m.Member, nil
}

func (f *fakeStaff) change(op, actor, id string, do func(m *staffMember)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[id]
	if !ok {
		return errs.Ef(errs.NotFound, "fakeStaff."+op, "no member %s", id)
	}
	do(m)
	f.acts.add("%s %s by %s", op, id, actor)
	return nil
}

func (f *fakeStaff) SetRole(_ context.Context, actor, id, role string) error {
	return f.change("role", actor, id, func(m *staffMember) { m.Role = role })
}

func (f *fakeStaff) Disable(_ context.Context, actor, id string) error {
	return f.change("disable", actor, id, func(m *staffMember) { m.Status = "disabled" })
}

func (f *fakeStaff) Enable(_ context.Context, actor, id string) error {
	return f.change("enable", actor, id, func(m *staffMember) { m.Status = "active" })
}

func (f *fakeStaff) ResetTOTP(_ context.Context, actor, id string) error {
	return f.change("reset-totp", actor, id, func(m *staffMember) { m.secret, m.TOTPEnrolled = "", false })
}

// --- funding ---

// fakeFunding keeps tasks and decides them as funding does, four-eyes
// included.
type fakeFunding struct {
	mu    sync.Mutex
	acts  *actions
	tasks []bo.Task
}

func (f *fakeFunding) Tasks(context.Context) ([]bo.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tasks), nil
}

// take removes and returns the task of id that matches keep.
func (f *fakeFunding) find(id string, keep func(bo.Task) bool) (int, error) {
	for i, t := range f.tasks {
		if t.ID == id && keep(t) {
			return i, nil
		}
	}
	return -1, errs.Ef(errs.NotFound, "fakeFunding", "%s is not waiting for a decision", id)
}

func (f *fakeFunding) ApproveWithdrawal(_ context.Context, id, by string) (bo.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(id, func(t bo.Task) bool { return t.Kind == bo.TaskApproval })
	if err != nil {
		return bo.Decision{}, err
	}
	t := &f.tasks[i]
	if t.FourEyes {
		switch t.FirstApprovedBy {
		case "":
			t.FirstApprovedBy = by
			f.acts.add("first-approve %s by %s", id, by)
			return bo.Decision{ID: id, Status: "awaiting_approval", FirstApprovedBy: by, NeedsSecondApproval: true}, nil
		case by:
			return bo.Decision{}, errs.E(errs.Forbidden, "funding.ApproveWithdrawal", "you gave the first approval; the second approver must be another person")
		}
	}
	f.tasks = slices.Delete(f.tasks, i, i+1)
	f.acts.add("approve %s by %s", id, by)
	return bo.Decision{ID: id, Status: "approved"}, nil
}

func (f *fakeFunding) decide(verb, id, by, text string, keep func(bo.Task) bool) (bo.Decision, error) {
	if strings.TrimSpace(text) == "" {
		return bo.Decision{}, errs.E(errs.Invalid, "fakeFunding", "a reason is required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(id, keep)
	if err != nil {
		return bo.Decision{}, err
	}
	f.tasks = slices.Delete(f.tasks, i, i+1)
	f.acts.add("%s %s by %s: %s", verb, id, by, text)
	return bo.Decision{ID: id, Status: verb}, nil
}

func isApproval(t bo.Task) bool { return t.Kind == bo.TaskApproval }
func isHold(t bo.Task) bool     { return t.Flag == bo.FlagReviewHold }

func (f *fakeFunding) RejectWithdrawal(_ context.Context, id, by, reason string) (bo.Decision, error) {
	return f.decide("reject", id, by, reason, isApproval)
}

func (f *fakeFunding) ReleaseDeposit(_ context.Context, id, by, note string) (bo.Decision, error) {
	return f.decide("release", id, by, note, isHold)
}

func (f *fakeFunding) RejectDeposit(_ context.Context, id, by, reason string) (bo.Decision, error) {
	return f.decide("reject-deposit", id, by, reason, isHold)
}

func (f *fakeFunding) ClearFlag(_ context.Context, id, by, note string) error {
	_, err := f.decide("clear", id, by, note, func(t bo.Task) bool { return t.Kind == bo.TaskFlagged })
	return err
}

// --- pushes and payments ---

type fakePushes struct {
	mu     sync.Mutex
	acts   *actions
	pushes map[string]push.Push
	events map[string][]push.Event
}

func (f *fakePushes) Get(_ context.Context, id string) (push.Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pushes[id]
	if !ok {
		return push.Push{}, errs.Ef(errs.NotFound, "push.Get", "push %s not found", id)
	}
	return p, nil
}

func (f *fakePushes) Events(_ context.Context, id string) ([]push.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[id], nil
}

func (f *fakePushes) Resolve(_ context.Context, id string, applied bool, operator, note string) (push.Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pushes[id]
	if !ok || p.State != push.InDoubt {
		return push.Push{}, errs.Ef(errs.Conflict, "push.Resolve", "push %s is not in doubt", id)
	}
	p.State = push.ResolvedNotApplied
	if applied {
		p.State = push.ResolvedApplied
	}
	f.pushes[id] = p
	f.acts.add("resolve-push %s applied=%v by %s: %s", id, applied, operator, note)
	return p, nil
}

type fakePayments struct {
	mu       sync.Mutex
	acts     *actions
	payments map[string]payments.Payment
	events   map[string][]payments.StoredEvent
}

func (f *fakePayments) Get(_ context.Context, id string) (payments.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[id]
	if !ok {
		return payments.Payment{}, errs.Ef(errs.NotFound, "payments.Get", "payment %s does not exist", id)
	}
	return p, nil
}

func (f *fakePayments) History(context.Context, string) ([]payments.StatusChange, error) {
	return []payments.StatusChange{{Seq: 1, To: payments.Pending, Source: "start"}, {Seq: 2, From: payments.Pending, To: payments.Review, Reason: payments.ReasonAmountMismatch, Source: "webhook"}}, nil
}

func (f *fakePayments) Events(_ context.Context, id string) ([]payments.StoredEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[id], nil
}

func (f *fakePayments) ResolveReview(_ context.Context, id string, to payments.Status, operator, note string) (payments.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[id]
	if !ok || p.Status != payments.Review {
		return payments.Payment{}, errs.Ef(errs.Conflict, "payments.ResolveReview", "payment %s is not under review", id)
	}
	p.Status = to
	f.payments[id] = p
	f.acts.add("resolve-payment %s %s by %s: %s", id, to, operator, note)
	return p, nil
}

// --- users ---

type fakeUsers struct {
	users    map[string]identity.User
	accounts map[string][]identity.Account
}

func (f *fakeUsers) UserByID(_ context.Context, id string) (identity.User, error) {
	u, ok := f.users[id]
	if !ok {
		return identity.User{}, errs.Ef(errs.NotFound, "identity.UserByID", "user %s not found", id)
	}
	return u, nil
}

func (f *fakeUsers) UserByEmail(_ context.Context, email string) (identity.User, error) {
	for _, u := range f.users {
		if strings.EqualFold(u.Email, email) {
			return u, nil
		}
	}
	return identity.User{}, errs.E(errs.NotFound, "identity.UserByEmail", "no such user")
}

func (f *fakeUsers) Accounts(_ context.Context, id string) ([]identity.Account, error) {
	return f.accounts[id], nil
}

// --- compliance ---

type fakeCompliance struct {
	mu       sync.Mutex
	acts     *actions
	profiles map[string]bo.KYCProfile
	history  map[string][]bo.KYCChange
	holds    []bo.Hold
	limits   []bo.Limit
	rules    []bo.Rule
}

func (f *fakeCompliance) Profile(_ context.Context, userID string) (bo.KYCProfile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.profiles[userID]; ok {
		return p, nil
	}
	return bo.KYCProfile{UserID: userID, Level: 0, Country: "DE"}, nil
}

func (f *fakeCompliance) KYCHistory(_ context.Context, userID string) ([]bo.KYCChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.history[userID], nil
}

func (f *fakeCompliance) SetKYC(_ context.Context, actor, userID string, u bo.KYCUpdate) error {
	if len(u.Country) != 2 {
		return errs.E(errs.Invalid, "compliance.SetKYC", "the country must be two letters")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.profiles[userID]
	prev := -1
	if had {
		prev = old.Level
	}
	f.profiles[userID] = bo.KYCProfile{UserID: userID, Level: u.Level, Country: u.Country, Source: "staff", Reference: u.Reference,
		UpdatedBy: actor, UpdatedAt: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), Stored: true}
	f.history[userID] = append([]bo.KYCChange{{Level: u.Level, Country: u.Country, Source: "staff", Reference: u.Reference,
		PreviousLevel: prev, PreviousCountry: old.Country, Actor: actor}}, f.history[userID]...)
	f.acts.add("kyc %s level %d %s by %s: %s", userID, u.Level, u.Country, actor, u.Reference)
	return nil
}

func (f *fakeCompliance) Holds(_ context.Context, open bool) ([]bo.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.Hold
	for _, h := range f.holds {
		if !open || h.State == bo.HoldOpen {
			out = append(out, h)
		}
	}
	return out, nil
}

func (f *fakeCompliance) Hold(_ context.Context, id string) (bo.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.holds {
		if h.TxnID == id {
			return h, nil
		}
	}
	return bo.Hold{}, errs.E(errs.NotFound, "compliance.Hold", "not held")
}

func (f *fakeCompliance) Limits(context.Context) ([]bo.Limit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.limits), nil
}

func (f *fakeCompliance) SetLimit(_ context.Context, actor string, l bo.Limit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts.add("limit %s/%s/%s/%d day %s month %s by %s", l.Direction, l.Method, l.Currency, l.KYCLevel, l.PerDay.Decimal(), l.PerMonth.Decimal(), actor)
	for i, x := range f.limits {
		if x.LimitKey == l.LimitKey {
			f.limits[i] = l
			return nil
		}
	}
	f.limits = append(f.limits, l)
	return nil
}

func (f *fakeCompliance) Rules(context.Context) ([]bo.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rules), nil
}

func (f *fakeCompliance) SetRule(_ context.Context, actor string, r bo.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.rules {
		if x.Name == r.Name {
			f.rules[i] = r
			f.acts.add("rule %s enabled=%v count=%d window=%s by %s", r.Name, r.Enabled, r.Count, r.Window, actor)
			return nil
		}
	}
	return errs.E(errs.Invalid, "compliance.SetRule", "unknown rule")
}

// --- reports ---

type fakeReports struct {
	mu       sync.Mutex
	rows     []bo.TxRow
	timeline map[string][]bo.TimelineEvent
	searches []bo.TxFilter
}

func (f *fakeReports) match(flt bo.TxFilter) []bo.TxRow {
	var out []bo.TxRow
	for _, r := range f.rows {
		switch {
		case flt.UserID != "" && r.UserID != flt.UserID,
			flt.Email != "" && !strings.EqualFold(r.Email, flt.Email),
			flt.Login != 0 && r.Login != flt.Login,
			flt.Kind != "" && r.Kind != flt.Kind,
			len(flt.Status) > 0 && !slices.Contains(flt.Status, r.State),
			flt.MethodID != "" && r.MethodID != flt.MethodID:
			continue
		}
		out = append(out, r)
	}
	return out
}

func (f *fakeReports) Search(_ context.Context, flt bo.TxFilter) (bo.TxPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches = append(f.searches, flt)
	rows := f.match(flt)
	start := 0
	if flt.Cursor != "" {
		n, err := strconv.Atoi(flt.Cursor)
		if err != nil {
			return bo.TxPage{}, errs.E(errs.Invalid, "reports.Search", "bad cursor")
		}
		start = n
	}
	limit := flt.Limit
	if limit == 0 {
		limit = 50
	}
	end := min(start+limit, len(rows))
	page := bo.TxPage{Rows: rows[min(start, end):end]}
	if end < len(rows) {
		page.Next = strconv.Itoa(end)
	}
	return page, nil
}

func (f *fakeReports) WriteCSV(_ context.Context, w io.Writer, flt bo.TxFilter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := io.WriteString(w, "id,kind,user,amount,currency\n"); err != nil {
		return err
	}
	for _, r := range f.match(flt) {
		if _, err := fmt.Fprintf(w, "%s,%s,%s,%s,%s\n", r.ID, r.Kind, r.Email, r.Amount.Decimal(), r.Amount.Currency().Code); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeReports) Timeline(_ context.Context, id string) (bo.TxDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rows {
		if r.ID == id {
			return bo.TxDetail{Row: r, PaymentID: "pay_" + strings.TrimPrefix(strings.TrimPrefix(id, "dep_"), "wd_"), Timeline: f.timeline[id]}, nil
		}
	}
	return bo.TxDetail{}, errs.Ef(errs.NotFound, "reports.Timeline", "no deposit or withdrawal %q", id)
}

// barsSVG draws a bar chart the way internal/reports does: inline SVG with
// presentation attributes only (no style, no script), a title, a legend,
// each value written over its bar.
func barsSVG(title string, labels []string, names []string, series ...[]int) template.HTML {
	colors := []string{"#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a"}
	group := 16*len(series) + 18
	for _, l := range labels {
		group = max(group, 7*len(l)+10)
	}
	width := max(32+len(labels)*group, 360)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 %d 250" width="%d" height="250" font-family="sans-serif" font-size="11"><title>%s</title>`,
		width, width, template.HTMLEscapeString(title))
	for i, n := range names {
		fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="10" fill="%s"/><text x="%d" y="17" fill="#333">%s</text>`, 16+i*120, colors[i], 30+i*120, template.HTMLEscapeString(n))
	}
	top := 0
	for _, vs := range series {
		for _, v := range vs {
			top = max(top, v)
		}
	}
	for ci, l := range labels {
		x := 16 + ci*group + (group-16*len(series))/2
		for si, vs := range series {
			h := vs[ci] * 150 / max(top, 1)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="%d" fill="%s"><title>%s %s: %d</title></rect>`, x+si*16, 210-h, h, colors[si], template.HTMLEscapeString(names[si]), template.HTMLEscapeString(l), vs[ci])
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" text-anchor="middle" fill="#333">%d</text>`, x+si*16+7, 206-h, vs[ci])
		}
		fmt.Fprintf(&b, `<text x="%d" y="228" text-anchor="middle" fill="#555">%s</text>`, x+8*len(series)-1, template.HTMLEscapeString(l))
	}
	fmt.Fprintf(&b, `<line x1="10" y1="210" x2="%d" y2="210" stroke="#999"/></svg>`, width-10)
	return template.HTML(b.String())
}

func (f *fakeReports) Dashboard(_ context.Context, from, to time.Time) (bo.Dashboard, error) {
	return bo.Dashboard{From: from, To: to,
		Figures: []bo.Figure{{Name: "deposits_count", Label: "Deposits completed", Value: "42"}, {Name: "withdrawals_count", Label: "Withdrawals completed", Value: "17"},
			{Name: "approval_median", Label: "Median approval time", Value: "12 min"}, {Name: "funnel_conversion", Label: "Screen to credit", Value: "38.10 %"}},
		Charts: []bo.Chart{
			{ID: "per_day", Title: "Deposits and withdrawals per day (USD)", SVG: barsSVG("Deposits and withdrawals per day",
				[]string{"04-28", "04-29", "04-30", "05-01", "05-02", "05-03", "05-04"}, []string{"deposits", "withdrawals"},
				[]int{4200, 6100, 5300, 8800, 7400, 9100, 6600}, []int{1800, 2500, 1200, 3900, 2100, 2700, 3300}),
				Series: []bo.Series{{Name: "deposits USD", Points: []bo.Point{{Label: "2026-05-03", Value: "9100.00"}, {Label: "2026-05-04", Value: "6600.00"}}}}},
			{ID: "approval_times", Title: "Approval times (minutes)", SVG: barsSVG("Approval times", []string{"median", "90th percentile"}, []string{"minutes"}, []int{12, 47})},
			{ID: "decline_reasons", Title: "Decline reasons", SVG: barsSVG("Decline reasons", []string{"insufficient_funds", "do_not_honor", "3ds_failed", "expired_card"},
				[]string{"deposits"}, []int{31, 14, 9, 4})},
			{ID: "funnel", Title: "Deposit funnel", SVG: barsSVG("Deposit funnel", []string{"screen opened", "method chosen", "paid", "credited"},
				[]string{"sessions and deposits"}, []int{420, 280, 171, 160})},
		}}, nil
}

// --- reconciliation and audit ---

type fakeReconcile struct {
	mu    sync.Mutex
	acts  *actions
	runs  []bo.ReconRun
	cases []bo.ReconCase
}

func (f *fakeReconcile) Runs(context.Context, int) ([]bo.ReconRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runs), nil
}

func (f *fakeReconcile) Cases(_ context.Context, open bool, _ int) ([]bo.ReconCase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.ReconCase
	for _, c := range f.cases {
		if (c.Status == "open") == open {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeReconcile) Resolve(_ context.Context, id, actor, note string) (bo.ReconCase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.cases {
		if c.ID == id {
			if c.Status != "open" {
				return bo.ReconCase{}, errs.E(errs.Conflict, "reconcile.Resolve", "the case is resolved already")
			}
			c.Status, c.ResolvedBy, c.Note = "resolved", actor, note
			f.cases[i] = c
			f.acts.add("resolve-case %s by %s: %s", id, actor, note)
			return c, nil
		}
	}
	return bo.ReconCase{}, errs.E(errs.NotFound, "reconcile.Resolve", "no such case")
}

func (f *fakeReconcile) Run(_ context.Context, actor string) (bo.ReconRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := bo.ReconRun{ID: "rcn_" + strconv.Itoa(len(f.runs)+1), Actor: actor, Status: "clean", Summary: "clean: 3 accounts, 5 payments checked"}
	f.runs = append([]bo.ReconRun{r}, f.runs...)
	f.acts.add("reconcile by %s", actor)
	return r, nil
}

type fakeAudit struct {
	mu      sync.Mutex
	acts    *actions
	entries []bo.AuditEntry
	check   bo.AuditCheck
	queries []bo.AuditQuery
}

func (f *fakeAudit) Search(_ context.Context, q bo.AuditQuery) ([]bo.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	var out []bo.AuditEntry
	for _, e := range f.entries {
		if (q.Actor == "" || e.Actor == q.Actor) && strings.HasPrefix(e.Action, q.Action) && (q.BeforeSeq == 0 || e.Seq < q.BeforeSeq) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b bo.AuditEntry) int { return int(b.Seq - a.Seq) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeAudit) Verify(context.Context) (bo.AuditCheck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts.add("verify")
	return f.check, nil
}

// fixtures are the money amounts of the tests.
var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

func pushInDoubt(id, owner string, login int64, a money.Amount, at time.Time) push.Push {
	return push.Push{ID: id, Owner: "deposit", OwnerID: owner, State: push.InDoubt, Sends: 1,
		Change:   platform.BalanceChange{Login: login, Type: platform.Deposit, Amount: a, Comment: "OpenCashier deposit " + owner, ExternalID: id},
		Evidence: "timeout after 5s; the platform offers no look-up", SendingAt: at, CreatedAt: at, UpdatedAt: at}
}
