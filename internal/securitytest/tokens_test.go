package securitytest

import (
	"encoding/json"
	"net/http"
	"net/url"
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
