package sandbox

import (
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
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const (
	testKey    = "sk_test_sandbox"
	testSecret = "whsec_sandbox"
)

// rig is a sandbox server with its client and a receiver that verifies
// and records webhooks.
type rig struct {
	t       *testing.T
	db      *sqlstore.DB
	clk     *clock.Fake
	srv     *httptest.Server
	server  *Server
	client  *Client
	runner  *jobs.Runner
	browser *http.Client

	mu     sync.Mutex
	events []psp.Event
}

func newRig(t *testing.T, db *sqlstore.DB, change func(*Options)) *rig {
	t.Helper()
	r := &rig{t: t, db: db, clk: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))}
	mux := http.NewServeMux()
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := Options{BaseURL: r.srv.URL + Prefix, APIKey: testKey, WebhookURL: r.srv.URL + "/hook", WebhookSecret: testSecret, Clock: r.clk, Logger: logger}
	if change != nil {
		change(&opts)
	}
	var err error
	if r.server, err = NewServer(db, opts); err != nil {
		t.Fatal(err)
	}
	if r.client, err = NewClient(ClientOptions{BaseURL: r.srv.URL + Prefix, APIKey: testKey, WebhookSecret: testSecret, Clock: r.clk}); err != nil {
		t.Fatal(err)
	}
	r.server.Routes(mux.Handle)
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ev, err := r.client.ParseWebhook(req.Header, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	})
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: r.clk, Workers: 1, Logger: logger})
	for kind, h := range r.server.JobHandlers() {
		r.runner.Handle(kind, h)
	}
	r.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r
}

func (r *rig) drain() {
	r.t.Helper()
	for range 100 {
		n, err := r.runner.RunOnce(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	r.t.Fatal("jobs never ran dry")
}

func (r *rig) received() []psp.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]psp.Event(nil), r.events...)
}

func (r *rig) do(method, target string, form url.Values, header http.Header) (int, string, string) {
	r.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := r.browser.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var (
	usd = money.MustCurrency("USD")
	jpy = money.MustCurrency("JPY")
	kwd = money.MustCurrency("KWD")
)

func (r *rig) start(method psp.MethodKind, a money.Amount) psp.Payment {
	r.t.Helper()
	p, err := r.client.StartPayment(context.Background(), psp.PaymentRequest{
		ID: "pay_" + strings.ReplaceAll(r.clk.Now().Format("150405.000000000"), ".", "") + string(method), Method: method, Amount: a,
		ReturnURL: "https://cashier.example/return?lang=de",
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.clk.Advance(time.Millisecond)
	return p
}

func TestHostedCardFormRefusesBadInputAndForgetsTheNumber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		p := r.start(psp.Card, money.New(1000, usd))
		tests := []struct {
			name   string
			number string
			expiry string
			cvc    string
			msg    string
		}{
			{"not a card number", "4242424242424241", "12/30", "123", "The card number is not valid."},
			{"too short", "4242", "12/30", "123", "The card number is not valid."},
			{"real-looking card", "4111 1111 1111 1111", "12/30", "123", "This is not a sandbox test card."},
			{"expired last month", "4242424242424242", "02/26", "123", "The expiry date is in the past."},
			{"no slash", "4242424242424242", "1230", "123", "Enter the expiry date as MM/YY."},
			{"month 13", "4242424242424242", "13/30", "123", "Enter the expiry date as MM/YY."},
			{"short code", "4242424242424242", "12/30", "12", "Enter the 3- or 4-digit security code."},
			{"letters in code", "4242424242424242", "12/30", "12a", "Enter the 3- or 4-digit security code."},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, _, body := r.do("POST", p.RedirectURL+"/card", url.Values{"number": {tc.number}, "expiry": {tc.expiry}, "cvc": {tc.cvc}}, nil)
				if status != http.StatusUnprocessableEntity || !strings.Contains(body, tc.msg) {
					t.Errorf("answered %d, want 422 with %q; body %.300s", status, tc.msg, body)
				}
				digits := cleanCardNumber(tc.number)
				if len(digits) > 4 && strings.Contains(body, digits) {
					t.Error("the page writes the card number back")
				}
			})
		}
		// This month's expiry is still good.
		status, loc, _ := r.do("POST", p.RedirectURL+"/card", url.Values{"number": {"4242424242424242"}, "expiry": {"03/2026"}, "cvc": {"1234"}}, nil)
		if status != http.StatusSeeOther || loc != "https://cashier.example/return?lang=de&payment="+p.ID {
			t.Errorf("a good card: %d %s", status, loc)
		}
		got, err := r.client.PaymentStatus(context.Background(), p.ID)
		if err != nil || got.Status != psp.Succeeded || got.Instrument.Last4 != "4242" || got.Instrument.Brand != "visa" {
			t.Errorf("after a good card: %+v, %v", got, err)
		}
		// Paying again does nothing: the page shows the outcome.
		status, loc, _ = r.do("POST", p.RedirectURL+"/card", url.Values{"number": {"4000000000000002"}, "expiry": {"12/30"}, "cvc": {"123"}}, nil)
		if status != http.StatusSeeOther || !strings.HasSuffix(loc, "/checkout/"+p.ProviderRef) {
			t.Errorf("second card on a finished payment: %d %s", status, loc)
		}
		status, _, body := r.do("GET", p.RedirectURL, nil, nil)
		if status != http.StatusOK || !strings.Contains(body, "Payment succeeded") || !strings.Contains(body, "Return to the merchant") {
			t.Errorf("finished checkout page: %d %.300s", status, body)
		}
		if status, _, _ := r.do("GET", r.srv.URL+Prefix+"/checkout/sbp_nope", nil, nil); status != http.StatusNotFound {
			t.Errorf("unknown checkout: %d", status)
		}
	}, Schema, jobs.Schema)
}

