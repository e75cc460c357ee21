package payments_test

// End-to-end tests of the payment layer with the sandbox provider over
// real HTTP on 127.0.0.1: the cashier's service starts a payment through
// the sandbox's API, the test plays the customer's browser on the hosted
// pages and the tester on the control page, the sandbox's webhooks arrive
// at the cashier's intake through the job runner, and the payment's state
// is checked. Time is a fake clock; delays are jobs made due by moving it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var (
	usd  = money.MustCurrency("USD")
	usdt = money.MustCurrency("USDT")
	jpy  = money.MustCurrency("JPY")
)

func amt(t *testing.T, s string, c money.Currency) money.Amount {
	t.Helper()
	a, err := money.Parse(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const (
	apiKey        = "sk_test_e2e"
	webhookSecret = "whsec_e2e"
)

// intakeCall is one request the webhook intake answered.
type intakeCall struct {
	Status  int
	Outcome payments.Outcome
}

// world is a cashier with the sandbox, on one test server.
type world struct {
	t       *testing.T
	db      *sqlstore.DB
	clk     *clock.Fake
	srv     *httptest.Server
	sandbox *sandbox.Server
	client  *sandbox.Client
	svc     *payments.Service
	runner  *jobs.Runner
	browser *http.Client

	mu         sync.Mutex
	finals     map[string]int // final status changes the observer heard, per payment
	intake     []intakeCall
	failIntake int // answer this many webhooks 503 before the intake sees them
}

func newWorld(t *testing.T, db *sqlstore.DB, opts ...func(*sandbox.Options)) *world {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := &world{t: t, db: db, clk: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), finals: map[string]int{}}
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)

	sbOpts := sandbox.Options{
		BaseURL: w.srv.URL + sandbox.Prefix, APIKey: apiKey, WebhookURL: w.srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: webhookSecret, Clock: w.clk, Logger: logger,
	}
	for _, o := range opts {
		o(&sbOpts)
	}
	var err error
	if w.sandbox, err = sandbox.NewServer(db, sbOpts); err != nil {
		t.Fatal(err)
	}
	if w.client, err = sandbox.NewClient(sandbox.ClientOptions{BaseURL: w.srv.URL + sandbox.Prefix, APIKey: apiKey, WebhookSecret: webhookSecret, Clock: w.clk}); err != nil {
		t.Fatal(err)
	}
	reg, err := psp.NewRegistry(w.client)
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = payments.NewService(db, payments.Options{
		Providers: reg, Methods: payments.DefaultCatalog(), Clock: w.clk, Logger: logger,
		Rates: payments.StaticRates{"USDT/USD": money.MustParseRate("1"), "BTC/USD": money.MustParseRate("65000")},
		Observer: payments.ObserverFunc(func(ctx context.Context, tx *sqlstore.Tx, c payments.Change) error {
			if c.Payment.Status.Final() {
				w.mu.Lock()
				w.finals[c.Payment.ID]++
				w.mu.Unlock()
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.runner = jobs.NewRunner(db, jobs.Options{Clock: w.clk, Workers: 1, Logger: logger})
	for _, handlers := range []map[string]jobs.Handler{w.svc.JobHandlers(), w.sandbox.JobHandlers()} {
		for kind, h := range handlers {
			w.runner.Handle(kind, h)
		}
	}

	w.sandbox.Routes(mux.Handle)
	intake := openapitest.New(t, openapitest.Options{}).Handler(w.svc.WebhookHandler())
	mux.Handle(payments.WebhookPattern, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		fail := w.failIntake > 0
		if fail {
			w.failIntake--
		}
		w.mu.Unlock()
		if fail {
			http.Error(rw, "cashier is restarting", http.StatusServiceUnavailable)
			w.record(intakeCall{Status: http.StatusServiceUnavailable})
			return
		}
		rec := httptest.NewRecorder()
		intake.ServeHTTP(rec, r)
		var body struct {
			Outcome payments.Outcome `json:"outcome"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		w.record(intakeCall{Status: rec.Code, Outcome: body.Outcome})
		for k, v := range rec.Header() {
			rw.Header()[k] = v
		}
		rw.WriteHeader(rec.Code)
		_, _ = rw.Write(rec.Body.Bytes())
	}))
	mux.HandleFunc("GET /return", func(rw http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(rw, "back at the cashier") })

	w.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

func (w *world) record(c intakeCall) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.intake = append(w.intake, c)
}

func (w *world) intakeCalls() []intakeCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]intakeCall(nil), w.intake...)
}

func (w *world) finalCount(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finals[id]
}

// drain runs due jobs (webhook deliveries, timers, polls) until none is left.
func (w *world) drain() {
	w.t.Helper()
	for range 200 {
		n, err := w.runner.RunOnce(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	w.t.Fatal("jobs never ran dry")
}

// wait moves the clock and runs what became due.
func (w *world) wait(d time.Duration) {
	w.t.Helper()
	w.clk.Advance(d)
	w.drain()
}

var customer = payments.Customer{ID: "usr_e2e", AccountID: "2000001", Email: "trader@example.com", Name: "Trader", Country: "DE", KYCLevel: 2}

func (w *world) deposit(method string, a money.Amount) payments.Payment {
	w.t.Helper()
	p, err := w.svc.Deposit(context.Background(), payments.DepositRequest{
		MethodID: method, Amount: a, AccountCurrency: usd, Customer: customer, ReturnURL: w.srv.URL + "/return", Lang: "en",
	})
	if err != nil {
		w.t.Fatalf("deposit by %s: %v", method, err)
	}
	if p.Status != payments.Pending {
		w.t.Fatalf("deposit by %s after start: %s", method, p.Status)
	}
	return p
}

func (w *world) get(id string) payments.Payment {
	w.t.Helper()
	p, err := w.svc.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

type page struct {
	Status   int
	Location string
	Body     string
}

func (w *world) do(method, target string, form url.Values) page {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.browser.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(b)}
}

// payByCard opens the hosted page and submits a test card.
func (w *world) payByCard(p payments.Payment, number string) page {
	w.t.Helper()
	form := w.do("GET", p.RedirectURL, nil)
	if form.Status != http.StatusOK || !strings.Contains(form.Body, `name="number"`) {
		w.t.Fatalf("hosted card page: %d %.200s", form.Status, form.Body)
	}
	return w.do("POST", p.RedirectURL+"/card", url.Values{"number": {number}, "expiry": {"12/30"}, "cvc": {"123"}, "name": {"T. Rader"}})
}

// control presses a button on the sandbox's control page.
func (w *world) control(p payments.Payment, action string, extra url.Values) {
	w.t.Helper()
	if extra == nil {
		extra = url.Values{}
	}
	res := w.do("POST", w.srv.URL+sandbox.Prefix+"/control/"+p.ProviderRef+"/"+action, extra)
	if res.Status != http.StatusSeeOther || strings.Contains(res.Location, "error=") {
		w.t.Fatalf("control %s: %d %s", action, res.Status, res.Location)
	}
}

func (w *world) expectReturn(res page, p payments.Payment) {
	w.t.Helper()
	want := w.srv.URL + "/return?payment=" + p.ID
	if res.Status != http.StatusSeeOther || res.Location != want {
		w.t.Fatalf("after the hosted page: %d to %q, want 303 to %q", res.Status, res.Location, want)
	}
}

func TestCardOutcomesEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		tests := []struct {
			name   string
			number string
			status payments.Status
			reason string
			retry  bool
		}{
			{"success", "4242 4242 4242 4242", payments.Succeeded, "", false},
			{"mastercard success", "5555555555554444", payments.Succeeded, "", false},
			{"insufficient funds", "4000 0000 0000 9995", payments.Declined, psp.DeclineInsufficientFunds, true},
			{"do not honour", "4000000000000002", payments.Declined, psp.DeclineDoNotHonour, true},
			{"expired card", "4000-0000-0000-0069", payments.Declined, psp.DeclineExpiredCard, true},
			{"processing error", "4000000000000119", payments.Failed, psp.DeclineProviderError, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := w.deposit("card", amt(t, "100.00", usd))
				if p.Next != psp.NextRedirect || !strings.HasPrefix(p.RedirectURL, w.srv.URL+"/sandbox/checkout/sbp_") {
					t.Fatalf("next step %s %q", p.Next, p.RedirectURL)
				}
				w.expectReturn(w.payByCard(p, tc.number), p)
				w.drain()
				got := w.get(p.ID)
				if got.Status != tc.status || got.Reason != tc.reason {
					t.Fatalf("status %s reason %q, want %s %q", got.Status, got.Reason, tc.status, tc.reason)
				}
				if n := w.finalCount(p.ID); n != 1 {
					t.Errorf("observer heard %d final changes, want 1", n)
				}
				digits := strings.NewReplacer(" ", "", "-", "").Replace(tc.number)
				if got.Instrument.Last4 != digits[12:] {
					t.Errorf("instrument %+v, want last4 %s", got.Instrument, digits[12:])
				}
				if tc.status == payments.Succeeded {
					if got.Received != p.Gross || !strings.HasPrefix(got.Instrument.Token, "ctok_") {
						t.Errorf("received %s token %q", got.Received, got.Instrument.Token)
					}
					return
				}
				body, ok := payments.FailureOf(got)
				if !ok || body.Code != payments.CodePaymentFailed || *body.RetryAllowed != tc.retry || body.Reason != tc.reason {
					t.Errorf("FailureOf = %+v", body)
				}
			})
		}
		assertNoCardNumbers(t, db)
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

// assertNoCardNumbers looks through every table the cashier and the
// sandbox write for a test card's full number.
func assertNoCardNumbers(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	queries := []string{
		`SELECT body FROM payment_events`, `SELECT body FROM sandbox_events`, `SELECT payload FROM jobs`,
		`SELECT COALESCE(instrument, '') || COALESCE(instructions, '') || message FROM payments`,
		`SELECT card_brand || card_last4 || card_token || destination || message FROM sandbox_payments`,
		`SELECT token || brand || last4 FROM sandbox_cards`,
	}
	seen := 0
	for _, q := range queries {
		rows, err := db.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			seen++
			for _, c := range sandbox.TestCards {
				if bytes.Contains(b, []byte(c.Number)) || bytes.Contains(b, []byte(sandbox.FormatCardNumber(c.Number))) {
					t.Errorf("card number %s stored: %s → %.200s", c.Number, q, b)
				}
			}
		}
		rows.Close()
	}
	if seen == 0 {
		t.Error("no rows searched")
	}
}

func TestThreeDSecureEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		t.Run("right code", func(t *testing.T) {
			p := w.deposit("card", amt(t, "50.00", usd))
			res := w.payByCard(p, "4000000000003220")
			if res.Status != http.StatusSeeOther || res.Location != "/sandbox/checkout/"+p.ProviderRef+"/3ds" {
				t.Fatalf("card with 3-D Secure: %d %s", res.Status, res.Location)
			}
			otp := w.do("GET", w.srv.URL+res.Location, nil)
			if otp.Status != http.StatusOK || !strings.Contains(otp.Body, "ending in 3220") {
				t.Fatalf("3-D Secure page: %d %.300s", otp.Status, otp.Body)
			}
			wrong := w.do("POST", w.srv.URL+res.Location, url.Values{"code": {"000000"}})
			if wrong.Status != http.StatusUnprocessableEntity || !strings.Contains(wrong.Body, "2 attempts left") {
				t.Fatalf("wrong code: %d %.300s", wrong.Status, wrong.Body)
			}
			w.drain()
			if got := w.get(p.ID); got.Status != payments.Pending {
				t.Fatalf("during 3-D Secure: %s", got.Status)
			}
			w.expectReturn(w.do("POST", w.srv.URL+res.Location, url.Values{"code": {sandbox.ThreeDSCode}}), p)
			w.drain()
			if got := w.get(p.ID); got.Status != payments.Succeeded || w.finalCount(p.ID) != 1 {
				t.Errorf("after the code: %s (finals %d)", got.Status, w.finalCount(p.ID))
			}
		})
		t.Run("three wrong codes", func(t *testing.T) {
			p := w.deposit("card", amt(t, "50.00", usd))
			res := w.payByCard(p, "4000000000003220")
			for i := range sandbox.MaxOTPAttempts {
				r := w.do("POST", w.srv.URL+res.Location, url.Values{"code": {"111111"}})
				if i < sandbox.MaxOTPAttempts-1 && r.Status != http.StatusUnprocessableEntity {
					t.Fatalf("wrong code %d: %d", i+1, r.Status)
				}
				if i == sandbox.MaxOTPAttempts-1 {
					w.expectReturn(r, p)
				}
			}
			w.drain()
			if got := w.get(p.ID); got.Status != payments.Declined || got.Reason != psp.DeclineAuthenticationFailed {
				t.Errorf("after three wrong codes: %s %s", got.Status, got.Reason)
			}
		})
		t.Run("cancelled", func(t *testing.T) {
			p := w.deposit("card", amt(t, "50.00", usd))
			res := w.payByCard(p, "4000000000003220")
			w.expectReturn(w.do("POST", w.srv.URL+res.Location, url.Values{"action": {"cancel"}}), p)
			w.drain()
			if got := w.get(p.ID); got.Status != payments.Declined || got.Reason != psp.DeclineAuthenticationFailed {
				t.Errorf("after cancel: %s %s", got.Status, got.Reason)
			}
		})
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestDelayedCardEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		p := w.deposit("card", amt(t, "75.00", usd))
		w.expectReturn(w.payByCard(p, "4000000000000259"), p)
		w.drain()
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("right after paying: %s, want pending", got.Status)
		}
		w.wait(sandbox.DefaultDelayedOutcome - time.Second)
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("a second before the delay: %s, want pending", got.Status)
		}
		w.wait(time.Second)
		if got := w.get(p.ID); got.Status != payments.Succeeded || w.finalCount(p.ID) != 1 {
			t.Errorf("after the delay: %s (finals %d)", got.Status, w.finalCount(p.ID))
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestBankTransferEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		tests := []struct {
			name     string
			action   string
			form     url.Values
			status   payments.Status
			received string
		}{
			{"arrives in full", "arrive", nil, payments.Succeeded, "100.00"},
			{"half arrives", "arrive-partial", nil, payments.Review, "50.00"},
			{"too much arrives", "arrive-over", nil, payments.Review, "110.00"},
			{"a typed amount arrives", "arrive-amount", url.Values{"amount": {"99.99"}}, payments.Review, "99.99"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := w.deposit("bank-transfer", amt(t, "100.00", usd))
				in := p.Instructions
				if p.Next != psp.NextInstructions || in == nil || !strings.HasPrefix(in.Reference, "SBX-") || in.IBAN != sandbox.DefaultBank.IBAN ||
					in.Amount != amt(t, "100.00", usd) || !in.ExpiresAt.Equal(w.clk.Now().Add(sandbox.DefaultBankTransferTTL)) {
					t.Fatalf("instructions %+v", in)
				}
				// The customer's page shows the same instructions.
				if pg := w.do("GET", w.srv.URL+"/sandbox/checkout/"+p.ProviderRef, nil); !strings.Contains(pg.Body, in.Reference) {
					t.Errorf("instructions page lacks the reference: %.300s", pg.Body)
				}
				w.drain()
				if got := w.get(p.ID); got.Status != payments.Pending {
					t.Fatalf("before the money: %s", got.Status)
				}
				w.control(p, tc.action, tc.form)
				w.drain()
				got := w.get(p.ID)
				if got.Status != tc.status || got.Received != amt(t, tc.received, usd) {
					t.Fatalf("status %s received %s, want %s %s", got.Status, got.Received, tc.status, tc.received)
				}
				if tc.status == payments.Review && (got.Reason != payments.ReasonAmountMismatch || !strings.Contains(got.Message, "asked for 100.00 USD")) {
					t.Errorf("review reason %s %q", got.Reason, got.Message)
				}
				wantFinal := 0
				if tc.status.Final() {
					wantFinal = 1
				}
				if n := w.finalCount(p.ID); n != wantFinal {
					t.Errorf("observer heard %d final changes, want %d", n, wantFinal)
				}
			})
		}
		t.Run("never arrives", func(t *testing.T) {
			p := w.deposit("bank-transfer", amt(t, "100.00", usd))
			w.wait(sandbox.DefaultBankTransferTTL)
			if got := w.get(p.ID); got.Status != payments.Expired {
				t.Errorf("after the transfer window: %s, want expired", got.Status)
			}
		})
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestBankTransferArrivesAfterConfiguredDelay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db, func(o *sandbox.Options) { o.BankArrivalDelay = 3 * time.Hour })
		p := w.deposit("bank-transfer", amt(t, "250.00", usd))
		w.wait(3*time.Hour - time.Minute)
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("before the delay: %s", got.Status)
		}
		w.wait(time.Minute)
		if got := w.get(p.ID); got.Status != payments.Succeeded || got.Received != amt(t, "250.00", usd) {
			t.Errorf("after the delay: %s %s", got.Status, got.Received)
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestEWalletEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		for _, tc := range []struct {
			action string
			status payments.Status
			reason string
		}{
			{"approve", payments.Succeeded, ""},
			{"cancel", payments.Declined, psp.DeclineCancelled},
		} {
			t.Run(tc.action, func(t *testing.T) {
				p := w.deposit("ewallet", amt(t, "40.00", usd))
				pg := w.do("GET", p.RedirectURL, nil)
				if pg.Status != http.StatusOK || !strings.Contains(pg.Body, "Approve") || !strings.Contains(pg.Body, "$40.00") {
					t.Fatalf("wallet page: %d %.300s", pg.Status, pg.Body)
				}
				w.expectReturn(w.do("POST", p.RedirectURL+"/wallet", url.Values{"action": {tc.action}}), p)
				w.drain()
				if got := w.get(p.ID); got.Status != tc.status || got.Reason != tc.reason {
					t.Errorf("after %s: %s %s", tc.action, got.Status, got.Reason)
				}
			})
		}
		t.Run("abandoned", func(t *testing.T) {
			p := w.deposit("ewallet", amt(t, "40.00", usd))
			w.wait(sandbox.DefaultCheckoutTTL)
			if got := w.get(p.ID); got.Status != payments.Expired {
				t.Errorf("abandoned wallet page: %s, want expired", got.Status)
			}
		})
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestCryptoEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		p := w.deposit("crypto", amt(t, "250.000000", usdt))
		in := p.Instructions
		if in == nil || !strings.HasPrefix(in.Address, "0x") || len(in.Address) != 42 || in.RequiredConfirmations != sandbox.DefaultCryptoConfirmations {
			t.Fatalf("crypto instructions %+v", in)
		}
		if p.AccountAmount != amt(t, "250.00", usd) || p.FX == nil {
			t.Errorf("USDT deposit into a USD account: %s, fx %+v", p.AccountAmount, p.FX)
		}
		w.control(p, "arrive", nil)
		w.drain()
		for i := 1; i < sandbox.DefaultCryptoConfirmations; i++ {
			w.control(p, "confirm", nil)
			w.drain()
			got := w.get(p.ID)
			if got.Status != payments.Pending || got.Confirmations != i {
				t.Fatalf("after %d confirmations: %s with %d", i, got.Status, got.Confirmations)
			}
		}
		w.control(p, "confirm", nil)
		w.drain()
		got := w.get(p.ID)
		if got.Status != payments.Succeeded || got.Confirmations != sandbox.DefaultCryptoConfirmations || w.finalCount(p.ID) != 1 {
			t.Errorf("fully confirmed: %s with %d confirmations (finals %d)", got.Status, got.Confirmations, w.finalCount(p.ID))
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func (w *world) payout(method string, debit money.Amount, dest psp.Destination) payments.Payment {
	w.t.Helper()
	p, err := w.svc.Payout(context.Background(), payments.PayoutRequest{MethodID: method, Debit: debit, Currency: debit.Currency(), Destination: dest, Customer: customer})
	if err != nil {
		w.t.Fatalf("payout by %s: %v", method, err)
	}
	return p
}

// cardToken makes a card deposit with number and returns the card's token.
func (w *world) cardToken(number string) string {
	w.t.Helper()
	p := w.deposit("card", amt(w.t, "20.00", usd))
	w.payByCard(p, number)
	w.drain()
	got := w.get(p.ID)
	if got.Status != payments.Succeeded || got.Instrument.Token == "" {
		w.t.Fatalf("card deposit for a token: %s %+v", got.Status, got.Instrument)
	}
	return got.Instrument.Token
}

func TestPayoutsEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		holder := "T. Rader"
		tests := []struct {
			name   string
			method string
			dest   func() psp.Destination
			start  payments.Status // right after Start
			settle func(p payments.Payment)
			final  payments.Status
			reason string
			payout string // what the provider pays
		}{
			{name: "card paid", method: "card", dest: func() psp.Destination { return psp.Destination{CardToken: w.cardToken("4242424242424242")} },
				start: payments.Succeeded, final: payments.Succeeded, payout: "50.00"},
			{name: "card rejected", method: "card", dest: func() psp.Destination { return psp.Destination{CardToken: w.cardToken("4000000000000077")} },
				start: payments.Declined, final: payments.Declined, reason: psp.DeclineDoNotHonour, payout: "50.00"},
			{name: "card delayed", method: "card", dest: func() psp.Destination { return psp.Destination{CardToken: w.cardToken("4000000000000093")} },
				start: payments.Pending, settle: func(payments.Payment) { w.wait(sandbox.DefaultDelayedOutcome) }, final: payments.Succeeded, payout: "50.00"},
			{name: "bank paid", method: "bank-transfer", dest: func() psp.Destination {
				return psp.Destination{IBAN: "DE89 3704 0044 0532 0130 00", HolderName: holder}
			},
				start: payments.Succeeded, final: payments.Succeeded, payout: "45.00"},
			{name: "bank rejected", method: "bank-transfer", dest: func() psp.Destination { return psp.Destination{IBAN: sandbox.RejectedIBAN, HolderName: holder} },
				start: payments.Declined, final: payments.Declined, reason: psp.DeclineAccountClosed, payout: "45.00"},
			{name: "bank delayed, paid from the control page", method: "bank-transfer", dest: func() psp.Destination { return psp.Destination{IBAN: sandbox.DelayedIBAN, HolderName: holder} },
				start: payments.Pending, settle: func(p payments.Payment) { w.control(p, "complete", nil); w.drain() }, final: payments.Succeeded, payout: "45.00"},
			{name: "wallet paid", method: "ewallet", dest: func() psp.Destination { return psp.Destination{WalletID: "trader@wallet.test"} },
				start: payments.Succeeded, final: payments.Succeeded, payout: "49.50"},
			{name: "wallet rejected", method: "ewallet", dest: func() psp.Destination { return psp.Destination{WalletID: sandbox.RejectedWallet} },
				start: payments.Declined, final: payments.Declined, reason: psp.DeclineAccountClosed, payout: "49.50"},
			{name: "wallet delayed, rejected from the control page", method: "ewallet", dest: func() psp.Destination { return psp.Destination{WalletID: sandbox.DelayedWallet} },
				start: payments.Pending, settle: func(p payments.Payment) { w.control(p, "reject", nil); w.drain() }, final: payments.Declined, reason: psp.DeclineAccountClosed, payout: "49.50"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				// 50.00 USD leaves the account: card fees are the broker's (50.00
				// paid out), the bank's 5.00 and the wallet's 1 % are the client's.
				p := w.payout(tc.method, amt(t, "50.00", usd), tc.dest())
				if p.Status != tc.start || p.ProviderAmount() != amt(t, tc.payout, usd) || p.ProviderRef == "" {
					t.Fatalf("after Start: %s paying %s (ref %q), want %s paying %s", p.Status, p.ProviderAmount(), p.ProviderRef, tc.start, tc.payout)
				}
				w.drain()
				if tc.settle != nil {
					if got := w.get(p.ID); got.Status != payments.Pending {
						t.Fatalf("before it settles: %s", got.Status)
					}
					tc.settle(p)
				}
				got := w.get(p.ID)
				if got.Status != tc.final || got.Reason != tc.reason {
					t.Errorf("settled: %s %q, want %s %q", got.Status, got.Reason, tc.final, tc.reason)
				}
				if n := w.finalCount(p.ID); n != 1 {
					t.Errorf("observer heard %d final changes, want 1", n)
				}
			})
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

// post sends body to the intake with a signature made with secret at time
// at over signed (no signature header when secret is empty).
func (w *world) post(body, signed []byte, secret string, at time.Time) int {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.srv.URL+"/psp/sandbox/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(sandbox.SignatureHeader, psp.Sign([]byte(secret), at, signed))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (w *world) setWebhooks(duplicate, outOfOrder, drop bool) {
	w.t.Helper()
	form := url.Values{}
	for name, on := range map[string]bool{"duplicate_webhooks": duplicate, "out_of_order_webhooks": outOfOrder, "drop_webhooks": drop} {
		if on {
			form.Set(name, "on")
		}
	}
	if res := w.do("POST", w.srv.URL+"/sandbox/control/settings", form); res.Status != http.StatusSeeOther {
		w.t.Fatalf("saving sandbox settings: %d", res.Status)
	}
}

// lastEventBody returns the body of the newest sandbox event of a payment.
func (w *world) lastEventBody(p payments.Payment) []byte {
	w.t.Helper()
	var body []byte
	if err := w.db.QueryRow(context.Background(), `SELECT body FROM sandbox_events WHERE payment_id = ? ORDER BY id DESC LIMIT 1`, p.ProviderRef).Scan(&body); err != nil {
		w.t.Fatal(err)
	}
	return body
}

func TestForgedAndStaleWebhooksChangeNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		w.setWebhooks(false, false, true)
		p := w.deposit("card", amt(t, "100.00", usd))
		w.expectReturn(w.payByCard(p, "4242424242424242"), p)
		w.drain()
		body := w.lastEventBody(p) // payment.succeeded, never delivered
		if !bytes.Contains(body, []byte(`"status":"succeeded"`)) {
			t.Fatalf("newest event: %s", body)
		}
		eventsBefore, _ := w.svc.Events(context.Background(), p.ID)
		now := w.clk.Now()
		tampered := bytes.Replace(body, []byte(`"amount":"100.00"`), []byte(`"amount":"1000.00"`), 1)
		tests := []struct {
			name   string
			sent   []byte // the body sent
			signed []byte // the body the signature is made over
			secret string // empty: no signature header
			at     time.Time
			status int
		}{
			{"unsigned", body, body, "", now, http.StatusUnauthorized},
			{"signed with another secret", body, body, "whsec_guess", now, http.StatusUnauthorized},
			{"body changed after signing", tampered, body, webhookSecret, now, http.StatusUnauthorized},
			{"signed six minutes ago", body, body, webhookSecret, now.Add(-6 * time.Minute), http.StatusBadRequest},
			{"signed six minutes ahead", body, body, webhookSecret, now.Add(6 * time.Minute), http.StatusBadRequest},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if status := w.post(tc.sent, tc.signed, tc.secret, tc.at); status != tc.status {
					t.Errorf("answered %d, want %d", status, tc.status)
				}
				if got := w.get(p.ID); got.Status != payments.Pending {
					t.Errorf("payment moved to %s", got.Status)
				}
			})
		}
		if genuine := w.post(body, body, webhookSecret, now); genuine != http.StatusOK {
			t.Fatalf("the genuine delivery: %d", genuine)
		}
		if got := w.get(p.ID); got.Status != payments.Succeeded {
			t.Errorf("after the genuine delivery: %s", got.Status)
		}
		eventsAfter, _ := w.svc.Events(context.Background(), p.ID)
		if len(eventsAfter) != len(eventsBefore)+1 {
			t.Errorf("stored events went from %d to %d, want one more (the genuine one)", len(eventsBefore), len(eventsAfter))
		}
		req, _ := http.NewRequest("POST", w.srv.URL+"/psp/stripe/webhook", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("unknown provider: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestDuplicateAndOutOfOrderWebhooksBookOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		w.setWebhooks(true, true, false)
		p := w.deposit("card", amt(t, "100.00", usd))
		res := w.payByCard(p, "4000000000003220")
		w.expectReturn(w.do("POST", w.srv.URL+res.Location, url.Values{"code": {sandbox.ThreeDSCode}}), p)
		// Due now: the final event, twice. Held back a minute: the earlier
		// requires_action and authorised events, twice each.
		w.drain()
		var outcomes []payments.Outcome
		for _, c := range w.intakeCalls() {
			if c.Status != http.StatusOK {
				t.Fatalf("intake answered %d", c.Status)
			}
			outcomes = append(outcomes, c.Outcome)
		}
		if want := []payments.Outcome{payments.OutcomeApplied, payments.OutcomeDuplicate}; !equalOutcomes(outcomes, want) {
			t.Fatalf("first deliveries %v, want %v", outcomes, want)
		}
		if got := w.get(p.ID); got.Status != payments.Succeeded {
			t.Fatalf("after the final event: %s", got.Status)
		}
		w.wait(sandbox.DefaultOutOfOrderDelay)
		outcomes = nil
		for _, c := range w.intakeCalls()[2:] {
			outcomes = append(outcomes, c.Outcome)
		}
		want := []payments.Outcome{payments.OutcomeStale, payments.OutcomeDuplicate, payments.OutcomeStale, payments.OutcomeDuplicate}
		if !equalOutcomes(outcomes, want) {
			t.Errorf("late deliveries %v, want %v", outcomes, want)
		}
		got := w.get(p.ID)
		if got.Status != payments.Succeeded || w.finalCount(p.ID) != 1 {
			t.Errorf("after every delivery: %s, finals %d", got.Status, w.finalCount(p.ID))
		}
		hist, _ := w.svc.History(context.Background(), p.ID)
		var path []string
		for _, h := range hist {
			path = append(path, string(h.To))
		}
		if strings.Join(path, ">") != "created>pending>succeeded" {
			t.Errorf("status path %v never moves backwards and skips what came late", path)
		}
		// A tester resends an old event by hand: still nothing moves.
		var first string
		if err := db.QueryRow(context.Background(), `SELECT id FROM sandbox_events WHERE payment_id = ? ORDER BY id LIMIT 1`, p.ProviderRef).Scan(&first); err != nil {
			t.Fatal(err)
		}
		w.control(p, "resend", url.Values{"event": {first}})
		w.drain()
		if calls := w.intakeCalls(); calls[len(calls)-1].Outcome != payments.OutcomeDuplicate {
			t.Errorf("resent event: %+v", calls[len(calls)-1])
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func equalOutcomes(a, b []payments.Outcome) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A webhook the cashier does not acknowledge is sent again, with growing
// delays, until it is; the events of one change go out in order, so the
// final event waits until the one before it was acknowledged.
func TestWebhooksAreRetriedUntilAcknowledged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		p := w.deposit("ewallet", amt(t, "40.00", usd))
		w.drain() // the requires_action event
		w.mu.Lock()
		w.failIntake = 2
		w.mu.Unlock()
		w.do("POST", p.RedirectURL+"/wallet", url.Values{"action": {"approve"}})
		w.drain() // authorised fails; succeeded waits behind it
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("while the cashier fails: %s", got.Status)
		}
		w.wait(sandbox.WebhookRetryBase) // authorised fails again
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("after the first retry, which failed: %s", got.Status)
		}
		w.wait(2*sandbox.WebhookRetryBase - time.Second)
		if got := w.get(p.ID); got.Status != payments.Pending {
			t.Fatalf("before the second retry is due: %s", got.Status)
		}
		w.wait(time.Second)
		if got := w.get(p.ID); got.Status != payments.Succeeded {
			t.Fatalf("after the second retry: %s", got.Status)
		}
		deliveries := map[string]int{}
		rows, err := db.Query(context.Background(), `SELECT type, deliveries FROM sandbox_events WHERE payment_id = ?`, p.ProviderRef)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var typ string
			var n int
			if err := rows.Scan(&typ, &n); err != nil {
				t.Fatal(err)
			}
			deliveries[typ] = n
		}
		rows.Close()
		want := map[string]int{"payment.requires_action": 1, "payment.authorised": 3, "payment.succeeded": 1}
		if diff := cmp.Diff(want, deliveries); diff != "" {
			t.Errorf("deliveries by event (-want +got):\n%s", diff)
		}
		var path []string
		hist, _ := w.svc.History(context.Background(), p.ID)
		for _, h := range hist {
			path = append(path, string(h.To))
		}
		if strings.Join(path, ">") != "created>pending>authorised>succeeded" {
			t.Errorf("status path %v: the events arrived out of order", path)
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestPollingCatchesADroppedWebhook(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		w.setWebhooks(false, false, true)
		p := w.deposit("card", amt(t, "100.00", usd))
		w.expectReturn(w.payByCard(p, "4242424242424242"), p)
		w.drain()
		if got := w.get(p.ID); got.Status != payments.Pending || len(w.intakeCalls()) != 0 {
			t.Fatalf("with webhooks dropped: %s, %d deliveries", got.Status, len(w.intakeCalls()))
		}
		w.wait(payments.DefaultPollAfter)
		got := w.get(p.ID)
		if got.Status != payments.Succeeded || got.Instrument.Last4 != "4242" || w.finalCount(p.ID) != 1 {
			t.Errorf("after the poll: %s %+v (finals %d)", got.Status, got.Instrument, w.finalCount(p.ID))
		}
		events, _ := w.svc.Events(context.Background(), p.ID)
		if last := events[len(events)-1]; last.Source != payments.SourcePoll || !bytes.Contains(last.Body, []byte(`"status":"succeeded"`)) {
			t.Errorf("the poll's answer is kept verbatim: %s %s", last.Source, last.Body)
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestStartIsIdempotentAtTheSandbox(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		id, _ := payments.NewID()
		req := psp.PaymentRequest{ID: id, Method: psp.Card, Amount: amt(t, "10.00", usd), ReturnURL: w.srv.URL + "/return"}
		first, err := w.client.StartPayment(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := w.client.StartPayment(ctx, req)
		if err != nil || again.ProviderRef != first.ProviderRef || again.RedirectURL != first.RedirectURL {
			t.Errorf("same id again: %s, %v; want %s", again.ProviderRef, err, first.ProviderRef)
		}
		req.Amount = amt(t, "11.00", usd)
		if _, err := w.client.StartPayment(ctx, req); err == nil || !strings.Contains(err.Error(), "was used for another payment") {
			t.Errorf("same id, other amount: %v", err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM sandbox_payments WHERE reference = ?`, id).Scan(&n); err != nil || n != 1 {
			t.Errorf("sandbox payments for one id: %d, %v", n, err)
		}
		// Through the service: a deposit whose first start answer was lost.
		p, err := w.svc.CreateDeposit(ctx, payments.DepositRequest{MethodID: "card", Amount: amt(t, "10.00", usd), AccountCurrency: usd, Customer: customer, ReturnURL: w.srv.URL + "/return"})
		if err != nil {
			t.Fatal(err)
		}
		lost, err := w.client.StartPayment(ctx, psp.PaymentRequest{ID: p.ID, Method: psp.Card, Amount: p.Gross, ReturnURL: w.srv.URL + "/return", Description: "Deposit " + p.ID, Lang: ""})
		if err != nil {
			t.Fatal(err)
		}
		started, err := w.svc.Start(ctx, p.ID)
		if err != nil || started.ProviderRef != lost.ProviderRef {
			t.Errorf("Start after a lost answer: %s, %v; want the provider's %s", started.ProviderRef, err, lost.ProviderRef)
		}
		if _, err := w.svc.Start(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM sandbox_payments WHERE reference = ?`, p.ID).Scan(&n); err != nil || n != 1 {
			t.Errorf("sandbox payments for the deposit: %d, %v", n, err)
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}

func TestDepositLimitsInZeroAndThreeDecimalCurrencies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		req := payments.DepositRequest{MethodID: "card", AccountCurrency: usd, Customer: customer, ReturnURL: w.srv.URL + "/return", Lang: "en"}
		req.Amount = amt(t, "1499", jpy)
		_, err := w.svc.CreateDeposit(ctx, req)
		if le, ok := payments.AsLimitError(err); !ok || le.Kind != payments.BelowMinimum || !strings.Contains(err.Error(), "¥1,500") {
			t.Errorf("JPY below the minimum: %v", err)
		}
		req.Amount = amt(t, "3000.001", money.MustCurrency("KWD"))
		_, err = w.svc.CreateDeposit(ctx, req)
		if le, ok := payments.AsLimitError(err); !ok || le.Kind != payments.AboveMaximum || !strings.Contains(err.Error(), "KWD\u00a03,000.000") {
			t.Errorf("KWD above the maximum: %v", err)
		}
	}, payments.Schema, sandbox.Schema, jobs.Schema)
}
