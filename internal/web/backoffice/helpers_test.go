package backoffice_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/money"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
	bt "github.com/opencashier/cashier/internal/web/backoffice/backofficetest"
)

var ctx = context.Background()

// The staff of the tests (see backofficetest.NewFixture).
const (
	password      = bt.Password
	viewerID      = bt.ViewerID
	supportID     = bt.SupportID
	financeID     = bt.FinanceID
	finance2ID    = bt.Finance2ID
	complianceID  = bt.ComplianceID
	adminID       = bt.AdminID
	newcomerID    = bt.NewcomerID
	newcomerEmail = bt.NewcomerEmail
)

var (
	roleIDs    = bt.RoleIDs
	roleMatrix = bt.RoleMatrix
	usd        = money.MustCurrency("USD")
)

// site is the back office on a test server over the fakes.
type site struct {
	t     testing.TB
	url   string
	h     http.Handler
	clk   *clock.Fake
	acts  *bt.Actions
	staff *bt.Staff
	fund  *bt.Funding
	push  *bt.Pushes
	pay   *bt.Payments
	users *bt.Users
	comp  *bt.Compliance
	rep   *bt.Reports
	rec   *bt.Reconcile
	audit *bt.Audit
}

func newSite(t testing.TB, mod ...func(*site, *bo.Deps, *bo.Options)) *site {
	t.Helper()
	f := bt.NewFixture()
	s := &site{t: t, clk: f.Clock, acts: f.Acts, staff: f.Staff, fund: f.Funding, push: f.Pushes, pay: f.Payments, users: f.Users,
		comp: f.Compliance, rep: f.Reports, rec: f.Reconcile, audit: f.Audit}
	d := f.Deps()
	opt := bo.Options{Clock: f.Clock, Logger: slog.New(slog.DiscardHandler), Key: []byte("0123456789abcdef0123456789abcdef"), LoginBurst: 1000, PageSize: 2}
	for _, m := range mod {
		m(s, &d, &opt)
	}
	h, err := bo.New(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	mux := http.NewServeMux()
	mux.Handle("/backoffice/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// client is a browser without JavaScript: a cookie jar, no redirects
// followed.
type client struct {
	t    testing.TB
	s    *site
	hc   *http.Client
	csrf string
}

func (s *site) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &client{t: s.t, s: s, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// as returns a client signed in as the member (a session opened in the
// fake, without the login screens).
func (s *site) as(memberID string) *client {
	c := s.client()
	sess := s.staff.SessionFor(memberID)
	u, _ := url.Parse(s.url + "/backoffice/")
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "bo_session", Value: sess.Token, Path: "/backoffice"}})
	c.csrf = sess.CSRF
	return c
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (c *client) do(req *http.Request) page {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *client) get(path string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.s.url+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form with the session's CSRF token unless the form has a
// "csrf" field of its own.
func (c *client) post(path string, form url.Values) page {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, c.s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formCSRF is the CSRF token of the first form of a page.
func formCSRF(t testing.TB, p page) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", p.body)
	}
	return m[1]
}

// code is the member's TOTP code now (on the fake clock).
func (s *site) code(secret string) string {
	s.t.Helper()
	c, err := totp.GenerateCode(secret, s.clk.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// login signs in through the screens: password, then the TOTP code.
func (c *client) login(email, memberID string) page {
	c.t.Helper()
	p := c.get("/backoffice/login")
	if p.status != http.StatusOK {
		c.t.Fatalf("login page: %d", p.status)
	}
	p = c.post("/backoffice/login", url.Values{"csrf": {formCSRF(c.t, p)}, "email": {email}, "password": {password}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="code"`) {
		c.t.Fatalf("after the password: %d\n%s", p.status, p.body)
	}
	secret := c.s.staff.SecretOf(memberID)
	if secret == "" {
		m := regexp.MustCompile(`id="secret">([A-Z2-7]+)<`).FindStringSubmatch(p.body)
		if m == nil {
			c.t.Fatalf("no enrolment secret shown:\n%s", p.body)
		}
		secret = m[1]
	}
	return c.post("/backoffice/login/totp", url.Values{"csrf": {formCSRF(c.t, p)}, "code": {c.s.code(secret)}})
}