func TestPagesRefuseCrossOriginPosts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		p := r.start(psp.EWallet, money.New(1000, usd))
		hdr := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}
		if status, _, _ := r.do("POST", p.RedirectURL+"/wallet", url.Values{"action": {"approve"}}, hdr); status != http.StatusForbidden {
			t.Errorf("cross-site approve: %d, want 403", status)
		}
		if status, _, _ := r.do("POST", r.srv.URL+Prefix+"/control/settings", url.Values{"drop_webhooks": {"on"}}, hdr); status != http.StatusForbidden {
			t.Errorf("cross-site settings: %d, want 403", status)
		}
		if got, _ := r.client.PaymentStatus(context.Background(), p.ID); got.Status != psp.Pending {
			t.Errorf("after the refused post: %s", got.Status)
		}
	}, Schema, jobs.Schema)
}

func TestAPIRefusesBadRequests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		post := func(path, key, body string) (int, string) {
			req, _ := http.NewRequest("POST", r.srv.URL+Prefix+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		good := `{"reference":"pay_1","method":"card","amount":"10.00","currency":"USD","returnUrl":"https://c.example/r"}`
		tests := []struct {
			name   string
			path   string
			key    string
			body   string
			status int
			detail string
		}{
			{"no key", "/api/payments", "", good, 401, "API key"},
			{"wrong key", "/api/payments", "sk_live_guess", good, 401, "API key"},
			{"unknown method", "/api/payments", testKey, strings.Replace(good, `"card"`, `"cheque"`, 1), 400, "does not take"},
			{"crypto in USD", "/api/payments", testKey, strings.Replace(good, `"card"`, `"crypto"`, 1), 400, "does not take"},
			{"JPY with decimals", "/api/payments", testKey, strings.Replace(strings.Replace(good, `"USD"`, `"JPY"`, 1), `"10.00"`, `"10.5"`, 1), 400, "more decimals than JPY allows"},
			{"zero", "/api/payments", testKey, strings.Replace(good, `"10.00"`, `"0"`, 1), 400, "greater than zero"},
			{"no return URL", "/api/payments", testKey, strings.Replace(good, `"https://c.example/r"`, `""`, 1), 400, "returnUrl"},
			{"reference with a slash", "/api/payments", testKey, strings.Replace(good, `"pay_1"`, `"pay/1"`, 1), 400, "reference"},
			{"unknown field", "/api/payments", testKey, strings.Replace(good, `{`, `{"tip":"1",`, 1), 400, "unknown field"},
			{"payout to an unknown card", "/api/payouts", testKey, `{"reference":"pay_2","method":"card","amount":"5.00","currency":"USD","destination":{"cardToken":"ctok_nope"}}`, 400, "not a sandbox card"},
			{"payout to a bad IBAN", "/api/payouts", testKey, `{"reference":"pay_3","method":"bank_transfer","amount":"5.00","currency":"EUR","destination":{"iban":"DE00370400440532013000","holderName":"A"}}`, 400, "valid IBAN"},
			{"payout to no wallet", "/api/payouts", testKey, `{"reference":"pay_4","method":"ewallet","amount":"5.00","currency":"EUR","destination":{}}`, 400, "wallet id"},
			{"payout by crypto", "/api/payouts", testKey, `{"reference":"pay_5","method":"crypto","amount":"5.00","currency":"USDT","destination":{}}`, 400, "does not pay out"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body := post(tc.path, tc.key, tc.body)
				if status != tc.status || !strings.Contains(body, tc.detail) {
					t.Errorf("answered %d %s, want %d with %q", status, body, tc.status, tc.detail)
				}
			})
		}
		var n int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sandbox_payments`).Scan(&n); err != nil || n != 0 {
			t.Errorf("refused requests created %d sandbox payments", n)
		}
	}, Schema, jobs.Schema)
}

func TestClientErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db, nil)
		if _, err := r.client.PaymentStatus(ctx, "pay_unknown"); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown payment: %v, want ENOTFOUND", err)
		}
		if _, err := r.client.PayoutStatus(ctx, "pay_unknown"); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown payout: %v, want ENOTFOUND", err)
		}
		wrongKey, _ := NewClient(ClientOptions{BaseURL: r.srv.URL + Prefix, APIKey: "sk_wrong", WebhookSecret: testSecret})
		if _, err := wrongKey.PaymentStatus(ctx, "pay_x"); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("wrong key: %v, want EUNAUTHORIZED", err)
		}
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		gone, _ := NewClient(ClientOptions{BaseURL: down.URL + Prefix, APIKey: testKey, WebhookSecret: testSecret})
		if _, err := gone.StartPayment(ctx, psp.PaymentRequest{ID: "pay_x", Method: psp.Card, Amount: money.New(100, usd), ReturnURL: "https://c.example"}); !errs.Is(err, errs.Unavailable) {
			t.Errorf("provider down: %v, want EUNAVAILABLE", err)
		}
		for _, bad := range []ClientOptions{{BaseURL: "/sandbox", APIKey: "k", WebhookSecret: "s"}, {BaseURL: r.srv.URL, WebhookSecret: "s"}, {BaseURL: r.srv.URL, APIKey: "k"}} {
			if _, err := NewClient(bad); !errs.Is(err, errs.Invalid) {
				t.Errorf("NewClient(%+v) = %v, want EINVALID", bad, err)
			}
		}
	}, Schema, jobs.Schema)
}

func TestParseWebhook(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	c, err := NewClient(ClientOptions{BaseURL: "http://127.0.0.1:1/sandbox", APIKey: testKey, WebhookSecret: testSecret, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	payout := `{"id":"evt_1","type":"payout.rejected","created":1772445600,"data":{"id":"sbo_1","object":"payout","reference":"pay_9","method":"bank_transfer",
		"status":"rejected","amount":"45.00","currency":"EUR","declineCode":"account_closed","seq":1,"created":"2026-03-02T10:00:00Z","updated":"2026-03-02T10:00:00Z"}}`
	header := func(body string, at time.Time, secret string) http.Header {
		return http.Header{SignatureHeader: {psp.Sign([]byte(secret), at, []byte(body))}}
	}
	ev, err := c.ParseWebhook(header(payout, clk.Now(), testSecret), []byte(payout))
	if err != nil {
		t.Fatal(err)
	}
	want := psp.Payout{ID: "pay_9", ProviderRef: "sbo_1", Status: psp.Declined, Amount: money.New(4500, money.MustCurrency("EUR")),
		DeclineCode: "account_closed", Seq: 1, UpdatedAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Raw: []byte(payout)}
	if ev.ID != "evt_1" || ev.Kind != psp.PayoutEvent || ev.Payout == nil {
		t.Fatalf("event %+v", ev)
	}
	if diff := cmp.Diff(want, *ev.Payout); diff != "" {
		t.Errorf("payout (-want +got):\n%s", diff)
	}
	for name, tc := range map[string]struct {
		body   string
		header http.Header
		code   errs.Code
	}{
		"no header":      {payout, http.Header{}, errs.Unauthorized},
		"other secret":   {payout, header(payout, clk.Now(), "whsec_other"), errs.Unauthorized},
		"stale":          {payout, header(payout, clk.Now().Add(-10*time.Minute), testSecret), errs.Expired},
		"not an event":   {`{"hello":1}`, header(`{"hello":1}`, clk.Now(), testSecret), errs.Invalid},
		"unknown object": {`{"id":"e","data":{"object":"refund"}}`, header(`{"id":"e","data":{"object":"refund"}}`, clk.Now(), testSecret), errs.Invalid},
		"unknown status": {strings.Replace(payout, `"status":"rejected"`, `"status":"weird"`, 1), header(strings.Replace(payout, `"status":"rejected"`, `"status":"weird"`, 1), clk.Now(), testSecret), errs.Invalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.ParseWebhook(tc.header, []byte(tc.body)); !errs.Is(err, tc.code) {
				t.Errorf("ParseWebhook = %v, want %s", err, tc.code)
			}
		})
	}
}

func TestControlPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, func(o *Options) { o.ControlPassword = "open sesame" })
		bank := r.start(psp.BankTransfer, money.New(10001, jpy))
		auth := http.Header{"Authorization": {"Basic " + basic("sandbox", "open sesame")}}
		if status, _, _ := r.do("GET", r.srv.URL+Prefix+"/control", nil, nil); status != http.StatusUnauthorized {
			t.Errorf("control without the password: %d", status)
		}
		if status, _, _ := r.do("GET", r.srv.URL+Prefix+"/control", nil, http.Header{"Authorization": {"Basic " + basic("sandbox", "guess")}}); status != http.StatusUnauthorized {
			t.Errorf("control with a wrong password: %d", status)
		}
		status, _, body := r.do("GET", r.srv.URL+Prefix+"/control", nil, auth)
		if status != http.StatusOK || !strings.Contains(body, bank.ProviderRef) || !strings.Contains(body, "Money arrived (in full)") || !strings.Contains(body, "4000 0000 0000 3220") {
			t.Fatalf("control page: %d %.500s", status, body)
		}
		// An action that does not fit the payment is refused with a message.
		status, loc, _ := r.do("POST", r.srv.URL+Prefix+"/control/"+bank.ProviderRef+"/confirm", url.Values{}, auth)
		if status != http.StatusSeeOther || !strings.Contains(loc, "error=") {
			t.Errorf("confirm on a bank transfer: %d %s", status, loc)
		}
		// Half of 10001 JPY is 5000 JPY (rounded down to whole yen).
		status, loc, _ = r.do("POST", r.srv.URL+Prefix+"/control/"+bank.ProviderRef+"/arrive-partial", url.Values{}, auth)
		if status != http.StatusSeeOther || strings.Contains(loc, "error=") {
			t.Fatalf("arrive-partial: %d %s", status, loc)
		}
		got, _ := r.client.PaymentStatus(context.Background(), bank.ID)
		if got.Status != psp.Succeeded || got.Received != money.New(5000, jpy) || got.Amount != money.New(10001, jpy) {
			t.Errorf("after half arrived: %s received %s of %s", got.Status, got.Received, got.Amount)
		}
		r.drain()
		status, _, body = r.do("GET", r.srv.URL+Prefix+"/control/"+bank.ProviderRef, nil, auth)
		if status != http.StatusOK || !strings.Contains(body, "payment.succeeded") || !strings.Contains(body, "Resend") {
			t.Errorf("detail page: %d %.500s", status, body)
		}
		if status, _, _ := r.do("GET", r.srv.URL+Prefix+"/static/sandbox.css", nil, nil); status != http.StatusOK {
			t.Errorf("stylesheet: %d", status)
		}
	}, Schema, jobs.Schema)
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestArrivalAmountsInZeroAndThreeDecimalCurrencies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		tests := []struct {
			name     string
			amount   money.Amount
			action   string
			received money.Amount
		}{
			{"JPY half", money.New(1001, jpy), "arrive-partial", money.New(500, jpy)},   // 500.5 → 500
			{"JPY over", money.New(1001, jpy), "arrive-over", money.New(1101, jpy)},     // 1101.1 → 1101
			{"KWD half", money.New(10001, kwd), "arrive-partial", money.New(5000, kwd)}, // 5.0005 → 5.000
			{"KWD over", money.New(10001, kwd), "arrive-over", money.New(11001, kwd)},   // 11.0011 → 11.001
			{"one yen half", money.New(1, jpy), "arrive-partial", money.New(1, jpy)},    // never zero
			{"one yen over", money.New(1, jpy), "arrive-over", money.New(2, jpy)},       // always more
			{"KWD typed", money.New(10001, kwd), "arrive-amount", money.New(9999, kwd)}, // "9.999"
			{"crypto BTC partial", money.New(100000, money.MustCurrency("BTC")), "arrive-partial", money.New(50000, money.MustCurrency("BTC"))},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				method := psp.BankTransfer
				if tc.amount.Currency().Code == "BTC" {
					method = psp.Crypto
				}
				p := r.start(method, tc.amount)
				form := url.Values{}
				if tc.action == "arrive-amount" {
					form.Set("amount", tc.received.Decimal())
				}
				status, loc, _ := r.do("POST", r.srv.URL+Prefix+"/control/"+p.ProviderRef+"/"+tc.action, form, nil)
				if status != http.StatusSeeOther || strings.Contains(loc, "error=") {
					t.Fatalf("%s: %d %s", tc.action, status, loc)
				}
				got, _ := r.client.PaymentStatus(context.Background(), p.ID)
				if got.Received != tc.received {
					t.Errorf("received %s, want %s", got.Received, tc.received)
				}
				if method == psp.Crypto && (got.Status != psp.Pending || !strings.HasPrefix(p.Instructions.Address, "tb1q") || p.Instructions.Network != "bitcoin-testnet") {
					t.Errorf("crypto after the transaction: %s at %s on %s", got.Status, p.Instructions.Address, p.Instructions.Network)
				}
			})
		}
		p := r.start(psp.BankTransfer, money.New(10001, kwd))
		_, loc, _ := r.do("POST", r.srv.URL+Prefix+"/control/"+p.ProviderRef+"/arrive-amount", url.Values{"amount": {"1.0001"}}, nil)
		if !strings.Contains(loc, "error=") {
			t.Errorf("a KWD amount with four decimals was accepted: %s", loc)
		}
	}, Schema, jobs.Schema)
}

func TestWebhookSettingsAndBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 11; n++ {
		got = append(got, webhookRetryAfter(n))
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second,
		640 * time.Second, 1280 * time.Second, 2560 * time.Second, time.Hour, time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retry delays (-want +got):\n%s", diff)
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, func(o *Options) { o.DuplicateWebhooks = true })
		p := r.start(psp.EWallet, money.New(2500, usd))
		r.drain()
		evs := r.received()
		if len(evs) != 2 || evs[0].ID != evs[1].ID || evs[0].Payment.ID != p.ID {
			t.Fatalf("duplicate delivery: %d events", len(evs))
		}
		// The control page's settings override the options.
		if status, _, _ := r.do("POST", r.srv.URL+Prefix+"/control/settings", url.Values{"drop_webhooks": {"on"}}, nil); status != http.StatusSeeOther {
			t.Fatal("saving settings")
		}
		status, _, _ := r.do("POST", p.RedirectURL+"/wallet", url.Values{"action": {"approve"}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("approve: %d", status)
		}
		r.drain()
		if n := len(r.received()); n != 2 {
			t.Errorf("deliveries with drop on: %d more", n-2)
		}
		var stored int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sandbox_events WHERE payment_id = ?`, p.ProviderRef).Scan(&stored); err != nil || stored != 3 {
			t.Errorf("events stored: %d, %v; want 3 (requires_action, authorised, succeeded)", stored, err)
		}
		var raw []byte
		if err := db.QueryRow(context.Background(), `SELECT body FROM sandbox_events WHERE payment_id = ? ORDER BY id DESC LIMIT 1`, p.ProviderRef).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil || env.Type != "payment.succeeded" || env.Data.ReceivedAmount != "25.00" || env.Data.Seq != 3 {
			t.Errorf("last event %+v, %v", env, err)
		}
	}, Schema, jobs.Schema)
}

