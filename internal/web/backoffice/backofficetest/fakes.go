// Package backofficetest holds hand-written fakes of the back office's
// ports (internal/web/backoffice) and a fixture of staff, queues, users and
// transactions, for the tests of the screens and of the admin API. The
// fakes keep what they were asked to do in a shared log ("approve wd_1 by
// staff:stf_finance"), so tests check that an action reached the service
// with the right actor.
package backofficetest

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

// Actions is the shared log of what the fakes were asked to do.
type Actions struct {
	mu  sync.Mutex
	log []string
}

// Add logs an action (fmt.Sprintf of format and args).
func (a *Actions) Add(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log = append(a.log, fmt.Sprintf(format, args...))
}

// Has reports whether the log holds entry.
func (a *Actions) Has(entry string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.log, entry)
}

// All returns the log.
func (a *Actions) All() []string {
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

// RoleMatrix is internal/staff's: which role has which permission.
var RoleMatrix = map[string][]bo.Permission{
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

// Staff keeps staff in memory, with real TOTP codes (pquerna/otp) on
// the fake clock and sessions that expire after idle.
type Staff struct {
	mu       sync.Mutex
	clk      *clock.Fake
	acts     *Actions
	idle     time.Duration
	members  map[string]*staffMember
	pending  map[string]pendingLogin
	sessions map[string]staffSession
}

// NewStaff returns an empty staff service on clk whose sessions end after 30 minutes idle.
func NewStaff(clk *clock.Fake, acts *Actions) *Staff {
	return &Staff{clk: clk, acts: acts, idle: 30 * time.Minute, members: map[string]*staffMember{},
		pending: map[string]pendingLogin{}, sessions: map[string]staffSession{}}
}

// Add creates a member; enrolled members get a TOTP secret at once.
func (f *Staff) Add(id, email, name, role, password string, enrolled bool) *staffMember {
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

// SessionFor opens a session for a member without the login screens.
func (f *Staff) SessionFor(memberID string) bo.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := randomToken()
	f.sessions[tok] = staffSession{memberID: memberID, csrf: randomToken(), idleEnd: f.clk.Now().Add(f.idle)}
	return f.sessionLocked(tok)
}

func (f *Staff) sessionLocked(tok string) bo.Session {
	s := f.sessions[tok]
	return bo.Session{Token: tok, CSRF: s.csrf, Member: f.members[s.memberID].Member, ExpiresAt: s.idleEnd}
}

// SecretOf returns the member's enrolled TOTP secret ("" before enrolment).
func (f *Staff) SecretOf(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[id].secret
}

// BeginLogin is the port's BeginLogin, in memory.
func (f *Staff) BeginLogin(_ context.Context, email, password string) (bo.PendingLogin, error) {
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

// CompleteLogin is the port's CompleteLogin, in memory.
func (f *Staff) CompleteLogin(_ context.Context, token, code string) (bo.Session, error) {
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
	f.acts.Add("login %s", m.ID)
	return f.sessionLocked(tok), nil
}

// Session is the port's Session, in memory.
func (f *Staff) Session(_ context.Context, token string) (bo.Session, error) {
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

// Logout is the port's Logout, in memory.
func (f *Staff) Logout(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[token]; ok {
		f.acts.Add("logout %s", s.memberID)
	}
	delete(f.sessions, token)
	return nil
}

// Authorize is the port's Authorize, in memory.
func (f *Staff) Authorize(s bo.Session, p bo.Permission) error {
	if slices.Contains(RoleMatrix[s.Member.Role], p) {
		return nil
	}
	return errs.Ef(errs.Forbidden, "fakeStaff.Authorize", "role %s may not %s", s.Member.Role, p)
}

// Members is the port's Members, in memory.
func (f *Staff) Members(context.Context) ([]bo.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.Member
	for _, m := range f.members {
		out = append(out, m.Member)
	}
	slices.SortFunc(out, func(a, b bo.Member) int { return strings.Compare(a.Email, b.Email) })
	return out, nil
}

// AddMember is the port's AddMember, in memory.
func (f *Staff) AddMember(_ context.Context, n bo.NewMember) (bo.Member, error) {
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
	m := f.Add(id, n.Email, n.Name, n.Role, n.Password, false)
	f.acts.Add("add %s %s by %s", n.Email, n.Role, n.Actor)
	return m.Member, nil
}

func (f *Staff) change(op, actor, id string, do func(m *staffMember)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[id]
	if !ok {
		return errs.Ef(errs.NotFound, "fakeStaff."+op, "no member %s", id)
	}
	do(m)
	f.acts.Add("%s %s by %s", op, id, actor)
	return nil
}

// SetRole is the port's SetRole, in memory.
func (f *Staff) SetRole(_ context.Context, actor, id, role string) error {
	return f.change("role", actor, id, func(m *staffMember) { m.Role = role })
}

// Disable is the port's Disable, in memory.
func (f *Staff) Disable(_ context.Context, actor, id string) error {
	return f.change("disable", actor, id, func(m *staffMember) { m.Status = "disabled" })
}

// Enable is the port's Enable, in memory.
func (f *Staff) Enable(_ context.Context, actor, id string) error {
	return f.change("enable", actor, id, func(m *staffMember) { m.Status = "active" })
}

// ResetTOTP is the port's ResetTOTP, in memory.
func (f *Staff) ResetTOTP(_ context.Context, actor, id string) error {
	return f.change("reset-totp", actor, id, func(m *staffMember) { m.secret, m.TOTPEnrolled = "", false })
}

// --- funding ---

// Funding keeps tasks and decides them as funding does, four-eyes
// included.
type Funding struct {
	mu       sync.Mutex
	acts     *Actions
	TaskList []bo.Task
}

// Tasks is the port's Tasks, in memory.
func (f *Funding) Tasks(context.Context) ([]bo.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.TaskList), nil
}

// find returns the index of the task of id that matches keep.
func (f *Funding) find(id string, keep func(bo.Task) bool) (int, error) {
	for i, t := range f.TaskList {
		if t.ID == id && keep(t) {
			return i, nil
		}
	}
	return -1, errs.Ef(errs.NotFound, "fakeFunding", "%s is not waiting for a decision", id)
}

// ApproveWithdrawal is the port's ApproveWithdrawal, in memory.
func (f *Funding) ApproveWithdrawal(_ context.Context, id, by string) (bo.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(id, func(t bo.Task) bool { return t.Kind == bo.TaskApproval })
	if err != nil {
		return bo.Decision{}, err
	}
	t := &f.TaskList[i]
	if t.FourEyes {
		switch t.FirstApprovedBy {
		case "":
			t.FirstApprovedBy = by
			f.acts.Add("first-approve %s by %s", id, by)
			return bo.Decision{ID: id, Status: "awaiting_approval", FirstApprovedBy: by, NeedsSecondApproval: true}, nil
		case by:
			return bo.Decision{}, errs.E(errs.Forbidden, "funding.ApproveWithdrawal", "you gave the first approval; the second approver must be another person")
		}
	}
	f.TaskList = slices.Delete(f.TaskList, i, i+1)
	f.acts.Add("approve %s by %s", id, by)
	return bo.Decision{ID: id, Status: "approved"}, nil
}

func (f *Funding) decide(verb, id, by, text string, keep func(bo.Task) bool) (bo.Decision, error) {
	if strings.TrimSpace(text) == "" {
		return bo.Decision{}, errs.E(errs.Invalid, "fakeFunding", "a reason is required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(id, keep)
	if err != nil {
		return bo.Decision{}, err
	}
	f.TaskList = slices.Delete(f.TaskList, i, i+1)
	f.acts.Add("%s %s by %s: %s", verb, id, by, text)
	return bo.Decision{ID: id, Status: verb}, nil
}

func isApproval(t bo.Task) bool { return t.Kind == bo.TaskApproval }
func isHold(t bo.Task) bool     { return t.Flag == bo.FlagReviewHold }

// RejectWithdrawal is the port's RejectWithdrawal, in memory.
func (f *Funding) RejectWithdrawal(_ context.Context, id, by, reason string) (bo.Decision, error) {
	return f.decide("reject", id, by, reason, isApproval)
}

// ReleaseDeposit is the port's ReleaseDeposit, in memory.
func (f *Funding) ReleaseDeposit(_ context.Context, id, by, note string) (bo.Decision, error) {
	return f.decide("release", id, by, note, isHold)
}

// RejectDeposit is the port's RejectDeposit, in memory.
func (f *Funding) RejectDeposit(_ context.Context, id, by, reason string) (bo.Decision, error) {
	return f.decide("reject-deposit", id, by, reason, isHold)
}

// ClearFlag is the port's ClearFlag, in memory.
func (f *Funding) ClearFlag(_ context.Context, id, by, note string) error {
	_, err := f.decide("clear", id, by, note, func(t bo.Task) bool { return t.Kind == bo.TaskFlagged })
	return err
}

// --- pushes and payments ---

// Pushes fakes the Pushes port: pushes by id with their events.
type Pushes struct {
	mu         sync.Mutex
	acts       *Actions
	Pushes     map[string]push.Push
	EventsByID map[string][]push.Event
}

// Get is the port's Get, in memory.
func (f *Pushes) Get(_ context.Context, id string) (push.Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Pushes[id]
	if !ok {
		return push.Push{}, errs.Ef(errs.NotFound, "push.Get", "push %s not found", id)
	}
	return p, nil
}

// Events is the port's Events, in memory.
func (f *Pushes) Events(_ context.Context, id string) ([]push.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.EventsByID[id], nil
}

// Resolve is the port's Resolve, in memory.
func (f *Pushes) Resolve(_ context.Context, id string, applied bool, operator, note string) (push.Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Pushes[id]
	if !ok || p.State != push.InDoubt {
		return push.Push{}, errs.Ef(errs.Conflict, "push.Resolve", "push %s is not in doubt", id)
	}
	p.State = push.ResolvedNotApplied
	if applied {
		p.State = push.ResolvedApplied
	}
	f.Pushes[id] = p
	f.acts.Add("resolve-push %s applied=%v by %s: %s", id, applied, operator, note)
	return p, nil
}

// Payments fakes the Payments port: payments by id with their provider events.
type Payments struct {
	mu         sync.Mutex
	acts       *Actions
	Payments   map[string]payments.Payment
	EventsByID map[string][]payments.StoredEvent
}

// Get is the port's Get, in memory.
func (f *Payments) Get(_ context.Context, id string) (payments.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Payments[id]
	if !ok {
		return payments.Payment{}, errs.Ef(errs.NotFound, "payments.Get", "payment %s does not exist", id)
	}
	return p, nil
}

// History is the port's History, in memory.
func (f *Payments) History(context.Context, string) ([]payments.StatusChange, error) {
	return []payments.StatusChange{{Seq: 1, To: payments.Pending, Source: "start"}, {Seq: 2, From: payments.Pending, To: payments.Review, Reason: payments.ReasonAmountMismatch, Source: "webhook"}}, nil
}

// Events is the port's Events, in memory.
func (f *Payments) Events(_ context.Context, id string) ([]payments.StoredEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.EventsByID[id], nil
}

// ResolveReview is the port's ResolveReview, in memory.
func (f *Payments) ResolveReview(_ context.Context, id string, to payments.Status, operator, note string) (payments.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Payments[id]
	if !ok || p.Status != payments.Review {
		return payments.Payment{}, errs.Ef(errs.Conflict, "payments.ResolveReview", "payment %s is not under review", id)
	}
	p.Status = to
	f.Payments[id] = p
	f.acts.Add("resolve-payment %s %s by %s: %s", id, to, operator, note)
	return p, nil
}

// --- users ---

// Users fakes the Users port.
type Users struct {
	mu             sync.Mutex
	Users          map[string]identity.User
	AccountsByUser map[string][]identity.Account
}

// UserByID is the port's UserByID, in memory.
func (f *Users) UserByID(_ context.Context, id string) (identity.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.Users[id]
	if !ok {
		return identity.User{}, errs.Ef(errs.NotFound, "identity.UserByID", "user %s not found", id)
	}
	return u, nil
}

// UserByEmail is the port's UserByEmail, in memory.
func (f *Users) UserByEmail(_ context.Context, email string) (identity.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.Users {
		if strings.EqualFold(u.Email, email) {
			return u, nil
		}
	}
	return identity.User{}, errs.E(errs.NotFound, "identity.UserByEmail", "no such user")
}

// Accounts is the port's Accounts, in memory.
func (f *Users) Accounts(_ context.Context, id string) ([]identity.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.AccountsByUser[id], nil
}

// --- compliance ---

// Compliance fakes the Compliance port: profiles, history, holds, limits and rules in memory.
type Compliance struct {
	mu        sync.Mutex
	acts      *Actions
	Profiles  map[string]bo.KYCProfile
	History   map[string][]bo.KYCChange
	HoldList  []bo.Hold
	LimitList []bo.Limit
	RuleList  []bo.Rule
}

// Profile is the port's Profile, in memory.
func (f *Compliance) Profile(_ context.Context, userID string) (bo.KYCProfile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.Profiles[userID]; ok {
		return p, nil
	}
	return bo.KYCProfile{UserID: userID, Level: 0, Country: "DE"}, nil
}

// KYCHistory is the port's KYCHistory, in memory.
func (f *Compliance) KYCHistory(_ context.Context, userID string) ([]bo.KYCChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.History[userID], nil
}

// SetKYC is the port's SetKYC, in memory.
func (f *Compliance) SetKYC(_ context.Context, actor, userID string, u bo.KYCUpdate) error {
	if len(u.Country) != 2 {
		return errs.E(errs.Invalid, "compliance.SetKYC", "the country must be two letters")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.Profiles[userID]
	prev := -1
	if had {
		prev = old.Level
	}
	f.Profiles[userID] = bo.KYCProfile{UserID: userID, Level: u.Level, Country: u.Country, Source: "staff", Reference: u.Reference,
		UpdatedBy: actor, UpdatedAt: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), Stored: true}
	f.History[userID] = append([]bo.KYCChange{{Level: u.Level, Country: u.Country, Source: "staff", Reference: u.Reference,
		PreviousLevel: prev, PreviousCountry: old.Country, Actor: actor}}, f.History[userID]...)
	f.acts.Add("kyc %s level %d %s by %s: %s", userID, u.Level, u.Country, actor, u.Reference)
	return nil
}

// Holds is the port's Holds, in memory.
func (f *Compliance) Holds(_ context.Context, open bool) ([]bo.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.Hold
	for _, h := range f.HoldList {
		if !open || h.State == bo.HoldOpen {
			out = append(out, h)
		}
	}
	return out, nil
}

// Hold is the port's Hold, in memory.
func (f *Compliance) Hold(_ context.Context, id string) (bo.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.HoldList {
		if h.TxnID == id {
			return h, nil
		}
	}
	return bo.Hold{}, errs.E(errs.NotFound, "compliance.Hold", "not held")
}

// Limits is the port's Limits, in memory.
func (f *Compliance) Limits(context.Context) ([]bo.Limit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.LimitList), nil
}

// SetLimit is the port's SetLimit, in memory.
func (f *Compliance) SetLimit(_ context.Context, actor string, l bo.Limit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts.Add("limit %s/%s/%s/%d day %s month %s by %s", l.Direction, l.Method, l.Currency, l.KYCLevel, l.PerDay.Decimal(), l.PerMonth.Decimal(), actor)
	for i, x := range f.LimitList {
		if x.LimitKey == l.LimitKey {
			f.LimitList[i] = l
			return nil
		}
	}
	f.LimitList = append(f.LimitList, l)
	return nil
}

// Rules is the port's Rules, in memory.
func (f *Compliance) Rules(context.Context) ([]bo.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.RuleList), nil
}

// SetRule is the port's SetRule, in memory.
func (f *Compliance) SetRule(_ context.Context, actor string, r bo.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.RuleList {
		if x.Name == r.Name {
			f.RuleList[i] = r
			f.acts.Add("rule %s enabled=%v count=%d window=%s by %s", r.Name, r.Enabled, r.Count, r.Window, actor)
			return nil
		}
	}
	return errs.E(errs.Invalid, "compliance.SetRule", "unknown rule")
}

// --- reports ---

// Reports fakes the Reports port over Rows and Timelines; it remembers the filters it was given.
type Reports struct {
	mu        sync.Mutex
	Rows      []bo.TxRow
	Timelines map[string][]bo.TimelineEvent
	searches  []bo.TxFilter
}

func (f *Reports) match(flt bo.TxFilter) []bo.TxRow {
	var out []bo.TxRow
	for _, r := range f.Rows {
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

// Search is the port's Search, in memory.
func (f *Reports) Search(_ context.Context, flt bo.TxFilter) (bo.TxPage, error) {
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

// WriteCSV is the port's WriteCSV, in memory.
func (f *Reports) WriteCSV(_ context.Context, w io.Writer, flt bo.TxFilter) error {
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

// Timeline is the port's Timeline, in memory.
func (f *Reports) Timeline(_ context.Context, id string) (bo.TxDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.Rows {
		if r.ID == id {
			return bo.TxDetail{Row: r, PaymentID: "pay_" + strings.TrimPrefix(strings.TrimPrefix(id, "dep_"), "wd_"), Timeline: f.Timelines[id]}, nil
		}
	}
	return bo.TxDetail{}, errs.Ef(errs.NotFound, "reports.Timeline", "no deposit or withdrawal %q", id)
}

// BarsSVG draws a bar chart the way internal/reports does: inline SVG with
// presentation attributes only (no style, no script), a title, a legend,
// each value written over its bar.
func BarsSVG(title string, labels []string, names []string, series ...[]int) template.HTML {
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
	return template.HTML(b.String()) // #nosec G203 -- every text in it is escaped above
}

// Dashboard is the port's Dashboard, in memory.
func (f *Reports) Dashboard(_ context.Context, from, to time.Time) (bo.Dashboard, error) {
	return bo.Dashboard{From: from, To: to,
		Figures: []bo.Figure{{Name: "deposits_count", Label: "Deposits completed", Value: "42"}, {Name: "withdrawals_count", Label: "Withdrawals completed", Value: "17"},
			{Name: "approval_median", Label: "Median approval time", Value: "12 min"}, {Name: "funnel_conversion", Label: "Screen to credit", Value: "38.10 %"}},
		Charts: []bo.Chart{
			{ID: "per_day", Title: "Deposits and withdrawals per day (USD)", SVG: BarsSVG("Deposits and withdrawals per day",
				[]string{"04-28", "04-29", "04-30", "05-01", "05-02", "05-03", "05-04"}, []string{"deposits", "withdrawals"},
				[]int{4200, 6100, 5300, 8800, 7400, 9100, 6600}, []int{1800, 2500, 1200, 3900, 2100, 2700, 3300}),
				Series: []bo.Series{{Name: "deposits USD", Points: []bo.Point{{Label: "2026-05-03", Value: "9100.00"}, {Label: "2026-05-04", Value: "6600.00"}}}}},
			{ID: "approval_times", Title: "Approval times (minutes)", SVG: BarsSVG("Approval times", []string{"median", "90th percentile"}, []string{"minutes"}, []int{12, 47})},
			{ID: "decline_reasons", Title: "Decline reasons", SVG: BarsSVG("Decline reasons", []string{"insufficient_funds", "do_not_honor", "3ds_failed", "expired_card"},
				[]string{"deposits"}, []int{31, 14, 9, 4})},
			{ID: "funnel", Title: "Deposit funnel", SVG: BarsSVG("Deposit funnel", []string{"screen opened", "method chosen", "paid", "credited"},
				[]string{"sessions and deposits"}, []int{420, 280, 171, 160})},
		}}, nil
}

// --- reconciliation and audit ---

// Reconcile fakes the Reconcile port: runs and cases in memory.
type Reconcile struct {
	mu       sync.Mutex
	acts     *Actions
	RunList  []bo.ReconRun
	CaseList []bo.ReconCase
}

// Runs is the port's Runs, in memory.
func (f *Reconcile) Runs(context.Context, int) ([]bo.ReconRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.RunList), nil
}

// Cases is the port's Cases, in memory.
func (f *Reconcile) Cases(_ context.Context, open bool, _ int) ([]bo.ReconCase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bo.ReconCase
	for _, c := range f.CaseList {
		if (c.Status == "open") == open {
			out = append(out, c)
		}
	}
	return out, nil
}

// Resolve is the port's Resolve, in memory.
func (f *Reconcile) Resolve(_ context.Context, id, actor, note string) (bo.ReconCase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.CaseList {
		if c.ID == id {
			if c.Status != "open" {
				return bo.ReconCase{}, errs.E(errs.Conflict, "reconcile.Resolve", "the case is resolved already")
			}
			c.Status, c.ResolvedBy, c.Note = "resolved", actor, note
			f.CaseList[i] = c
			f.acts.Add("resolve-case %s by %s: %s", id, actor, note)
			return c, nil
		}
	}
	return bo.ReconCase{}, errs.E(errs.NotFound, "reconcile.Resolve", "no such case")
}

// Run is the port's Run, in memory.
func (f *Reconcile) Run(_ context.Context, actor string) (bo.ReconRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := bo.ReconRun{ID: "rcn_" + strconv.Itoa(len(f.RunList)+1), Actor: actor, Status: "clean", Summary: "clean: 3 accounts, 5 payments checked"}
	f.RunList = append([]bo.ReconRun{r}, f.RunList...)
	f.acts.Add("reconcile by %s", actor)
	return r, nil
}

// Audit fakes the Audit port: Entries, and Check as the answer of Verify.
type Audit struct {
	mu      sync.Mutex
	acts    *Actions
	Entries []bo.AuditEntry
	Check   bo.AuditCheck
	queries []bo.AuditQuery
}

// Search is the port's Search, in memory.
func (f *Audit) Search(_ context.Context, q bo.AuditQuery) ([]bo.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	var out []bo.AuditEntry
	for _, e := range f.Entries {
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

// Verify is the port's Verify, in memory.
func (f *Audit) Verify(context.Context) (bo.AuditCheck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts.Add("verify")
	return f.Check, nil
}

// fixtures are the money amounts of the tests.
var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

// PushInDoubt returns a DEPOSIT push that is in doubt after a timeout.
func PushInDoubt(id, owner string, login int64, a money.Amount, at time.Time) push.Push {
	return push.Push{ID: id, Owner: "deposit", OwnerID: owner, State: push.InDoubt, Sends: 1,
		Change:   platform.BalanceChange{Login: login, Type: platform.Deposit, Amount: a, Comment: "OpenCashier deposit " + owner, ExternalID: id},
		Evidence: "timeout after 5s; the platform offers no look-up", SendingAt: at, CreatedAt: at, UpdatedAt: at}
}

// --- helpers for tests ---

// SetStatus makes a member "active" or "disabled".
func (f *Staff) SetStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[id].Status = status
}

// Member returns a member as the staff service holds it.
func (f *Staff) Member(id string) bo.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[id].Member
}

// AddTask puts a task on the queues.
func (f *Funding) AddTask(t bo.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.TaskList = append(f.TaskList, t)
}

// LastSearch is the filter of the latest Search.
func (f *Reports) LastSearch() bo.TxFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.searches) == 0 {
		return bo.TxFilter{}
	}
	return f.searches[len(f.searches)-1]
}

// AddRow adds a transaction.
func (f *Reports) AddRow(r bo.TxRow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Rows = append(f.Rows, r)
}

// SetProfile stores a KYC profile.
func (f *Compliance) SetProfile(p bo.KYCProfile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Profiles[p.UserID] = p
}

// SetCheck sets what Verify answers.
func (f *Audit) SetCheck(c bo.AuditCheck) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Check = c
}

// AddEntry adds a record to the trail.
func (f *Audit) AddEntry(e bo.AuditEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Entries = append(f.Entries, e)
}

// LastQuery is the query of the latest Search.
func (f *Audit) LastQuery() bo.AuditQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return bo.AuditQuery{}
	}
	return f.queries[len(f.queries)-1]
}

// Add adds a user.
func (f *Users) Add(u identity.User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Users[u.ID] = u
}
