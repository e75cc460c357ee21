package backoffice_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/web"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// A member's first login enrols an authenticator: after the password the
// page shows the QR code (a data: PNG) and the secret as text; the code
// from that secret opens a session in a cookie that is HttpOnly,
// SameSite=Strict and scoped to /backoffice (not Secure on loopback
// HTTP). The next login asks only for the code.
func TestFirstLoginEnrolsThenLoginsAskForTheCode(t *testing.T) {
	s := newSite(t)
	c := s.client()
	p := c.get("/backoffice/login")
	p = c.post("/backoffice/login", url.Values{"csrf": {formCSRF(t, p)}, "email": {newcomerEmail}, "password": {password}})
	if p.status != http.StatusOK {
		t.Fatalf("after the password: %d\n%s", p.status, excerpt(p.body))
	}
	for _, want := range []string{`id="enrol"`, `src="data:image/png;base64,`, `id="secret">`, `name="code"`, "Set up your authenticator"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the enrolment page lacks %s:\n%s", want, excerpt(p.body))
		}
	}
	// A wrong code is refused and the member stays out.
	wrong := c.post("/backoffice/login/totp", url.Values{"csrf": {formCSRF(t, p)}, "code": {"000000"}})
	if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, "That code is not right") {
		t.Errorf("wrong code: %d\n%s", wrong.status, excerpt(wrong.body))
	}
	if strings.Contains(wrong.header.Get("Set-Cookie"), "bo_session=") {
		t.Error("a wrong code set a session cookie")
	}
	enrolled := s.staff.Member(newcomerID).TOTPEnrolled
	if enrolled {
		t.Fatal("enrolled before a good code")
	}

	// Start again (the secret is shown once, right after the password).
	c = s.client()
	done := c.login(newcomerEmail, newcomerID)
	if done.status != http.StatusSeeOther || done.location() != "/backoffice/" {
		t.Fatalf("after the code: %d to %q\n%s", done.status, done.location(), excerpt(done.body))
	}
	var session *http.Cookie
	for _, ck := range (&http.Response{Header: done.header}).Cookies() {
		if ck.Name == "bo_session" {
			session = ck
		}
	}
	if session == nil || session.Value == "" {
		t.Fatalf("no session cookie: %q", done.header.Values("Set-Cookie"))
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/backoffice" || session.Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/backoffice, not Secure on loopback HTTP", session)
	}
	home := c.get("/backoffice/")
	if home.status != http.StatusOK || !strings.Contains(home.body, newcomerEmail) {
		t.Fatalf("home after login: %d\n%s", home.status, excerpt(home.body))
	}

	// The second login shows no enrolment.
	s.clk.Advance(time.Minute)
	c2 := s.client()
	p = c2.get("/backoffice/login")
	p = c2.post("/backoffice/login", url.Values{"csrf": {formCSRF(t, p)}, "email": {newcomerEmail}, "password": {password}})
	if strings.Contains(p.body, `id="enrol"`) || !strings.Contains(p.body, "Enter your code") {
		t.Errorf("a second login shows the enrolment again:\n%s", excerpt(p.body))
	}
}

func TestLoginRefusals(t *testing.T) {
	s := newSite(t)
	s.staff.SetStatus(supportID, "disabled")
	for _, tc := range []struct {
		name, email, password string
		status                int
		says                  string
	}{
		{"wrong password", "finance@broker.test", "wrong", http.StatusUnauthorized, "e-mail address or password is not right"},
		{"unknown address", "nobody@broker.test", password, http.StatusUnauthorized, "e-mail address or password is not right"},
		{"disabled member", "support@broker.test", password, http.StatusForbidden, "This account is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.client()
			p := c.get("/backoffice/login")
			p = c.post("/backoffice/login", url.Values{"csrf": {formCSRF(t, p)}, "email": {tc.email}, "password": {tc.password}})
			if p.status != tc.status || !strings.Contains(p.body, tc.says) {
				t.Errorf("%d, want %d saying %q\n%s", p.status, tc.status, tc.says, excerpt(p.body))
			}
			if strings.Contains(p.body, `name="code"`) {
				t.Error("the code step was shown")
			}
		})
	}
}

// Without a session every page leads to the login page, which brings the
// member back to the page asked for; an address off the back office is
// not followed.
func TestLoginReturnsToThePageAsked(t *testing.T) {
	s := newSite(t)
	c := s.client()
	p := c.get("/backoffice/queues/deposits")
	if p.status != http.StatusSeeOther || p.location() != "/backoffice/login?next=%2Fbackoffice%2Fqueues%2Fdeposits" {
		t.Fatalf("without a session: %d to %q", p.status, p.location())
	}
	lp := c.get(p.location())
	if !strings.Contains(lp.body, `name="next" value="/backoffice/queues/deposits"`) {
		t.Fatalf("the login form does not carry next:\n%s", excerpt(lp.body))
	}
	pw := c.post("/backoffice/login", url.Values{"csrf": {formCSRF(t, lp)}, "email": {"finance@broker.test"}, "password": {password},
		"next": {"/backoffice/queues/deposits"}})
	done := c.post("/backoffice/login/totp", url.Values{"csrf": {formCSRF(t, pw)}, "code": {s.code(s.staff.SecretOf(financeID))},
		"next": {"/backoffice/queues/deposits"}})
	if done.location() != "/backoffice/queues/deposits" {
		t.Errorf("after login: to %q, want the page asked", done.location())
	}

	for _, next := range []string{"//evil.example/", "https://evil.example/", "/backoffice/../x", "/elsewhere", "/backoffice\\@evil"} {
		c := s.client()
		lp := c.get("/backoffice/login?next=" + url.QueryEscape(next))
		if strings.Contains(lp.body, "evil") || strings.Contains(lp.body, "elsewhere") {
			t.Errorf("next=%q is carried into the form", next)
		}
	}
}

