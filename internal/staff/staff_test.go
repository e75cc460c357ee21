package staff_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/staff"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const (
	operator = "operator:test"
	password = "correct horse battery"
)

// recorder is a fake audit.Recorder that keeps the records of committed
// transactions only, as the real trail does.
type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
	fail error // returned by RecordTx when set
}

func (r *recorder) RecordTx(_ context.Context, tx *sqlstore.Tx, rec audit.Record) error {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.recs = append(r.recs, rec)
	})
	return nil
}

// take returns the records kept since the last take.
func (r *recorder) take() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.recs
	r.recs = nil
	return out
}

// actions lists the records' "actor action subject" lines.
func actions(recs []audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Actor+" "+r.Action+" "+r.Subject)
	}
	return out
}

type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *staff.Service
	clk   *clock.Fake
	audit *recorder
	// secrets holds each enrolled member's TOTP secret, as their phone
	// would.
	secrets map[string]string
}

func newEnv(t *testing.T, db *sqlstore.DB) *env {
	clk := clock.NewFake(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	rec := &recorder{}
	return &env{t: t, ctx: context.Background(), clk: clk, audit: rec, secrets: map[string]string{},
		svc: staff.New(db, clk, staff.Options{Issuer: "Acme Back Office", Audit: rec})}
}

func (e *env) add(email string, role staff.Role) staff.Member {
	e.t.Helper()
	m, err := e.svc.Add(e.ctx, staff.NewMember{Email: email, Name: "Test " + string(role), Role: role, Password: password, Actor: operator})
	if err != nil {
		e.t.Fatalf("Add(%s): %v", email, err)
	}
	return m
}

// code is the member's authenticator code now.
func (e *env) code(email string) string {
	e.t.Helper()
	c, err := totp.GenerateCode(e.secrets[email], e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// login signs a member in, enrolling their authenticator if needed; it
// moves the clock to the next 30-second step first, so that each login
// uses a fresh code.
func (e *env) login(email string) staff.Session {
	e.t.Helper()
	e.clk.Advance(30 * time.Second)
	p, err := e.svc.BeginLogin(e.ctx, email, password)
	if err != nil {
		e.t.Fatalf("BeginLogin(%s): %v", email, err)
	}
	if p.NeedsEnrolment {
		e.secrets[email] = p.Enrolment.Secret
	}
	s, err := e.svc.CompleteLogin(e.ctx, p.Token, e.code(email))
	if err != nil {
		e.t.Fatalf("CompleteLogin(%s): %v", email, err)
	}
	return s
}

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Fatalf("%s: error %v (%s), want %s", what, err, errs.CodeOf(err), code)
	}
}

// expected is the permission matrix as docs/staff.md documents it, written
// out so that a change to the code's matrix fails here.
var expected = map[staff.Role][]staff.Permission{
	staff.Viewer:  {staff.PermView},
	staff.Support: {staff.PermView, staff.PermUsersView},
	staff.Finance: {staff.PermView, staff.PermExport, staff.PermUsersView, staff.PermWithdrawalsDecide,
		staff.PermPushesResolve, staff.PermPaymentsReview, staff.PermReconcile},
	staff.Compliance: {staff.PermView, staff.PermUsersView, staff.PermHoldsDecide, staff.PermKYCSet,
		staff.PermRulesEdit, staff.PermAuditView},
	staff.Admin: staff.AllPermissions(),
}

func TestRolesAndPermissionsAreListed(t *testing.T) {
	if diff := cmp.Diff([]staff.Role{staff.Viewer, staff.Support, staff.Finance, staff.Compliance, staff.Admin}, staff.Roles()); diff != "" {
		t.Errorf("Roles() (-want +got):\n%s", diff)
	}
	if n := len(staff.AllPermissions()); n != 13 {
		t.Errorf("AllPermissions() has %d permissions, want the 13 of docs/staff.md", n)
	}
	for _, r := range staff.Roles() {
		if diff := cmp.Diff(expected[r], staff.Permissions(r)); diff != "" {
			t.Errorf("Permissions(%s) (-want +got):\n%s", r, diff)
		}
	}
	if got := staff.Permissions("owner"); got != nil {
		t.Errorf("Permissions(owner) = %v, want none for an unknown role", got)
	}
	if _, err := staff.ParseRole("Finance "); err != nil {
		t.Errorf("ParseRole(Finance ) = %v, want finance", err)
	}
	if _, err := staff.ParseRole("root"); errs.CodeOf(err) != errs.Invalid || !strings.Contains(err.Error(), "viewer, support, finance, compliance, admin") {
		t.Errorf("ParseRole(root) = %v, want errs.Invalid listing the roles", err)
	}
}

// TestEachRolesPermissions signs in a member of every role on both
// databases and checks every permission of the matrix through Authorize:
// what each role may do and what it may not.
func TestEachRolesPermissions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		for _, role := range staff.Roles() {
			email := string(role) + "@broker.example"
			e.add(email, role)
			sess := e.login(email)
			can := map[staff.Permission]bool{}
			for _, p := range expected[role] {
				can[p] = true
			}
			for _, p := range staff.AllPermissions() {
				t.Run(string(role)+"/"+string(p), func(t *testing.T) {
					err := staff.Authorize(sess, p)
					if can[p] {
						if err != nil {
							t.Fatalf("Authorize = %v, want allowed", err)
						}
						return
					}
					wantCode(t, "Authorize", err, errs.Forbidden)
					if msg := errs.MessageOf(err); !strings.Contains(msg, string(p)) || !strings.Contains(msg, string(role)) {
						t.Errorf("message %q should name the role %s and the permission %s", msg, role, p)
					}
				})
			}
		}
		wantCode(t, "Authorize without a session", staff.Authorize(staff.Session{}, staff.PermView), errs.Unauthorized)
	}, staff.Schema)
}