func TestNewServerChecksOptions(t *testing.T) {
	good := Options{BaseURL: "http://127.0.0.1:8080/sandbox", APIKey: "k", WebhookURL: "http://127.0.0.1:8080/psp/sandbox/webhook", WebhookSecret: "s"}
	for name, change := range map[string]func(*Options){
		"relative base":     func(o *Options) { o.BaseURL = "/sandbox" },
		"no webhook URL":    func(o *Options) { o.WebhookURL = "" },
		"ftp webhook":       func(o *Options) { o.WebhookURL = "ftp://x/y" },
		"no API key":        func(o *Options) { o.APIKey = "" },
		"no webhook secret": func(o *Options) { o.WebhookSecret = "" },
	} {
		o := good
		change(&o)
		if _, err := NewServer(nil, o); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if _, err := NewServer(nil, good); err != nil {
		t.Errorf("good options: %v", err)
	}
}

func TestTestCardsAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range TestCards {
		if !luhn(c.Number) {
			t.Errorf("test card %s fails the Luhn check", c.Number)
		}
		if seen[c.Number[12:]+string(c.Behaviour)] {
			t.Errorf("test cards share last four digits and behaviour: %s", c.Number)
		}
		seen[c.Number[12:]+string(c.Behaviour)] = true
		if got := cardOf(object{Scenario: string(c.Behaviour), CardLast4: c.Number[12:]}); got.Number != c.Number {
			t.Errorf("cardOf finds %s for %s", got.Number, c.Number)
		}
	}
	for _, iban := range []string{RejectedIBAN, DelayedIBAN, DefaultBank.IBAN} {
		if !psp.ValidIBAN(iban) {
			t.Errorf("test IBAN %s is not valid", iban)
		}
	}
}

