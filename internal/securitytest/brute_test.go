package securitytest

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/identity/identitytest"
)

// Guessing the crm password at /oauth2/crmApiToken is cut off after ten
// tries from one address: the eleventh attempt, even with the right
// password, is answered 429 until the limit refills.
func TestCRMPasswordGuessingIsRateLimited(t *testing.T) {
	s := newSystem(t)
	for i := range 10 {
		if r := s.postJSON("/oauth2/crmApiToken", `{"password":"guess-`+strconv.Itoa(i)+`"}`); r.status != http.StatusForbidden {
			t.Fatalf("guess %d answered %d, want 403: %s", i, r.status, r.body)
		}
	}
	right := `{"password":"` + identitytest.CRMPassword + `"}`
	if r := s.postJSON("/oauth2/crmApiToken", right); r.status != http.StatusTooManyRequests {
		t.Fatalf("after ten guesses the right password answered %d, want 429: %s", r.status, r.body)
	}
	s.clk.Advance(6 * time.Second)
	if r := s.postJSON("/oauth2/crmApiToken", right); r.status != http.StatusOK {
		t.Errorf("after the limit refilled: %d %s", r.status, r.body)
	}
}

// Password guessing on the login screen is stopped two ways: the form
// limit per address (429), and the account's lockout after five wrong
// passwords, which refuses even the right password until it ends.
func TestLoginGuessingIsStopped(t *testing.T) {
	s := newSystem(t)
	statuses := map[int]int{}
	for i := range 12 {
		r := s.postForm("/auth/login", url.Values{"email": {"alice@example.com"}, "password": {"guess-" + strconv.Itoa(i)}})
		statuses[r.status]++
		if r.status == http.StatusSeeOther || r.status >= 500 {
			t.Fatalf("guess %d answered %d", i, r.status)
		}
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Errorf("twelve guesses from one address were never limited: %v", statuses)
	}
	// The form limit refilled, the lockout (15 minutes) not yet over.
	s.clk.Advance(time.Minute)
	right := url.Values{"email": {"alice@example.com"}, "password": {password}}
	if r := s.postForm("/auth/login", right); r.status == http.StatusSeeOther || r.status >= 500 {
		t.Errorf("the right password during the lockout answered %d (%s)", r.status, r.location())
	}
	s.clk.Advance(15 * time.Minute)
	if r := s.postForm("/auth/login", right); r.status != http.StatusSeeOther {
		t.Errorf("the right password after the lockout answered %d, want 303", r.status)
	}
}

// Reset mails to one address are limited: a flood of reset requests sends
// at most three mails.
func TestResetFloodIsRateLimited(t *testing.T) {
	s := newSystem(t)
	var limited bool
	for range 6 {
		r := s.do(http.MethodPost, "/auth/reset", url.Values{"email": {"alice@example.com"}}, nil)
		if r.status == http.StatusTooManyRequests {
			limited = true
		} else if r.status != http.StatusOK {
			t.Fatalf("reset answered %d", r.status)
		}
	}
	if !limited {
		t.Error("six reset requests for one address were never limited")
	}
	sent := 0
	for _, m := range s.box.Messages() {
		if m.Mail.To == "alice@example.com" {
			sent++
		}
	}
	if sent > 3 {
		t.Errorf("%d reset mails sent to one address, want at most 3", sent)
	}
}

// Guessing in-app tokens at /api/validate-token is cut off: after twenty
// tries from one address even a genuine token is answered 429 until the
// limit refills.
func TestTokenGuessingIsRateLimited(t *testing.T) {
	s := newSystem(t)
	for i := range 20 {
		if r := s.postJSON("/api/validate-token", `{"token":"guess-`+strconv.Itoa(i)+`"}`); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d answered %d: %s", i, r.status, r.body)
		}
	}
	genuine := `{"token":"` + s.inAppToken(s.alice, simAliceUSD) + `","account":3000001}`
	if r := s.postJSON("/api/validate-token", genuine); r.status != http.StatusTooManyRequests {
		t.Fatalf("after twenty guesses a genuine token answered %d, want 429", r.status)
	}
	s.clk.Advance(time.Second)
	if r := s.postJSON("/api/validate-token", genuine); r.status != http.StatusOK {
		t.Errorf("after the limit refilled: %d %s", r.status, r.body)
	}
}
