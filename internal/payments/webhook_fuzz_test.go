package payments_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// FuzzWebhookIntake posts arbitrary bodies with arbitrary signature
// headers to the webhook intake: unsigned, a fuzzed header, signed with
// the wrong secret, or signed with the right secret but a stale or future
// timestamp. None of them may change the pending payment or its recorded
// events, be accepted (200), or answer 5xx.
func FuzzWebhookIntake(f *testing.F) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	db := dbtest.Open(f, sqlstore.SQLite, payments.Schema, sandbox.Schema, jobs.Schema)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	sb, err := sandbox.NewServer(db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: apiKey, WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: webhookSecret, Clock: clk, Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	sb.Routes(mux.Handle)
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: apiKey, WebhookSecret: webhookSecret, Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	reg, err := psp.NewRegistry(client)
	if err != nil {
		f.Fatal(err)
	}
	svc, err := payments.NewService(db, payments.Options{Providers: reg, Methods: payments.DefaultCatalog(), Clock: clk, Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	intake := svc.WebhookHandler()
	p, err := svc.Deposit(ctx, payments.DepositRequest{MethodID: "card", Amount: money.New(10000, usd), AccountCurrency: usd,
		Customer: customer, ReturnURL: srv.URL + "/return", Lang: "en"})
	if err != nil {
		f.Fatal(err)
	}
	before, err := svc.Events(ctx, p.ID)
	if err != nil {
		f.Fatal(err)
	}
	genuine := `{"id":"evt_fuzz","type":"payment.succeeded","created":1772445600,"data":{"id":"` + p.ProviderRef + `","object":"payment",` +
		`"reference":"` + p.ID + `","method":"card","status":"succeeded","amount":"100.00","currency":"USD","receivedAmount":"100.00","seq":9,` +
		`"created":"2026-03-02T10:00:00Z","updated":"2026-03-02T10:00:00Z"}}`
	for mode := range uint8(5) {
		f.Add([]byte(genuine), mode, "t=1772445600,v1=00")
		f.Add([]byte(`{}`), mode, "")
		f.Add([]byte(strings.Replace(genuine, "succeeded", "failed", -1)), mode, "t=1,v1=zz,v1=")
	}
	f.Add([]byte(genuine), uint8(1), psp.Sign([]byte("whsec_wrong"), clk.Now(), []byte(genuine)))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, header string) {
		req := httptest.NewRequest(http.MethodPost, "/psp/sandbox/webhook", strings.NewReader(string(body)))
		req.SetPathValue("provider", "sandbox")
		req.Header.Set("Content-Type", "application/json")
		switch mode % 5 {
		case 0: // unsigned
		case 1:
			req.Header.Set(sandbox.SignatureHeader, header)
		case 2:
			req.Header.Set(sandbox.SignatureHeader, psp.Sign([]byte("whsec_wrong"), clk.Now(), body))
		case 3:
			req.Header.Set(sandbox.SignatureHeader, psp.Sign([]byte(webhookSecret), clk.Now().Add(-psp.DefaultTolerance-time.Second), body))
		case 4:
			req.Header.Set(sandbox.SignatureHeader, psp.Sign([]byte(webhookSecret), clk.Now().Add(psp.DefaultTolerance+time.Hour), body))
		}
		w := httptest.NewRecorder()
		intake.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code == http.StatusOK {
			t.Fatalf("forged webhook (mode %d, header %q) answered %d: %s", mode%5, header, w.Code, w.Body)
		}
		got, err := svc.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != p.Status || got.ProviderAmount() != p.ProviderAmount() {
			t.Fatalf("forged webhook changed the payment: %s %s, was %s %s", got.Status, got.ProviderAmount(), p.Status, p.ProviderAmount())
		}
		after, err := svc.Events(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(len(before), len(after)); diff != "" {
			t.Fatalf("forged webhook recorded an event (-before +after count):\n%s", diff)
		}
	})
}