// A delivery posts the events of one change, in order and byte for byte
// as stored, from its job alone; a delivery queued before jobs carried the
// body (the event's id only) still posts it. A timer that fires after its payment finished (the
// checkout's expiry after a paid card) changes nothing.
func TestDeliveriesAndLateTimers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db, nil)
		p := r.start(psp.Card, money.New(1000, usd))
		r.drain()
		status, _, _ := r.do("POST", p.RedirectURL+"/card", url.Values{"number": {"4242424242424242"}, "expiry": {"12/30"}, "cvc": {"123"}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("paying: %d", status)
		}
		r.drain()
		stored := map[string]string{}
		rows, err := db.Query(ctx, `SELECT id, body FROM sandbox_events WHERE payment_id = ?`, p.ProviderRef)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, body string
			if err := rows.Scan(&id, &body); err != nil {
				t.Fatal(err)
			}
			stored[id] = body
		}
		rows.Close()
		got := map[string]string{}
		for _, ev := range r.received() {
			got[ev.ID] = string(ev.Raw)
		}
		if len(stored) != 3 {
			t.Fatalf("%d events stored, want 3 (requires_action, authorised, succeeded)", len(stored))
		}
		if diff := cmp.Diff(stored, got); diff != "" {
			t.Errorf("posted bodies (-stored +posted):\n%s", diff)
		}
		var order []string
		for _, ev := range r.received() {
			order = append(order, string(ev.Payment.Status))
		}
		// authorised and succeeded come from one change: one delivery
		// posts them in order.
		if diff := cmp.Diff([]string{"pending", "authorised", "succeeded"}, order); diff != "" {
			t.Errorf("events in the order received (-want +got):\n%s", diff)
		}
		if all, err := jobs.List(ctx, db, jobs.Filter{Kind: webhookJobKind}); err != nil || len(all) != 2 {
			t.Errorf("delivery jobs: %d, %v; want 2 (one per change)", len(all), err)
		}

		// A delivery job from before the body was carried.
		var first string
		for id := range stored {
			if first == "" || id < first {
				first = id
			}
		}
		if err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			_, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: webhookJobKind, Payload: map[string]string{"eventId": first}, DedupKey: first + ":legacy"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		r.drain()
		evs := r.received()
		if last := evs[len(evs)-1]; last.ID != first || string(last.Raw) != stored[first] {
			t.Errorf("legacy delivery posted %s %q, want %s as stored", last.ID, last.Raw, first)
		}
		var deliveries int
		if err := db.QueryRow(ctx, `SELECT deliveries FROM sandbox_events WHERE id = ?`, first).Scan(&deliveries); err != nil || deliveries != 2 {
			t.Errorf("deliveries of %s: %d, %v; want 2", first, deliveries, err)
		}

		// The checkout's expiry comes due after the payment succeeded.
		r.clk.Advance(DefaultCheckoutTTL + time.Minute)
		r.drain()
		after, err := r.client.PaymentStatus(ctx, p.ID)
		if err != nil || after.Status != psp.Succeeded {
			t.Errorf("after the expiry timer: %+v, %v; want still succeeded", after, err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM sandbox_events WHERE payment_id = ?`, p.ProviderRef).Scan(&n); err != nil || n != 3 {
			t.Errorf("events after the expiry timer: %d, %v; want the same 3", n, err)
		}
		if done, err := jobs.List(ctx, db, jobs.Filter{Kind: timerJobKind, State: jobs.Done}); err != nil || len(done) != 1 {
			t.Errorf("expiry timers done: %d, %v; want 1", len(done), err)
		}
	}, Schema, jobs.Schema)
}
