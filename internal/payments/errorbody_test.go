package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestSeedErrorBodies(t *testing.T) {
	rec := httptest.NewRecorder()
	PaymentFailed("", true).Write(rec, http.StatusUnprocessableEntity)
	want := `{"error":"Payment Failed","message":"Payment processing failed. Please try again.","code":"PAYMENT_FAILED","retryAllowed":true}` + "\n"
	if rec.Code != 422 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("PaymentFailed: %d %s", rec.Code, rec.Body)
	}

	body, err := InsufficientFunds(amt(t, "1000.00", usd), amt(t, "1500.00", usd))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(body)
	want = `{"error":"Insufficient Funds","message":"Insufficient funds for withdrawal.","code":"INSUFFICIENT_FUNDS","availableBalance":1000.00,"requestedAmount":1500.00,"currency":"USD"}`
	if string(got) != want {
		t.Errorf("InsufficientFunds:\n got %s\nwant %s", got, want)
	}
	jpyBody, _ := InsufficientFunds(amt(t, "1000", jpy), amt(t, "1500", jpy))
	if jpyBody.AvailableBalance != "1000" || jpyBody.RequestedAmount != "1500" {
		t.Errorf("JPY amounts: %s %s", jpyBody.AvailableBalance, jpyBody.RequestedAmount)
	}
	if _, err := InsufficientFunds(amt(t, "1.00", usd), amt(t, "1.00", eur)); !errs.Is(err, errs.Invalid) {
		t.Errorf("mixed currencies: %v", err)
	}

	tests := []struct {
		status Status
		reason string
		ok     bool
		retry  bool
		msg    string
	}{
		{Declined, psp.DeclineInsufficientFunds, true, true, "insufficient funds"},
		{Declined, psp.DeclineExpiredCard, true, true, "expired"},
		{Declined, psp.DeclineAccountClosed, true, false, "account is closed"},
		{Failed, "gateway_timeout", true, true, "Payment processing failed"},
		{Expired, "", true, true, "not completed in time"},
		{Expired, ReasonNotStarted, true, true, "could not be started"},
		{Succeeded, "", false, false, ""},
		{Review, ReasonAmountMismatch, false, false, ""},
		{Pending, "", false, false, ""},
	}
	for _, tc := range tests {
		b, ok := FailureOf(Payment{Status: tc.status, Reason: tc.reason})
		if ok != tc.ok {
			t.Errorf("%s/%s: ok %v", tc.status, tc.reason, ok)
			continue
		}
		if !ok {
			continue
		}
		if b.Code != CodePaymentFailed || *b.RetryAllowed != tc.retry || !strings.Contains(b.Message, tc.msg) || b.Reason != tc.reason {
			t.Errorf("%s/%s: %+v", tc.status, tc.reason, b)
		}
	}
}

func TestWebhookIntakeRefusesOversizedBodies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db)
		mux := http.NewServeMux()
		e.svc.Routes(mux.Handle)
		req := httptest.NewRequestWithContext(context.Background(), "POST", "/psp/fake/webhook", bytes.NewReader(make([]byte, MaxWebhookBody+1)))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("oversized webhook: %d %s", rec.Code, rec.Body)
		}
		// The fake provider verifies nothing: every webhook is refused as unsigned.
		req = httptest.NewRequestWithContext(context.Background(), "POST", "/psp/fake/webhook", strings.NewReader(`{}`))
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("unsigned webhook: %d", rec.Code)
		}
	}, Schema, jobs.Schema)
}
