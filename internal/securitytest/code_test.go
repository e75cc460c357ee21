package securitytest

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
)

var (
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	codeRe   = regexp.MustCompile(`\b(\d{6})\b`)
)

// hidden returns the hidden fields of a page's forms.
func hidden(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// Guessing the e-mailed withdrawal code is cut off: after the attempts
// are used up even the right code is refused, and the withdrawal does not
// leave.
func TestWithdrawalCodeGuessingIsStopped(t *testing.T) {
	s := newSystem(t)
	h, _ := s.open("withdraw", s.alice, simAliceUSD, "")
	review := s.postForm("/inapp/withdraw/review", url.Values{"s": {h}, "method": {"bank-transfer"}, "amount": {"60.00"},
		"holderName": {"Alice Example"}, "iban": {"DE89 3704 0044 0532 0130 00"}})
	if review.status != http.StatusOK {
		t.Fatalf("review answered %d:\n%s", review.status, review.body)
	}
	confirm := s.postForm("/inapp/withdraw/confirm", hidden(review.body))
	if confirm.status != http.StatusSeeOther {
		t.Fatalf("confirm answered %d:\n%s", confirm.status, confirm.body)
	}
	loc, err := url.Parse(confirm.location())
	if err != nil {
		t.Fatal(err)
	}
	ticket := loc.Query().Get("t")
	if ticket == "" {
		t.Fatalf("confirm redirected to %q without a ticket", confirm.location())
	}
	// A ticket is not a session handle, nor a handle a ticket (sealed for
	// different purposes).
	if r := s.get("/inapp/withdraw?s=" + url.QueryEscape(ticket)); r.status < 400 || r.status >= 500 {
		t.Errorf("a ticket used as a session handle answered %d", r.status)
	}
	for _, p := range []string{"/inapp/withdraw/status?t=", "/inapp/deposit/status?t="} {
		if r := s.get(p + url.QueryEscape(h)); r.status < 400 || r.status >= 500 {
			t.Errorf("a session handle used as a ticket at %s answered %d", p, r.status)
		}
	}
	if r := s.get("/inapp/withdraw/status.json?t=" + url.QueryEscape(h)); r.status != http.StatusGone {
		t.Errorf("a session handle used as a ticket at status.json answered %d", r.status)
	}
	mails := s.box.Messages()
	if len(mails) == 0 {
		t.Fatal("no code was mailed")
	}
	m := codeRe.FindStringSubmatch(mails[len(mails)-1].Mail.Text)
	if m == nil {
		t.Fatalf("no code in the mail:\n%s", mails[len(mails)-1].Mail.Text)
	}
	right := m[1]
	var cutOff bool
	for i := range 20 {
		guess := strconv.Itoa(100000 + i)
		if guess == right {
			continue
		}
		r := s.postForm("/inapp/withdraw/code", url.Values{"t": {ticket}, "code": {guess}})
		if r.status == http.StatusSeeOther || r.status >= 500 {
			t.Fatalf("guess %d answered %d", i, r.status)
		}
		if r.status == http.StatusTooManyRequests {
			cutOff = true
			break
		}
	}
	if !cutOff {
		t.Fatal("twenty wrong codes were never cut off")
	}
	if r := s.postForm("/inapp/withdraw/code", url.Values{"t": {ticket}, "code": {right}}); r.status == http.StatusSeeOther {
		t.Errorf("the right code after the attempts were used up was accepted (%d)", r.status)
	}
}