func TestLoginEnrolsTOTPThenAsksForCodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		m := e.add("Olga@Broker.example", staff.Admin)
		if m.TOTPEnrolled || !strings.HasPrefix(m.ID, "stf_") {
			t.Fatalf("new member = %+v, want stf_ id and no TOTP yet", m)
		}

		// First login: the address in another case, and an enrolment.
		p, err := e.svc.BeginLogin(e.ctx, "olga@broker.example", password)
		if err != nil {
			t.Fatal(err)
		}
		if !p.NeedsEnrolment || p.Enrolment == nil || p.Enrolment.Secret == "" {
			t.Fatalf("first BeginLogin = %+v, want an enrolment", p)
		}
		u, err := url.Parse(p.Enrolment.URI)
		if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != p.Enrolment.Secret ||
			u.Query().Get("issuer") != "Acme Back Office" || !strings.Contains(u.Path, "Olga@Broker.example") {
			t.Errorf("enrolment URI = %q, want otpauth://totp/ with the issuer, the address and the secret", p.Enrolment.URI)
		}
		img, err := png.Decode(bytes.NewReader(p.Enrolment.QRPNG))
		if err != nil || img.Bounds().Dx() < 200 {
			t.Errorf("QR code is not a usable PNG: %v", err)
		}
		if !p.ExpiresAt.Equal(e.clk.Now().Add(staff.DefaultLoginTTL)) {
			t.Errorf("pending login expires at %v, want %v", p.ExpiresAt, e.clk.Now().Add(staff.DefaultLoginTTL))
		}

		// A wrong code does not enrol; the right one does.
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, "000000")
		wantCode(t, "CompleteLogin with a wrong code", err, errs.Unauthorized)
		if got, _ := e.svc.Get(e.ctx, m.ID); got.TOTPEnrolled || got.FailedLogins != 1 {
			t.Errorf("after a wrong code: enrolled %v, failures %d; want not enrolled, 1 failure", got.TOTPEnrolled, got.FailedLogins)
		}
		e.secrets["Olga@Broker.example"] = p.Enrolment.Secret
		sess, err := e.svc.CompleteLogin(e.ctx, p.Token, e.code("Olga@Broker.example"))
		if err != nil {
			t.Fatalf("CompleteLogin with the right code: %v", err)
		}
		if !sess.Member.TOTPEnrolled || sess.Member.ID != m.ID || sess.Member.FailedLogins != 0 || !sess.Member.LastLoginAt.Equal(e.clk.Now()) {
			t.Errorf("session member = %+v, want enrolled, no failures, last login now", sess.Member)
		}
		if len(sess.Token) != 43 || len(sess.CSRF) != 43 || sess.Token == sess.CSRF {
			t.Errorf("session token %q and CSRF %q: want two different 32-byte tokens", sess.Token, sess.CSRF)
		}
		if !sess.ExpiresAt.Equal(e.clk.Now().Add(staff.DefaultSessionIdle)) || !sess.AbsoluteExpiresAt.Equal(e.clk.Now().Add(staff.DefaultSessionMax)) {
			t.Errorf("session expires %v (absolute %v), want idle 30m and absolute 12h from now", sess.ExpiresAt, sess.AbsoluteExpiresAt)
		}
		got, err := e.svc.Session(e.ctx, sess.Token)
		if err != nil || got.Member.Email != "Olga@Broker.example" || got.CSRF != sess.CSRF {
			t.Fatalf("Session = %+v, %v; want Olga's session with its CSRF token", got, err)
		}
		if err := got.CheckCSRF(sess.CSRF); err != nil {
			t.Errorf("CheckCSRF(own token) = %v", err)
		}
		wantCode(t, "CheckCSRF(another token)", got.CheckCSRF("x"+sess.CSRF[1:]), errs.Forbidden)
		// The pending token was used up.
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, e.code("Olga@Broker.example"))
		wantCode(t, "CompleteLogin with a used pending token", err, errs.Unauthorized)

		// Next login: no enrolment; the authenticator's code of a later step.
		e.clk.Advance(time.Hour)
		p2, err := e.svc.BeginLogin(e.ctx, "OLGA@broker.example", password)
		if err != nil || p2.NeedsEnrolment || p2.Enrolment != nil {
			t.Fatalf("second BeginLogin = %+v, %v; want no enrolment", p2, err)
		}
		if _, err := e.svc.CompleteLogin(e.ctx, p2.Token, e.code("Olga@Broker.example")); err != nil {
			t.Fatalf("second CompleteLogin: %v", err)
		}
		// Codes of the step before and after are accepted (clock drift).
		e.clk.Advance(time.Minute)
		p3, err := e.svc.BeginLogin(e.ctx, "olga@broker.example", password)
		if err != nil {
			t.Fatal(err)
		}
		late, _ := totp.GenerateCode(e.secrets["Olga@Broker.example"], e.clk.Now().Add(-30*time.Second))
		if _, err := e.svc.CompleteLogin(e.ctx, p3.Token, late); err != nil {
			t.Errorf("a code of the previous step: %v, want accepted", err)
		}
	}, staff.Schema)
}

