package securitytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/identity/identitytest"
)

var helpLink = regexp.MustCompile(`href="/inapp/help\?back=[^"]*"`)

// crm returns a crmApiToken from the endpoint, as cTrader gets one.
func (s *system) crm() string {
	s.t.Helper()
	r := s.postJSON("/oauth2/crmApiToken", `{"password":"`+identitytest.CRMPassword+`"}`)
	var c struct {
		Token string `json:"crmApiToken"`
	}
	if err := json.Unmarshal([]byte(r.body), &c); err != nil || c.Token == "" {
		s.t.Fatalf("crmApiToken: %d %s", r.status, r.body)
	}
	return c.Token
}

// Alice cannot reach Bob's account or data through any door: her token
// with his account (screens and validate-token), her session choosing his
// account, her inappToken generating a token for him, her access token
// logging him out.
func TestNoAccessToAnotherUsersData(t *testing.T) {
	s := newSystem(t)
	bob := strconv.FormatInt(simBobJPY, 10)
	for _, screen := range []string{"deposit", "withdraw"} {
		r := s.get("/inapp/" + screen + "?token=" + url.QueryEscape(s.inAppToken(s.alice, simAliceUSD)) + "&account=" + bob)
		if r.status != http.StatusForbidden || strings.Contains(r.body, bob) && strings.Contains(r.body, "JPY") {
			t.Errorf("Alice's token with Bob's account on %s answered %d", screen, r.status)
		}
	}
	r := s.postJSON("/api/validate-token", `{"token":"`+s.inAppToken(s.alice, simAliceUSD)+`","account":`+bob+`}`)
	if r.status != http.StatusForbidden || strings.Contains(r.body, "sessionToken") {
		t.Errorf("validate-token for Bob's account with Alice's token: %d %s", r.status, r.body)
	}
	h, _ := s.open("deposit", s.alice, simAliceUSD, "")
	for _, next := range []string{"deposit", "withdraw"} {
		r := s.postForm("/inapp/account", url.Values{"s": {h}, "account": {bob}, "next": {next}})
		if r.status < 400 || r.status >= 500 {
			t.Errorf("Alice's session choosing Bob's account for %s answered %d (%s)", next, r.status, r.location())
		}
	}
	// The other screens take the account from the sealed handle only: an
	// account parameter beside Alice's handle is ignored.
	for _, p := range []string{"/inapp/deposit/amount?method=card", "/inapp/withdraw/details?method=card"} {
		r := s.get(p + "&account=" + bob + "&login=" + bob + "&s=" + url.QueryEscape(h))
		body := helpLink.ReplaceAllString(r.body, "") // the help link carries the page's own address back
		if r.status != http.StatusOK || strings.Contains(body, bob) {
			t.Errorf("GET %s with Bob's account beside Alice's handle answered %d showing Bob's account:\n%s", p, r.status, body)
		}
	}

	// The cTrader side: Alice's inappToken cannot mint a token for Bob.
	crm := s.crm()
	login, _, err := s.ids.IssueLoginToken(ctx, s.alice.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	ex := s.postJSON("/oauth2/onetime/authorize?crmApiToken="+url.QueryEscape(crm), `{"code":"`+login+`"}`)
	var out struct {
		AccessToken string `json:"accessToken"`
		InAppToken  string `json:"inappToken"`
	}
	if err := json.Unmarshal([]byte(ex.body), &out); err != nil || out.InAppToken == "" {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	gen := s.postJSON("/oauth2/onetime/generate?crmApiToken="+url.QueryEscape(crm)+"&inappToken="+url.QueryEscape(out.InAppToken),
		`{"userId":`+strconv.FormatInt(simBob, 10)+`}`)
	if gen.status == http.StatusOK || strings.Contains(gen.body, `"token"`) {
		t.Errorf("Alice's inappToken generated a token for Bob: %d %s", gen.status, gen.body)
	}
	own := s.postJSON("/oauth2/onetime/generate?crmApiToken="+url.QueryEscape(crm)+"&inappToken="+url.QueryEscape(out.InAppToken),
		`{"userId":`+strconv.FormatInt(simAlice, 10)+`}`)
	if own.status != http.StatusOK {
		t.Errorf("Alice's inappToken for Alice: %d %s", own.status, own.body)
	}
	// Alice's access token authorizes Alice only. (/oauth2/logout is
	// cTrader's word that a user logged out, authenticated by the
	// crmApiToken; it names the user, so it is not a door to Bob.)
	au := s.postJSON("/oauth2/authorize?crmApiToken="+url.QueryEscape(crm), `{"accessToken":"`+out.AccessToken+`"}`)
	if !strings.Contains(au.body, `"userId":`+strconv.FormatInt(simAlice, 10)) {
		t.Errorf("Alice's access token authorized %d %s", au.status, au.body)
	}
	// Without a crmApiToken none of the cTrader endpoints answers data.
	for _, p := range []string{"/oauth2/onetime/authorize", "/oauth2/authorize", "/oauth2/onetime/generate", "/oauth2/logout"} {
		r := s.postJSON(p+"?inappToken="+url.QueryEscape(out.InAppToken)+"&userId=1", `{"code":"`+login+`","accessToken":"`+out.AccessToken+`","userId":1}`)
		if r.status == http.StatusOK {
			t.Errorf("POST %s without crmApiToken answered 200: %s", p, r.body)
		}
	}
}
