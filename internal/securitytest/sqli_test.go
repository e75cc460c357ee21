package securitytest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// injections are SQL injection attempts for both databases.
var injections = []string{
	`' OR '1'='1`,
	`alice@example.com' --`,
	`'; DROP TABLE identity_users; --`,
	`" OR ""="`,
	`1 OR 1=1`,
	`1; SELECT pg_sleep(5) --`,
	`\'; DELETE FROM identity_tokens; --`,
	"x' UNION SELECT hash FROM identity_tokens --",
}

// Every string input that reaches a query — e-mail and password, tokens
// of every kind, account numbers, session handles, payment and withdrawal
// fields — is taken as data: no 5xx, no login, no session, and the users
// and their tokens are intact afterwards.
func TestSQLInjectionHasNoEffect(t *testing.T) {
	s := newSystem(t)
	crm := s.crm()
	h, _ := s.open("withdraw", s.alice, simAliceUSD, "")
	for _, in := range injections {
		ie := url.QueryEscape(in)
		replies := map[string]reply{
			"login":          s.postForm("/auth/login", url.Values{"email": {in}, "password": {in}}),
			"login password": s.postForm("/auth/login", url.Values{"email": {"alice@example.com"}, "password": {in}}),
			"signup":         s.postForm("/auth/signup", url.Values{"email": {in}, "password": {in}, "currency": {in}, "environment": {in}}),
			"reset":          s.postForm("/auth/reset", url.Values{"email": {in}}),
			"reset confirm":  s.postForm("/auth/reset/confirm", url.Values{"token": {in}, "password": {"long enough 2"}, "password_confirm": {"long enough 2"}}),
			"screens token":  s.get("/inapp/deposit?token=" + ie + "&account=" + ie),
			"screens handle": s.get("/inapp/deposit?s=" + ie),
			"ticket":         s.get("/inapp/withdraw/status?t=" + ie),
			"withdraw": s.postForm("/inapp/withdraw/review", url.Values{"s": {h}, "method": {"bank-transfer"}, "amount": {in},
				"holderName": {in}, "iban": {in}, "bic": {in}}),
			"validate-token": s.postJSON("/api/validate-token", `{"token":`+jsonString(in)+`}`),
			"crmApiToken":    s.postJSON("/oauth2/crmApiToken", `{"password":`+jsonString(in)+`}`),
			"exchange":       s.postJSON("/oauth2/onetime/authorize?crmApiToken="+url.QueryEscape(crm), `{"code":`+jsonString(in)+`}`),
			"authorize":      s.postJSON("/oauth2/authorize?crmApiToken="+url.QueryEscape(crm), `{"accessToken":`+jsonString(in)+`}`),
			"generate":       s.postJSON("/oauth2/onetime/generate?crmApiToken="+url.QueryEscape(crm)+"&inappToken="+ie, `{"userId":10000001}`),
			"logout":         s.postJSON("/oauth2/logout?crmApiToken="+url.QueryEscape(crm)+"&userId="+ie+"&accessToken="+ie, ""),
			"crm as token":   s.postJSON("/oauth2/authorize?crmApiToken="+ie, `{"accessToken":"x"}`),
			"webhook":        s.do(http.MethodPost, "/psp/sandbox/webhook", `{"id":`+jsonString(in)+`}`, http.Header{"X-Sandbox-Signature": {in}}),
			"sandbox page":   s.get("/sandbox/checkout/" + url.PathEscape(in)),
		}
		for name, r := range replies {
			if r.status >= 500 {
				t.Errorf("%s with %q answered %d: %s", name, in, r.status, r.body)
			}
			if r.status == http.StatusOK && (strings.Contains(r.body, "sessionToken") || strings.Contains(r.body, "accessToken") ||
				strings.Contains(r.body, "crmApiToken")) {
				t.Errorf("%s with %q handed out a token: %s", name, in, r.body)
			}
			if r.status == http.StatusSeeOther && strings.Contains(r.location(), "token=") {
				t.Errorf("%s with %q logged in: %s", name, in, r.location())
			}
		}
		s.clk.Advance(10 * time.Minute) // refill the form limits and end any lockout
	}
	// The users, their passwords and their tokens are intact.
	if _, err := s.ids.Login(ctx, "alice@example.com", password, false); err != nil {
		t.Errorf("Alice cannot log in after the attempts: %v", err)
	}
	if _, err := s.ids.Login(ctx, "bob@example.com", password, false); err != nil {
		t.Errorf("Bob cannot log in after the attempts: %v", err)
	}
	if r := s.postJSON("/api/validate-token", `{"token":"`+s.inAppToken(s.bob, simBobJPY)+`"}`); r.status != http.StatusOK {
		t.Errorf("a fresh token after the attempts: %d %s", r.status, r.body)
	}
}