func TestWrongPasswordAndUnknownAddressLookAlike(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("finn@broker.example", staff.Finance)
		_, wrongPassword := e.svc.BeginLogin(e.ctx, "finn@broker.example", "not the password")
		_, unknown := e.svc.BeginLogin(e.ctx, "nobody@broker.example", password)
		_, tooLong := e.svc.BeginLogin(e.ctx, "finn@broker.example", strings.Repeat("x", 1000))
		for name, err := range map[string]error{"wrong password": wrongPassword, "unknown address": unknown, "overlong password": tooLong} {
			if errs.CodeOf(err) != errs.Unauthorized || errs.MessageOf(err) != errs.MessageOf(wrongPassword) {
				t.Errorf("%s: %v (%s), want the same errs.Unauthorized as a wrong password: %q",
					name, err, errs.CodeOf(err), errs.MessageOf(wrongPassword))
			}
		}
		if diff := cmp.Diff([]string{
			"system staff.login_failed staff:" + mustGet(t, e, "finn@broker.example").ID,
			"system staff.login_failed email:nobody@broker.example",
			"system staff.login_failed staff:" + mustGet(t, e, "finn@broker.example").ID,
		}, actions(e.audit.take()[1:])); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	}, staff.Schema)
}

func mustGet(t *testing.T, e *env, email string) staff.Member {
	t.Helper()
	m, err := e.svc.GetByEmail(e.ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReplayedCodeIsRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("rita@broker.example", staff.Viewer)
		e.login("rita@broker.example")

		// Within the same 30-second step the code just used is refused,
		// even for a new pending login with the right password.
		used := e.code("rita@broker.example")
		p, err := e.svc.BeginLogin(e.ctx, "rita@broker.example", password)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, used)
		wantCode(t, "replayed code", err, errs.Unauthorized)
		if !strings.Contains(errs.MessageOf(err), "already been used") {
			t.Errorf("replay message = %q, want it to say the code was used", errs.MessageOf(err))
		}
		// So is the code of the step before (the window accepts it, the
		// guard does not).
		earlier, _ := totp.GenerateCode(e.secrets["rita@broker.example"], e.clk.Now().Add(-30*time.Second))
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, earlier)
		wantCode(t, "code of an earlier step", err, errs.Unauthorized)
		if m := mustGet(t, e, "rita@broker.example"); m.FailedLogins != 2 {
			t.Errorf("failures = %d, want the 2 replays counted", m.FailedLogins)
		}
		// The next step's code works with the same pending token.
		e.clk.Advance(30 * time.Second)
		if _, err := e.svc.CompleteLogin(e.ctx, p.Token, e.code("rita@broker.example")); err != nil {
			t.Fatalf("next step's code: %v", err)
		}
	}, staff.Schema)
}

