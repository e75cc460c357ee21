package securitytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/identity/identitytest"
)

// A one-time token opens the cashier once; replayed, or presented after
// its minute, it is refused with a page that explains why, and no second
// session is opened.
func TestOneTimeTokenReplayAndExpiry(t *testing.T) {
	s := newSystem(t)
	u := s.cashierURL("deposit", s.alice, simAliceUSD, "")
	if first := s.get(u); first.status != http.StatusOK && first.status != http.StatusSeeOther {
		t.Fatalf("first use answered %d", first.status)
	}
	if again := s.get(u); again.status != http.StatusGone {
		t.Errorf("replayed token answered %d, want 410", again.status)
	}
	late := s.cashierURL("withdraw", s.alice, simAliceUSD, "")
	s.clk.Advance(time.Minute + time.Second)
	if r := s.get(late); r.status != http.StatusGone {
		t.Errorf("expired token answered %d, want 410", r.status)
	}

	// The same token at /api/validate-token: once, then never again.
	tok := s.inAppToken(s.alice, simAliceUSD)
	body := `{"token":"` + tok + `","account":` + "3000001" + `}`
	if r := s.postJSON("/api/validate-token", body); r.status != http.StatusOK {
		t.Fatalf("validate-token answered %d: %s", r.status, r.body)
	}
	if r := s.postJSON("/api/validate-token", body); r.status != http.StatusUnauthorized || strings.Contains(r.body, "sessionToken") {
		t.Errorf("replayed validate-token answered %d: %s", r.status, r.body)
	}
	// A token spent at validate-token does not open the screens either.
	if r := s.get("/inapp/deposit?token=" + url.QueryEscape(tok)); r.status != http.StatusGone {
		t.Errorf("token spent at validate-token opened the screens: %d", r.status)
	}
}

// A cashier session ends after its lifetime: the sealed handle then opens
// nothing, on every screen.
func TestCashierSessionExpiry(t *testing.T) {
	s := newSystem(t)
	h, _ := s.open("deposit", s.alice, simAliceUSD, "")
	if r := s.get("/inapp/deposit/amount?method=card&s=" + url.QueryEscape(h)); r.status != http.StatusOK {
		t.Fatalf("inside the session: %d\n%s", r.status, r.body)
	}
	s.clk.Advance(30*time.Minute + time.Second)
	for _, p := range []string{"/inapp/deposit", "/inapp/withdraw", "/inapp/deposit/amount?method=card", "/inapp/withdraw/details?method=card"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		if r := s.get(p + sep + "s=" + url.QueryEscape(h)); r.status != http.StatusGone {
			t.Errorf("GET %s with an expired session answered %d, want 410", p, r.status)
		}
	}
}

