package backoffice_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/web"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

var ctx = context.Background()

// The staff of the tests, one per role (two in finance, for four-eyes).
const (
	password = "correct horse battery staple"

	viewerID      = "stf_viewer"
	supportID     = "stf_support"
	financeID     = "stf_finance"
	finance2ID    = "stf_finance2"
	complianceID  = "stf_compliance"
	adminID       = "stf_admin"
	newcomerID    = "stf_newcomer" // not enrolled yet
	newcomerEmail = "newcomer@broker.test"
)

var roleIDs = map[string]string{"viewer": viewerID, "support": supportID, "finance": financeID, "compliance": complianceID, "admin": adminID}

// site is the back office on a test server over the fakes.
type site struct {
	t     *testing.T
	url   string
	clk   *clock.Fake
	acts  *actions
	staff *fakeStaff
	fund  *fakeFunding
	push  *fakePushes
	pay   *fakePayments
	users *fakeUsers
	comp  *fakeCompliance
	rep   *fakeReports
	rec   *fakeReconcile
	audit *fakeAudit
}

var t0 = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

func newSite(t *testing.T, mod ...func(*site, *bo.Deps, *bo.Options)) *site {
	t.Helper()
	clk := clock.NewFake(t0)
	acts := &actions{}
	s := &site{t: t, clk: clk, acts: acts, staff: newFakeStaff(clk, acts)}
	for role, id := range roleIDs {
		s.staff.add(id, role+"@broker.test", strings.ToUpper(role[:1])+role[1:]+" Person", role, password, true)
	}
	s.staff.add(finance2ID, "finance2@broker.test", "Fiona Second", "finance", password, true)
	s.staff.add(newcomerID, newcomerEmail, "New Comer", "finance", password, false)

	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	s.fund = &fakeFunding{acts: acts, tasks: []bo.Task{
		{Kind: bo.TaskApproval, ID: "wd_small", PaymentID: "pay_small", UserID: "usr_alice", Login: 8673590, MethodID: "bank-transfer",
			Destination: "IBAN GB33 … 5555", Amount: money.New(30000, usd), Status: "awaiting_approval", Since: ago(3 * time.Hour), CreatedAt: ago(3 * time.Hour),
			HoldRule: "new_destination", HoldNote: "First withdrawal to IBAN GB33 … 5555: no earlier withdrawal or deposit used it."},
		{Kind: bo.TaskApproval, ID: "wd_big", PaymentID: "pay_big", UserID: "usr_bob", Login: 8673592, MethodID: "bank-transfer",
			Destination: "IBAN DE89 … 3000", Amount: money.New(2500000, usd), Status: "awaiting_approval", Since: ago(50 * time.Minute), CreatedAt: ago(time.Hour), FourEyes: true},
		{Kind: bo.TaskApproval, ID: "wd_rej", UserID: "usr_bob", Login: 8673592, MethodID: "ewallet", Destination: "wallet b…@wallet.test",
			Amount: money.New(12000, usd), Status: "awaiting_approval", Since: ago(20 * time.Minute)},
		{Kind: bo.TaskPushInDoubt, ID: "dep_pushed", PushID: "dep_pushed:credit", UserID: "usr_alice", Login: 8673590, Amount: money.New(9720, usd), Since: ago(15 * time.Minute)},
		{Kind: bo.TaskFlagged, Flag: bo.FlagPaymentReview, ID: "dep_review", PaymentID: "pay_review", UserID: "usr_alice", Login: 8673591, Amount: money.New(5000, eur), Since: ago(2 * time.Hour)},
		{Kind: bo.TaskFlagged, Flag: bo.FlagReviewHold, ID: "dep_held", PaymentID: "pay_held", UserID: "usr_bob", Login: 8673592, MethodID: "card",
			Amount: money.New(48600, usd), Since: ago(40 * time.Minute), HoldRule: "card_country", HoldNote: "The card was issued in BR; the user's country is GB."},
		{Kind: bo.TaskFlagged, Flag: bo.FlagReviewHold, ID: "dep_held2", UserID: "usr_bob", Login: 8673592, MethodID: "card",
			Amount: money.New(10000, usd), Since: ago(30 * time.Minute), HoldRule: "velocity", HoldNote: "6 deposits within 1h (more than 5)."},
		{Kind: bo.TaskFlagged, Flag: bo.FlagPlatformRefused, ID: "dep_refused", UserID: "usr_alice", Login: 8673590, Amount: money.New(1000, usd), Since: ago(5 * time.Hour)},
	}}
	s.push = &fakePushes{acts: acts, pushes: map[string]push.Push{
		"dep_pushed:credit": pushInDoubt("dep_pushed:credit", "dep_pushed", 8673590, money.New(9720, usd), ago(15*time.Minute)),
	}, events: map[string][]push.Event{
		"dep_pushed:credit": {{At: ago(16 * time.Minute), To: push.Queued, Detail: "enqueued"}, {At: ago(16 * time.Minute), From: push.Queued, To: push.Sending},
			{At: ago(15 * time.Minute), From: push.Sending, To: push.InDoubt, Detail: "POST changebalance: context deadline exceeded after 5s"}},
	}}
	s.pay = &fakePayments{acts: acts, payments: map[string]payments.Payment{
		"pay_review": {ID: "pay_review", Direction: payments.Deposit, MethodID: "card", Provider: "sandbox", ProviderRef: "sb_123", CustomerID: "usr_alice",
			CustomerEmail: "alice@example.com", AccountID: "8673591", Gross: money.New(5000, eur), Net: money.New(4850, eur), Received: money.New(4500, eur),
			Status: payments.Review, Reason: payments.ReasonAmountMismatch, Message: "the provider reports 45.00 EUR, we asked for 50.00 EUR", CreatedAt: ago(2 * time.Hour)},
	}, events: map[string][]payments.StoredEvent{
		"pay_review": {{ID: "pev_1", Provider: "sandbox", PaymentID: "pay_review", Source: "webhook", Outcome: payments.OutcomeReview, ReceivedAt: ago(2 * time.Hour),
			Body: []byte(`{"id":"sb_123","status":"succeeded","amount":"45.00","currency":"EUR"}`)}},
	}}
	s.users = &fakeUsers{users: map[string]identity.User{
		"usr_alice": {ID: "usr_alice", Email: "alice@example.com", Language: "en", Status: identity.StatusActive, CreatedAt: ago(30 * 24 * time.Hour)},
		"usr_bob":   {ID: "usr_bob", Email: "bob@example.com", Language: "de", Status: identity.StatusActive, CreatedAt: ago(10 * 24 * time.Hour)},
	}, accounts: map[string][]identity.Account{
		"usr_alice": {{Login: 8673590, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_alice"}, {Login: 8673591, Currency: "EUR", Kind: identity.KindTrading, UserID: "usr_alice"}},
		"usr_bob":   {{Login: 8673592, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_bob"}},
	}}
	s.comp = &fakeCompliance{acts: acts, profiles: map[string]bo.KYCProfile{
		"usr_alice": {UserID: "usr_alice", Level: 1, Country: "DE", Source: "api", Reference: "kyc-case-17", UpdatedBy: "broker:kyc", UpdatedAt: ago(24 * time.Hour), Stored: true},
	}, history: map[string][]bo.KYCChange{}, holds: []bo.Hold{
		{TxnID: "dep_held", UserID: "usr_bob", Kind: "deposit", Rule: "card_country", Explanation: "The card was issued in BR; the user's country is GB.", State: bo.HoldOpen, CreatedAt: ago(40 * time.Minute)},
	}, limits: []bo.Limit{
		{LimitKey: bo.LimitKey{Direction: "deposit", Method: bo.AnyMethod, Currency: "USD", KYCLevel: 0}, PerDay: money.New(100000, usd), PerMonth: money.New(200000, usd)},
		{LimitKey: bo.LimitKey{Direction: "withdrawal", Method: "bank-transfer", Currency: "USD", KYCLevel: 1}, PerDay: money.New(1000000, usd), CountPerDay: 3},
	}, rules: []bo.Rule{
		{Name: "velocity", Title: "Velocity", Description: "Holds a user's deposit or withdrawal when, counting it, the user made more than 5 of that kind within 1 hour.",
			Enabled: true, Uses: []string{"count", "window", "amounts"}, Count: 5, Window: time.Hour, Amounts: map[string]money.Amount{"USD": money.New(1000000, usd)}},
		{Name: "new_destination", Title: "First withdrawal to a new destination", Description: "Holds a withdrawal to a bank account, card or wallet that no earlier completed withdrawal or deposit of the user used.", Enabled: true},
	}}
	s.rep = &fakeReports{timeline: map[string][]bo.TimelineEvent{
		"wd_done": {{At: ago(5 * time.Hour), Source: "session", What: "cashier screen opened"}, {At: ago(5 * time.Hour), Source: "funding", What: "→ requested"},
			{At: ago(4 * time.Hour), Source: "funding", What: "awaiting_approval → approved", Actor: "staff:" + financeID},
			{At: ago(4 * time.Hour), Source: "push", What: "push sending → applied", Detail: "balanceHistoryId 77"}},
	}, rows: []bo.TxRow{
		{ID: "wd_done", Kind: "withdrawal", UserID: "usr_alice", Email: "alice@example.com", Login: 8673590, MethodID: "bank-transfer", Provider: "sandbox",
			State: "completed", Amount: money.New(20000, usd), Credit: money.New(19900, usd), Fee: money.New(100, usd), CreatedAt: ago(5 * time.Hour), UpdatedAt: ago(4 * time.Hour)},
		{ID: "dep_1", Kind: "deposit", UserID: "usr_alice", Email: "alice@example.com", Login: 8673590, MethodID: "card", State: "completed",
			Amount: money.New(10000, usd), Credit: money.New(9720, usd), CreatedAt: ago(6 * time.Hour)},
		{ID: "dep_2", Kind: "deposit", UserID: "usr_bob", Email: "bob@example.com", Login: 8673592, MethodID: "card", State: "declined",
			Amount: money.New(5000, usd), CreatedAt: ago(7 * time.Hour)},
	}}
	s.rec = &fakeReconcile{acts: acts, runs: []bo.ReconRun{
		{ID: "rcn_1", Actor: "system", Status: "differences", Summary: "1 difference (1 new): 3 accounts, 5 payments checked", Differences: 1, NewCases: 1, StartedAt: ago(time.Hour), FinishedAt: ago(time.Hour).Add(2 * time.Second)},
	}, cases: []bo.ReconCase{
		{ID: "rcc_1", RunID: "rcn_1", Seen: 1, Kind: "ledger_vs_platform", Subject: "8673590", Expected: "1097.20 USD", Actual: "1000.00 USD",
			Evidence: []byte(`{"ledger":"1097.20","platform":"1000.00"}`), Status: "open", OpenedAt: ago(time.Hour)},
	}}
	s.audit = &fakeAudit{acts: acts, check: bo.AuditCheck{Checked: 3, HeadSeq: 3, HeadHash: strings.Repeat("ab", 32)}, entries: []bo.AuditEntry{
		{Seq: 3, At: ago(time.Hour), Actor: "staff:" + financeID, Action: "withdrawal.approved", Subject: "wd_done", Detail: map[string]string{"amount": "200.00 USD"}, Hash: strings.Repeat("c", 64)},
		{Seq: 2, At: ago(2 * time.Hour), Actor: "user:usr_alice", Action: "withdrawal.requested", Subject: "wd_done", Hash: strings.Repeat("d", 64)},
		{Seq: 1, At: ago(3 * time.Hour), Actor: "system", Action: "ledger.transfer", Subject: "dep_1", Hash: strings.Repeat("e", 64)},
	}}

	d := bo.Deps{Staff: s.staff, Renderer: web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"}),
		Funding: s.fund, Pushes: s.push, Payments: s.pay, Users: s.users, Compliance: s.comp, Reports: s.rep, Reconcile: s.rec, Audit: s.audit}
	opt := bo.Options{Clock: clk, Logger: slog.New(slog.DiscardHandler), Key: []byte("0123456789abcdef0123456789abcdef"), LoginBurst: 1000, PageSize: 2}
	for _, m := range mod {
		m(s, &d, &opt)
	}
	h, err := bo.New(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/backoffice/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// client is a browser without JavaScript: a cookie jar, no redirects
// followed.
type client struct {
	t    *testing.T
	s    *site
	hc   *http.Client
	csrf string
}

func (s *site) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &client{t: s.t, s: s, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// as returns a client signed in as the member (a session opened in the
// fake, without the login screens).
func (s *site) as(memberID string) *client {
	c := s.client()
	sess := s.staff.sessionFor(memberID)
	u, _ := url.Parse(s.url + "/backoffice/")
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "bo_session", Value: sess.Token, Path: "/backoffice"}})
	c.csrf = sess.CSRF
	return c
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (c *client) do(req *http.Request) page {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *client) get(path string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.s.url+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form with the session's CSRF token unless the form has a
// "csrf" field of its own.
func (c *client) post(path string, form url.Values) page {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, c.s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formCSRF is the CSRF token of the first form of a page.
func formCSRF(t *testing.T, p page) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", p.body)
	}
	return m[1]
}

// code is the member's TOTP code now (on the fake clock).
func (s *site) code(secret string) string {
	s.t.Helper()
	c, err := totp.GenerateCode(secret, s.clk.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// login signs in through the screens: password, then the TOTP code.
func (c *client) login(email, memberID string) page {
	c.t.Helper()
	p := c.get("/backoffice/login")
	if p.status != http.StatusOK {
		c.t.Fatalf("login page: %d", p.status)
	}
	p = c.post("/backoffice/login", url.Values{"csrf": {formCSRF(c.t, p)}, "email": {email}, "password": {password}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="code"`) {
		c.t.Fatalf("after the password: %d\n%s", p.status, p.body)
	}
	secret := c.s.staff.secretOf(memberID)
	if secret == "" {
		m := regexp.MustCompile(`id="secret">([A-Z2-7]+)<`).FindStringSubmatch(p.body)
		if m == nil {
			c.t.Fatalf("no enrolment secret shown:\n%s", p.body)
		}
		secret = m[1]
	}
	return c.post("/backoffice/login/totp", url.Values{"csrf": {formCSRF(c.t, p)}, "code": {c.s.code(secret)}})
}
