package securitytest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/payments"
)

// Every form that changes something refuses a cross-origin POST, whether
// the browser says so with Sec-Fetch-Site or only with an Origin header;
// the same post from the page itself gets past the check.
func TestCrossOriginPostsAreRefused(t *testing.T) {
	s := newSystem(t)
	h, _ := s.open("deposit", s.alice, simAliceUSD, "")
	p, err := s.pay.Deposit(ctx, payments.DepositRequest{MethodID: "card", Amount: mustUSD(t, "10.00"), AccountCurrency: mustCur("USD"),
		Customer:  payments.Customer{ID: s.alice.ID, AccountID: "3000001", Email: "alice@example.com", Country: "DE", KYCLevel: 2},
		ReturnURL: s.url + "/inapp/deposit/return", Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/auth/login", url.Values{"email": {"alice@example.com"}, "password": {password}}},
		{"/auth/signup", url.Values{"email": {"mallory@example.com"}, "password": {password}}},
		{"/auth/reset", url.Values{"email": {"alice@example.com"}}},
		{"/auth/reset/confirm", url.Values{"token": {"x"}, "password": {password}}},
		{"/account/create", url.Values{"environment": {"demo"}, "currency": {"USD"}}},
		{"/inapp/account", url.Values{"s": {h}, "account": {"3000002"}, "next": {"deposit"}}},
		{"/inapp/deposit/confirm", url.Values{"s": {h}, "method": {"card"}, "amount": {"10.00"}, "currency": {"USD"}}},
		{"/inapp/deposit/retry", url.Values{"s": {h}}},
		{"/inapp/withdraw/details", url.Values{"s": {h}, "method": {"bank-transfer"}}},
		{"/inapp/withdraw/review", url.Values{"s": {h}, "method": {"bank-transfer"}, "amount": {"10.00"}}},
		{"/inapp/withdraw/confirm", url.Values{"s": {h}, "id": {"x"}}},
		{"/inapp/withdraw/code", url.Values{"t": {"x"}, "code": {"123456"}}},
		{"/sandbox/checkout/" + p.ProviderRef + "/card", url.Values{"number": {"4242424242424242"}, "expiry": {"12/30"}, "cvc": {"123"}}},
		{"/sandbox/checkout/" + p.ProviderRef + "/3ds", url.Values{"code": {"1234"}}},
		{"/sandbox/checkout/" + p.ProviderRef + "/wallet", url.Values{"wallet": {"a@b.c"}}},
		{"/sandbox/control/" + p.ProviderRef + "/complete", url.Values{}},
		{"/sandbox/control/settings", url.Values{"drop_webhooks": {"on"}}},
	}
	attacks := map[string]http.Header{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://sub.evil.example"}},
		"Origin only":               {"Origin": {"https://evil.example"}},
	}
	for _, f := range forms {
		for name, hdr := range attacks {
			r := s.do(http.MethodPost, f.path, f.form, hdr)
			if r.status != http.StatusForbidden {
				t.Errorf("POST %s (%s) answered %d, want 403", f.path, name, r.status)
			}
		}
	}
	// Nothing happened: the payment is still pending, no mail went out.
	if got, err := s.pay.Get(ctx, p.ID); err != nil || got.Status != payments.Pending {
		t.Errorf("payment after the attacks: %v %v", got.Status, err)
	}
	if n := len(s.box.Messages()); n != 0 {
		t.Errorf("%d mails sent by cross-origin posts", n)
	}
	// The same post from the cashier's own page passes the check.
	r := s.do(http.MethodPost, "/auth/login", url.Values{"email": {"alice@example.com"}, "password": {password}},
		http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {s.url}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), successURL) {
		t.Errorf("same-origin login answered %d to %q", r.status, r.location())
	}
}
