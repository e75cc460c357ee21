package securitytest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
)

// A forged webhook — unsigned, signed with another secret, or a genuine
// signature replayed after the tolerance — is refused and changes
// nothing; the same event correctly signed now is accepted.
func TestForgedWebhooksAreRefused(t *testing.T) {
	s := newSystem(t)
	p, err := s.pay.Deposit(ctx, payments.DepositRequest{MethodID: "card", Amount: mustUSD(t, "100.00"), AccountCurrency: mustCur("USD"),
		Customer:  payments.Customer{ID: s.alice.ID, AccountID: "3000001", Email: "alice@example.com", Country: "DE", KYCLevel: 2},
		ReturnURL: s.url + "/inapp/deposit/return", Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := `{"id":"evt_forged","type":"payment.succeeded","created":` + itoa(now.Unix()) + `,"data":{"id":"` + p.ProviderRef + `","object":"payment",` +
		`"reference":"` + p.ID + `","method":"card","status":"succeeded","amount":"100.00","currency":"USD","receivedAmount":"100.00","seq":9,` +
		`"created":"` + now.UTC().Format(time.RFC3339) + `","updated":"` + now.UTC().Format(time.RFC3339) + `"}}`
	sign := func(secret string, at time.Time) http.Header {
		return http.Header{sandbox.SignatureHeader: {psp.Sign([]byte(secret), at, []byte(body))}}
	}
	tests := []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"unsigned", nil, http.StatusUnauthorized},
		{"garbage signature", http.Header{sandbox.SignatureHeader: {"t=1,v1=deadbeef"}}, http.StatusUnauthorized},
		{"wrong secret", sign("whsec_attacker", now), http.StatusUnauthorized},
		{"empty secret", sign("", now), http.StatusUnauthorized},
		{"replayed after the tolerance", sign(webhookSecret, now.Add(-psp.DefaultTolerance-time.Minute)), http.StatusBadRequest},
		{"dated in the future", sign(webhookSecret, now.Add(psp.DefaultTolerance+time.Minute)), http.StatusBadRequest},
	}
	before, err := s.pay.Events(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		r := s.do(http.MethodPost, "/psp/sandbox/webhook", body, tc.hdr)
		if r.status != tc.status {
			t.Errorf("%s: answered %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
		if strings.Contains(r.body, `"received":true`) {
			t.Errorf("%s: intake says it received the event", tc.name)
		}
	}
	got, err := s.pay.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := s.pay.Events(ctx, p.ID)
	if got.Status != payments.Pending || len(after) != len(before) {
		t.Fatalf("forged webhooks changed the payment: %s, %d events (was %d)", got.Status, len(after), len(before))
	}
	if r := s.do(http.MethodPost, "/psp/sandbox/webhook", body, sign(webhookSecret, now)); r.status != http.StatusOK {
		t.Errorf("the genuine webhook answered %d: %s", r.status, r.body)
	}
}