func TestLockoutAfterFailuresAndUnlockAfterLockFor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		m := e.add("lena@broker.example", staff.Compliance)
		e.login("lena@broker.example")
		e.audit.take()

		// Two wrong passwords and two wrong codes: four failures.
		for range 2 {
			_, err := e.svc.BeginLogin(e.ctx, "lena@broker.example", "wrong password!")
			wantCode(t, "wrong password", err, errs.Unauthorized)
		}
		e.clk.Advance(30 * time.Second)
		p, err := e.svc.BeginLogin(e.ctx, "lena@broker.example", password)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			_, err := e.svc.CompleteLogin(e.ctx, p.Token, "123456")
			wantCode(t, "wrong code", err, errs.Unauthorized)
		}
		// The fifth failure locks.
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, "654321")
		wantCode(t, "fifth failure", err, errs.RateLimited)
		locked := mustGet(t, e, "lena@broker.example")
		if !locked.LockedUntil.Equal(e.clk.Now().Add(staff.DefaultLockFor)) {
			t.Errorf("locked until %v, want %v", locked.LockedUntil, e.clk.Now().Add(staff.DefaultLockFor))
		}
		// While locked: the right password and code are refused, and the
		// pending login was ended.
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, e.code("lena@broker.example"))
		wantCode(t, "pending login after the lockout", err, errs.Unauthorized)
		e.clk.Advance(staff.DefaultLockFor - time.Second)
		_, err = e.svc.BeginLogin(e.ctx, "lena@broker.example", password)
		wantCode(t, "right password while locked", err, errs.RateLimited)

		// Once LockFor has passed the member signs in again, and the
		// count starts afresh.
		e.clk.Advance(time.Second)
		s := e.login("lena@broker.example")
		if s.Member.FailedLogins != 0 || !s.Member.LockedUntil.IsZero() {
			t.Errorf("after the lockout: %+v, want no failures and no lock", s.Member)
		}
		sub := "staff:" + m.ID
		if diff := cmp.Diff([]string{
			"system staff.login_failed " + sub, "system staff.login_failed " + sub,
			"system staff.login_failed " + sub, "system staff.login_failed " + sub,
			"system staff.login_failed " + sub, "system staff.locked " + sub,
			"system staff.login_refused " + sub,
			m.Actor() + " staff.login " + sub,
		}, actions(e.audit.take())); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	}, staff.Schema)
}

func TestAnAdminCanUnlockEarly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		m := e.add("ada@broker.example", staff.Support)
		for range staff.DefaultMaxFailures {
			_, _ = e.svc.BeginLogin(e.ctx, "ada@broker.example", "wrong password!")
		}
		_, err := e.svc.BeginLogin(e.ctx, "ada@broker.example", password)
		wantCode(t, "right password while locked", err, errs.RateLimited)
		if _, err := e.svc.Enable(e.ctx, operator, m.ID); err != nil {
			t.Fatal(err)
		}
		e.login("ada@broker.example")
	}, staff.Schema)
}

func TestSessionsExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("ivan@broker.example", staff.Viewer)

		t.Run("idle", func(t *testing.T) {
			s := e.login("ivan@broker.example")
			// Each use slides the idle expiry: three uses 29 minutes apart
			// keep the session alive well past 30 minutes after login.
			for i := range 3 {
				e.clk.Advance(staff.DefaultSessionIdle - time.Minute)
				got, err := e.svc.Session(e.ctx, s.Token)
				if err != nil {
					t.Fatalf("use %d after %v idle: %v", i+1, staff.DefaultSessionIdle-time.Minute, err)
				}
				if !got.ExpiresAt.Equal(e.clk.Now().Add(staff.DefaultSessionIdle)) {
					t.Errorf("ExpiresAt = %v, want slid to %v", got.ExpiresAt, e.clk.Now().Add(staff.DefaultSessionIdle))
				}
			}
			e.clk.Advance(staff.DefaultSessionIdle)
			_, err := e.svc.Session(e.ctx, s.Token)
			wantCode(t, "after 30 idle minutes", err, errs.Expired)
			_, err = e.svc.Session(e.ctx, s.Token)
			wantCode(t, "an expired session asked again", err, errs.Unauthorized)
		})

		t.Run("absolute", func(t *testing.T) {
			s := e.login("ivan@broker.example")
			start := e.clk.Now()
			for e.clk.Now().Before(start.Add(staff.DefaultSessionMax - 20*time.Minute)) {
				e.clk.Advance(20 * time.Minute)
				got, err := e.svc.Session(e.ctx, s.Token)
				if err != nil {
					t.Fatalf("busy session at %v: %v", e.clk.Now().Sub(start), err)
				}
				if got.ExpiresAt.After(start.Add(staff.DefaultSessionMax)) {
					t.Fatalf("ExpiresAt %v is past the absolute limit", got.ExpiresAt)
				}
			}
			e.clk.Set(start.Add(staff.DefaultSessionMax))
			_, err := e.svc.Session(e.ctx, s.Token)
			wantCode(t, "at 12 hours, though busy", err, errs.Expired)
		})

		t.Run("pending login", func(t *testing.T) {
			e.clk.Advance(30 * time.Second)
			p, err := e.svc.BeginLogin(e.ctx, "ivan@broker.example", password)
			if err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(staff.DefaultLoginTTL)
			_, err = e.svc.CompleteLogin(e.ctx, p.Token, e.code("ivan@broker.example"))
			wantCode(t, "CompleteLogin after 5 minutes", err, errs.Expired)
		})

		t.Run("sweep", func(t *testing.T) {
			e.login("ivan@broker.example")
			_, _ = e.svc.BeginLogin(e.ctx, "ivan@broker.example", password)
			e.clk.Advance(staff.DefaultSessionIdle)
			n, err := e.svc.Sweep(e.ctx)
			if err != nil || n != 2 {
				t.Errorf("Sweep = %d, %v; want the expired session and pending login removed", n, err)
			}
		})

		t.Run("garbage token", func(t *testing.T) {
			for _, tok := range []string{"", "abc", strings.Repeat("A", 43)} {
				_, err := e.svc.Session(e.ctx, tok)
				wantCode(t, "Session("+tok+")", err, errs.Unauthorized)
			}
		})
	}, staff.Schema)
}

func TestDisabledMemberCannotLogInAndTheirSessionsStop(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("admin@broker.example", staff.Admin)
		m := e.add("dave@broker.example", staff.Finance)
		s1 := e.login("dave@broker.example")
		s2 := e.login("dave@broker.example")
		e.clk.Advance(30 * time.Second)
		p, err := e.svc.BeginLogin(e.ctx, "dave@broker.example", password)
		if err != nil {
			t.Fatal(err)
		}

		d, err := e.svc.Disable(e.ctx, operator, m.ID)
		if err != nil || d.Status != staff.StatusDisabled {
			t.Fatalf("Disable = %+v, %v", d, err)
		}
		for _, s := range []staff.Session{s1, s2} {
			_, err := e.svc.Session(e.ctx, s.Token)
			wantCode(t, "a disabled member's session", err, errs.Unauthorized)
		}
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, e.code("dave@broker.example"))
		wantCode(t, "a pending login begun before the disabling", err, errs.Unauthorized)
		_, err = e.svc.BeginLogin(e.ctx, "dave@broker.example", password)
		wantCode(t, "BeginLogin of a disabled member", err, errs.Forbidden)
		_, err = e.svc.BeginLogin(e.ctx, "dave@broker.example", "wrong password!")
		wantCode(t, "a wrong password of a disabled member", err, errs.Unauthorized)
		// A session object kept by a caller no longer authorizes either.
		stale := s1
		stale.Member.Status = staff.StatusDisabled
		wantCode(t, "Authorize of a disabled member", staff.Authorize(stale, staff.PermView), errs.Forbidden)

		if _, err := e.svc.Enable(e.ctx, operator, m.ID); err != nil {
			t.Fatal(err)
		}
		e.login("dave@broker.example")
	}, staff.Schema)
}

func TestRoleChangeTakesEffectAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		admin := e.add("admin@broker.example", staff.Admin)
		m := e.add("sam@broker.example", staff.Support)
		s := e.login("sam@broker.example")
		adminSess := e.login("admin@broker.example")
		if _, err := e.svc.SetRole(e.ctx, adminSess.Member.Actor(), m.ID, staff.Finance); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Session(e.ctx, s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if err := staff.Authorize(got, staff.PermWithdrawalsDecide); err != nil {
			t.Errorf("after becoming finance: %v, want withdrawals.decide allowed", err)
		}
		recs := e.audit.take()
		last := recs[len(recs)-1]
		if diff := cmp.Diff(audit.Record{Actor: admin.Actor(), Action: "staff.role_changed", Subject: "staff:" + m.ID,
			Detail: map[string]string{"from": "support", "to": "finance", "email": "sam@broker.example"}}, last); diff != "" {
			t.Errorf("audit record (-want +got):\n%s", diff)
		}
	}, staff.Schema)
}