// The cTrader login token is exchanged once at /oauth2/onetime/authorize;
// a replay gets no access token.
func TestLoginTokenReplay(t *testing.T) {
	s := newSystem(t)
	crm := s.postJSON("/oauth2/crmApiToken", `{"password":"`+identitytest.CRMPassword+`"}`)
	var c struct {
		CRMAPIToken string `json:"crmApiToken"`
	}
	if err := json.Unmarshal([]byte(crm.body), &c); err != nil || c.CRMAPIToken == "" {
		t.Fatalf("crmApiToken: %d %s", crm.status, crm.body)
	}
	tok, _, err := s.ids.IssueLoginToken(ctx, s.alice.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	path := "/oauth2/onetime/authorize?crmApiToken=" + url.QueryEscape(c.CRMAPIToken)
	if r := s.postJSON(path, `{"code":"`+tok+`"}`); r.status != http.StatusOK {
		t.Fatalf("first exchange: %d %s", r.status, r.body)
	}
	if r := s.postJSON(path, `{"code":"`+tok+`"}`); r.status == http.StatusOK || strings.Contains(r.body, "accessToken") {
		t.Errorf("replayed login token answered %d: %s", r.status, r.body)
	}
	late, _, err := s.ids.IssueLoginToken(ctx, s.alice.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(time.Minute + time.Second)
	if r := s.postJSON(path, `{"code":"`+late+`"}`); r.status != http.StatusGone {
		t.Errorf("expired login token answered %d, want 410: %s", r.status, r.body)
	}
}

// resetLink asks for a reset mail for email and returns the link's token.
func (s *system) resetToken(email string) string {
	s.t.Helper()
	if r := s.postForm("/auth/reset", url.Values{"email": {email}}); r.status != http.StatusOK {
		s.t.Fatalf("reset answered %d", r.status)
	}
	msgs := s.box.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Mail.To != email {
			continue
		}
		m := resetTokenRe.FindStringSubmatch(msgs[i].Mail.Text)
		if m == nil {
			s.t.Fatalf("reset mail without a link:\n%s", msgs[i].Mail.Text)
		}
		tok, err := url.QueryUnescape(m[1])
		if err != nil {
			s.t.Fatal(err)
		}
		return tok
	}
	s.t.Fatalf("no reset mail to %s", email)
	return ""
}

var resetTokenRe = regexp.MustCompile(`/auth/reset/confirm\?\S*?token=([^&\s]+)`)

// A password-reset link works once and for 30 minutes: replayed, it does
// not set another password; late, it sets none.
func TestResetLinkReplayAndExpiry(t *testing.T) {
	s := newSystem(t)
	tok := s.resetToken("alice@example.com")
	set := func(tok, pw string) reply {
		return s.postForm("/auth/reset/confirm", url.Values{"token": {tok}, "password": {pw}, "password_confirm": {pw}})
	}
	if r := set(tok, "first new password"); r.status != http.StatusOK {
		t.Fatalf("first use answered %d", r.status)
	}
	if r := set(tok, "second new password"); r.status == http.StatusOK {
		t.Errorf("replayed reset link answered %d", r.status)
	}
	if _, err := s.ids.Login(ctx, "alice@example.com", "second new password", false); err == nil {
		t.Error("the replayed reset link set a password")
	}
	if _, err := s.ids.Login(ctx, "alice@example.com", "first new password", false); err != nil {
		t.Errorf("the password set by the link does not work: %v", err)
	}
	late := s.resetToken("bob@example.com")
	s.clk.Advance(30*time.Minute + time.Second)
	if r := set(late, "late new password"); r.status == http.StatusOK {
		t.Errorf("expired reset link answered %d", r.status)
	}
	if _, err := s.ids.Login(ctx, "bob@example.com", password, false); err != nil {
		t.Errorf("an expired link changed Bob's password: %v", err)
	}
}

// When cTrader says a user logged out, the user's open cashier sessions
// and unused one-time tokens stop working at once.
func TestLogoutEndsCashierSessions(t *testing.T) {
	s := newSystem(t)
	h, _ := s.open("deposit", s.alice, simAliceUSD, "")
	unused := s.cashierURL("withdraw", s.alice, simAliceUSD, "")
	bobHandle, _ := s.open("deposit", s.bob, simBobJPY, "")
	r := s.postJSON("/oauth2/logout?crmApiToken="+url.QueryEscape(s.crm())+"&userId="+itoa(simAlice), "")
	if r.status != http.StatusOK {
		t.Fatalf("logout answered %d: %s", r.status, r.body)
	}
	if r := s.get("/inapp/deposit/amount?method=card&s=" + url.QueryEscape(h)); r.status != http.StatusGone {
		t.Errorf("Alice's session after logout answered %d, want 410", r.status)
	}
	if r := s.get(unused); r.status < 400 || r.status >= 500 {
		t.Errorf("Alice's unused token after logout answered %d", r.status)
	}
	if r := s.get("/inapp/deposit/amount?method=card&s=" + url.QueryEscape(bobHandle)); r.status != http.StatusOK {
		t.Errorf("Bob's session after Alice's logout answered %d, want 200", r.status)
	}
}