// A session that ends (idle too long) sends the member to the login page
// with a message; a POST with it does nothing.
func TestExpiredSessionGoesBackToLogin(t *testing.T) {
	s := newSite(t)
	c := s.as(financeID)
	if p := c.get("/backoffice/queues/withdrawals"); p.status != http.StatusOK {
		t.Fatalf("before: %d", p.status)
	}
	s.clk.Advance(31 * time.Minute)
	p := c.get("/backoffice/queues/withdrawals")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/backoffice/login?m=expired") {
		t.Fatalf("after expiry: %d to %q", p.status, p.location())
	}
	if !strings.Contains(strings.Join(p.header.Values("Set-Cookie"), "\n"), "bo_session=;") {
		t.Errorf("the dead session's cookie is not cleared: %q", p.header.Values("Set-Cookie"))
	}
	lp := c.get(p.location())
	if !strings.Contains(lp.body, "Your session has ended. Please sign in again.") {
		t.Errorf("the login page does not say why:\n%s", excerpt(lp.body))
	}
	c2 := s.as(financeID)
	s.clk.Advance(31 * time.Minute)
	if p := c2.post("/backoffice/queues/withdrawals/wd_small/approve", nil); p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=expired") {
		t.Errorf("POST after expiry: %d to %q", p.status, p.location())
	}
	if s.acts.Has("approve wd_small by staff:" + financeID) {
		t.Error("an expired session approved a withdrawal")
	}
}

func TestLogout(t *testing.T) {
	s := newSite(t)
	c := s.as(financeID)
	p := c.post("/backoffice/logout", nil)
	if p.status != http.StatusSeeOther || p.location() != "/backoffice/login?m=signed_out" {
		t.Fatalf("logout: %d to %q", p.status, p.location())
	}
	if !s.acts.Has("logout " + financeID) {
		t.Error("the session was not ended at the staff service")
	}
	if p := c.get("/backoffice/queues/withdrawals"); p.status != http.StatusSeeOther {
		t.Errorf("after logout the queue answers %d", p.status)
	}
}

// Every form needs the session's CSRF token: without it, with another
// session's, or posted from another site, nothing happens.
func TestCSRFIsChecked(t *testing.T) {
	s := newSite(t)
	c := s.as(financeID)
	other := s.staff.SessionFor(finance2ID)
	for _, tc := range []struct {
		name    string
		csrf    []string
		headers map[string]string
		says    string
	}{
		{"no token", []string{""}, nil, "security token"},
		{"another session's token", []string{other.CSRF}, nil, "security token"},
		{"cross-site post", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}, ""},
		{"foreign origin", nil, map[string]string{"Origin": "https://evil.example"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			if tc.csrf != nil {
				form["csrf"] = tc.csrf
			} else {
				form.Set("csrf", c.csrf)
			}
			req, err := http.NewRequest(http.MethodPost, s.url+"/backoffice/queues/withdrawals/wd_small/approve", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			p := c.do(req)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, tc.says) {
				t.Errorf("%d, want 403\n%s", p.status, excerpt(p.body))
			}
			if s.acts.Has("approve wd_small by staff:" + financeID) {
				t.Fatal("the withdrawal was approved")
			}
		})
	}
	// The login form is protected too.
	lc := s.client()
	lc.get("/backoffice/login")
	if p := lc.post("/backoffice/login", url.Values{"csrf": {"forged"}, "email": {"finance@broker.test"}, "password": {password}}); p.status != http.StatusForbidden ||
		strings.Contains(p.body, `name="code"`) {
		t.Errorf("login with a forged token: %d", p.status)
	}
	// The genuine token works.
	if p := c.post("/backoffice/queues/withdrawals/wd_small/approve", nil); p.status != http.StatusSeeOther {
		t.Errorf("with the token: %d", p.status)
	}
}

// Behind TLS or on a public host name the cookies are Secure.
func TestCookiesAreSecureOffLoopback(t *testing.T) {
	s := newSite(t)
	h, err := bo.New(bo.Deps{Staff: s.staff, Renderer: web.New(web.Options{Brand: "B"})}, bo.Options{Clock: s.clk, LoginBurst: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"backoffice.broker.example", "10.0.0.5:8080"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/backoffice/login", nil)
		h.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if len(cookies) == 0 {
			t.Fatalf("%s: no cookie set", host)
		}
		for _, ck := range cookies {
			if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("%s: cookie %s is not Secure, HttpOnly and SameSite=Strict", host, ck.Name)
			}
		}
	}
}