func TestWhoMayManageStaff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		admin := e.add("admin@broker.example", staff.Admin)
		comp := e.add("cora@broker.example", staff.Compliance)
		e.audit.take()

		tests := []struct {
			name string
			do   func() error
			want errs.Code
		}{
			{"a compliance member cannot add staff", func() error {
				_, err := e.svc.Add(e.ctx, staff.NewMember{Email: "x@broker.example", Name: "X", Role: staff.Admin, Password: password, Actor: comp.Actor()})
				return err
			}, errs.Forbidden},
			{"a compliance member cannot make themselves admin", func() error {
				_, err := e.svc.SetRole(e.ctx, comp.Actor(), comp.ID, staff.Admin)
				return err
			}, errs.Forbidden},
			{"an unknown staff actor", func() error {
				_, err := e.svc.Disable(e.ctx, "staff:stf_nobody", comp.ID)
				return err
			}, errs.Forbidden},
			{"no actor", func() error { _, err := e.svc.Disable(e.ctx, "", comp.ID); return err }, errs.Invalid},
			{"a malformed actor", func() error { _, err := e.svc.Disable(e.ctx, "bob", comp.ID); return err }, errs.Invalid},
			{"an admin cannot demote themselves", func() error {
				_, err := e.svc.SetRole(e.ctx, admin.Actor(), admin.ID, staff.Viewer)
				return err
			}, errs.Forbidden},
			{"the last admin cannot be demoted", func() error {
				_, err := e.svc.SetRole(e.ctx, operator, admin.ID, staff.Viewer)
				return err
			}, errs.Conflict},
			{"the last admin cannot be disabled", func() error {
				_, err := e.svc.Disable(e.ctx, operator, admin.ID)
				return err
			}, errs.Conflict},
			{"an unknown member", func() error { _, err := e.svc.Disable(e.ctx, operator, "stf_nobody"); return err }, errs.NotFound},
			{"an unknown role", func() error { _, err := e.svc.SetRole(e.ctx, operator, comp.ID, "root"); return err }, errs.Invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, tc.do(), tc.want) })
		}
		if recs := e.audit.take(); len(recs) != 0 {
			t.Errorf("refused changes left audit records: %v", actions(recs))
		}

		// An admin (by staff:<id> or by bare id) may; and with a second
		// admin the first may be demoted.
		if _, err := e.svc.SetRole(e.ctx, admin.ID, comp.ID, staff.Admin); err != nil {
			t.Fatalf("admin promotes cora: %v", err)
		}
		if _, err := e.svc.SetRole(e.ctx, comp.Actor(), admin.ID, staff.Viewer); err != nil {
			t.Fatalf("cora demotes the first admin: %v", err)
		}
		if diff := cmp.Diff([]string{
			admin.Actor() + " staff.role_changed staff:" + comp.ID,
			comp.Actor() + " staff.role_changed staff:" + admin.ID,
		}, actions(e.audit.take())); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	}, staff.Schema)
}

func TestAddChecksItsInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("first@broker.example", staff.Admin)
		ok := staff.NewMember{Email: "new@broker.example", Name: "New", Role: staff.Viewer, Password: password, Actor: operator}
		tests := []struct {
			name   string
			change func(*staff.NewMember)
			want   errs.Code
		}{
			{"a taken address in another case", func(n *staff.NewMember) { n.Email = "FIRST@broker.example" }, errs.Conflict},
			{"an 11-character password", func(n *staff.NewMember) { n.Password = "elevenchars" }, errs.Invalid},
			{"no e-mail address", func(n *staff.NewMember) { n.Email = "" }, errs.Invalid},
			{"not an e-mail address", func(n *staff.NewMember) { n.Email = "new at broker" }, errs.Invalid},
			{"no name", func(n *staff.NewMember) { n.Name = " " }, errs.Invalid},
			{"an unknown role", func(n *staff.NewMember) { n.Role = "root" }, errs.Invalid},
			{"no actor", func(n *staff.NewMember) { n.Actor = "" }, errs.Invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				n := ok
				tc.change(&n)
				_, err := e.svc.Add(e.ctx, n)
				wantCode(t, "Add", err, tc.want)
			})
		}
		// A 12-character password is enough.
		n := ok
		n.Password = "twelve chars"
		if _, err := e.svc.Add(e.ctx, n); err != nil {
			t.Errorf("Add with a 12-character password: %v", err)
		}
		list, err := e.svc.List(e.ctx)
		if err != nil || len(list) != 2 {
			t.Errorf("List = %d members, %v; want 2", len(list), err)
		}
	}, staff.Schema)
}

func TestAuditFailureUndoesTheChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		admin := e.add("admin@broker.example", staff.Admin)
		e.audit.fail = errors.New("audit store is down")
		_, err := e.svc.Add(e.ctx, staff.NewMember{Email: "x@broker.example", Name: "X", Role: staff.Viewer, Password: password, Actor: operator})
		if err == nil {
			t.Fatal("Add succeeded though its audit record could not be written")
		}
		if _, err := e.svc.GetByEmail(e.ctx, "x@broker.example"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("member exists after a failed audit: %v", err)
		}
		if _, err := e.svc.SetRole(e.ctx, operator, admin.ID, staff.Admin); err != nil {
			t.Errorf("a change that changes nothing needs no record: %v", err)
		}
		e.audit.fail = nil
		if _, err := e.svc.SetRole(e.ctx, operator, admin.ID, staff.Admin); err != nil {
			t.Fatal(err)
		}
	}, staff.Schema)
}

func TestResetTOTPMakesTheMemberEnrolAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		m := e.add("tom@broker.example", staff.Support)
		s := e.login("tom@broker.example")
		old := e.secrets["tom@broker.example"]
		r, err := e.svc.ResetTOTP(e.ctx, operator, m.ID)
		if err != nil || r.TOTPEnrolled {
			t.Fatalf("ResetTOTP = %+v, %v", r, err)
		}
		_, err = e.svc.Session(e.ctx, s.Token)
		wantCode(t, "session after a TOTP reset", err, errs.Unauthorized)

		e.clk.Advance(30 * time.Second)
		p, err := e.svc.BeginLogin(e.ctx, "tom@broker.example", password)
		if err != nil || !p.NeedsEnrolment || p.Enrolment.Secret == old {
			t.Fatalf("BeginLogin after reset = %+v, %v; want a new enrolment", p, err)
		}
		_, err = e.svc.CompleteLogin(e.ctx, p.Token, e.code("tom@broker.example"))
		wantCode(t, "the lost phone's code", err, errs.Unauthorized)
		e.secrets["tom@broker.example"] = p.Enrolment.Secret
		if _, err := e.svc.CompleteLogin(e.ctx, p.Token, e.code("tom@broker.example")); err != nil {
			t.Fatalf("the new phone's code: %v", err)
		}
	}, staff.Schema)
}

func TestPasswords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		m := e.add("pia@broker.example", staff.Finance)
		stale := e.login("pia@broker.example")
		e.clk.Advance(staff.DefaultSessionIdle)
		err := e.svc.ChangePassword(e.ctx, stale, password, "a brand new passphrase")
		wantCode(t, "ChangePassword from an expired session", err, errs.Unauthorized)
		here := e.login("pia@broker.example")
		elsewhere := e.login("pia@broker.example")

		err = e.svc.ChangePassword(e.ctx, here, "not my password", "a brand new passphrase")
		wantCode(t, "ChangePassword with a wrong current password", err, errs.Unauthorized)
		err = e.svc.ChangePassword(e.ctx, here, password, "too short")
		wantCode(t, "ChangePassword to a short password", err, errs.Invalid)
		if err := e.svc.ChangePassword(e.ctx, here, password, "a brand new passphrase"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Session(e.ctx, here.Token); err != nil {
			t.Errorf("the session that changed the password: %v, want it kept", err)
		}
		_, err = e.svc.Session(e.ctx, elsewhere.Token)
		wantCode(t, "another session after a password change", err, errs.Unauthorized)
		_, err = e.svc.BeginLogin(e.ctx, "pia@broker.example", password)
		wantCode(t, "the old password", err, errs.Unauthorized)
		if _, err := e.svc.BeginLogin(e.ctx, "pia@broker.example", "a brand new passphrase"); err != nil {
			t.Errorf("the new password: %v", err)
		}

		// An admin sets a forgotten password; it also ends the sessions.
		if _, err := e.svc.SetPassword(e.ctx, operator, m.ID, "set by the admin 1"); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Session(e.ctx, here.Token)
		wantCode(t, "session after SetPassword", err, errs.Unauthorized)
		if _, err := e.svc.BeginLogin(e.ctx, "pia@broker.example", "set by the admin 1"); err != nil {
			t.Errorf("the password the admin set: %v", err)
		}
	}, staff.Schema)
}

func TestAuditTrailOfAMembersLife(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		admin := e.add("admin@broker.example", staff.Admin)
		m := e.add("kim@broker.example", staff.Viewer)
		s := e.login("kim@broker.example")
		if err := e.svc.Logout(e.ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Session(e.ctx, s.Token)
		wantCode(t, "session after logout", err, errs.Unauthorized)
		if err := e.svc.Logout(e.ctx, s.Token); err != nil {
			t.Errorf("second Logout = %v, want nil", err)
		}
		as := e.login("admin@broker.example")
		if _, err := e.svc.SetRole(e.ctx, as.Member.Actor(), m.ID, staff.Support); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Disable(e.ctx, as.Member.Actor(), m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Enable(e.ctx, as.Member.Actor(), m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ResetTOTP(e.ctx, as.Member.Actor(), m.ID); err != nil {
			t.Fatal(err)
		}
		sub, asub := "staff:"+m.ID, "staff:"+admin.ID
		if diff := cmp.Diff([]string{
			operator + " staff.added " + asub,
			operator + " staff.added " + sub,
			m.Actor() + " staff.totp_enrolled " + sub,
			m.Actor() + " staff.login " + sub,
			m.Actor() + " staff.logout " + sub,
			admin.Actor() + " staff.totp_enrolled " + asub,
			admin.Actor() + " staff.login " + asub,
			admin.Actor() + " staff.role_changed " + sub,
			admin.Actor() + " staff.disabled " + sub,
			admin.Actor() + " staff.enabled " + sub,
			admin.Actor() + " staff.totp_reset " + sub,
		}, actions(e.audit.take())); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	}, staff.Schema)
}

// TestWithTheRealAuditLog runs logins and changes against audit.Log: its
// rules accept every record, and the records are in the chain.
func TestWithTheRealAuditLog(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		log := audit.New(db, e.clk)
		e.svc = staff.New(db, e.clk, staff.Options{Audit: log})
		m := e.add("real@broker.example", staff.Admin)
		s := e.login("real@broker.example")
		// An address with control characters and invalid UTF-8 still
		// fails as a wrong address, not as a bad audit record.
		_, err := e.svc.BeginLogin(e.ctx, "evil\n\xff@broker.example"+strings.Repeat("x", 300), password)
		wantCode(t, "BeginLogin with a hostile address", err, errs.Unauthorized)
		_, err = e.svc.BeginLogin(e.ctx, "real@broker.example", "wrong password!")
		wantCode(t, "wrong password", err, errs.Unauthorized)
		if err := e.svc.Logout(e.ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		entries, err := log.Search(e.ctx, audit.Query{Action: "staff."})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(entries) - 1; i >= 0; i-- {
			got = append(got, entries[i].Action)
		}
		if diff := cmp.Diff([]string{"staff.added", "staff.totp_enrolled", "staff.login", "staff.login_failed",
			"staff.login_failed", "staff.logout"}, got); diff != "" {
			t.Errorf("audit actions (-want +got):\n%s", diff)
		}
		mine, err := log.Search(e.ctx, audit.Query{Subject: "staff:" + m.ID})
		if err != nil || len(mine) != 5 {
			t.Errorf("entries about the member = %d, %v; want 5", len(mine), err)
		}
		rep, err := log.Verify(e.ctx, audit.VerifyOptions{})
		if err != nil || !rep.OK() {
			t.Errorf("Verify = %v, %v", rep, err)
		}
	}, audit.Schema, staff.Schema)
}

// TestOneCodeOneLoginUnderConcurrency completes two pending logins with
// the same code at the same time: exactly one gets a session.
func TestOneCodeOneLoginUnderConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		e.add("cc@broker.example", staff.Finance)
		e.login("cc@broker.example")
		e.clk.Advance(30 * time.Second)
		var tokens []string
		for range 2 {
			p, err := e.svc.BeginLogin(e.ctx, "cc@broker.example", password)
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, p.Token)
		}
		code := e.code("cc@broker.example")
		errc := make(chan error, len(tokens))
		start := make(chan struct{})
		for _, tok := range tokens {
			go func() {
				<-start
				_, err := e.svc.CompleteLogin(e.ctx, tok, code)
				errc <- err
			}()
		}
		close(start)
		var ok, replay int
		for range tokens {
			switch err := <-errc; {
			case err == nil:
				ok++
			case errs.CodeOf(err) == errs.Unauthorized && strings.Contains(errs.MessageOf(err), "already been used"):
				replay++
			default:
				t.Errorf("CompleteLogin: %v", err)
			}
		}
		if ok != 1 || replay != 1 {
			t.Errorf("%d logins and %d replays refused, want 1 and 1", ok, replay)
		}
	}, staff.Schema)
}
