package backofficetest

import (
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/web"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// The staff of the fixture: one member per role, a second in finance (for
// four-eyes) and a newcomer in finance who has not enrolled TOTP yet. All
// have Password.
const (
	Password = "correct horse battery staple"

	ViewerID      = "stf_viewer"
	SupportID     = "stf_support"
	FinanceID     = "stf_finance"
	Finance2ID    = "stf_finance2"
	ComplianceID  = "stf_compliance"
	AdminID       = "stf_admin"
	NewcomerID    = "stf_newcomer"
	NewcomerEmail = "newcomer@broker.test"
)

// RoleIDs maps each role to its member of the fixture ("<role>@broker.test").
var RoleIDs = map[string]string{"viewer": ViewerID, "support": SupportID, "finance": FinanceID, "compliance": ComplianceID, "admin": AdminID}

// T0 is the fixture's "now".
var T0 = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

// Fixture is every port faked with a small, consistent data set: three
// withdrawals awaiting approval (wd_small held by new_destination, wd_big
// above the four-eyes amount, wd_rej), a push in doubt
// (dep_pushed:credit), a payment under review (pay_review of dep_review),
// two held deposits (dep_held, dep_held2), a deposit flagged
// platform_refused (dep_refused), users usr_alice and usr_bob,
// transactions wd_done, dep_1 and dep_2, an open reconciliation case
// rcc_1 and three audit records.
type Fixture struct {
	Clock      *clock.Fake
	Acts       *Actions
	Staff      *Staff
	Funding    *Funding
	Pushes     *Pushes
	Payments   *Payments
	Users      *Users
	Compliance *Compliance
	Reports    *Reports
	Reconcile  *Reconcile
	Audit      *Audit
}

// NewFixture builds the fixture on a fake clock at T0.
func NewFixture() *Fixture {
	clk := clock.NewFake(T0)
	acts := &Actions{}
	f := &Fixture{Clock: clk, Acts: acts, Staff: NewStaff(clk, acts)}
	for role, id := range RoleIDs {
		f.Staff.Add(id, role+"@broker.test", strings.ToUpper(role[:1])+role[1:]+" Person", role, Password, true)
	}
	f.Staff.Add(Finance2ID, "finance2@broker.test", "Fiona Second", "finance", Password, true)
	f.Staff.Add(NewcomerID, NewcomerEmail, "New Comer", "finance", Password, false)

	ago := func(d time.Duration) time.Time { return T0.Add(-d) }
	f.Funding = &Funding{acts: acts, TaskList: []bo.Task{
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
	f.Pushes = &Pushes{acts: acts, Pushes: map[string]push.Push{
		"dep_pushed:credit": PushInDoubt("dep_pushed:credit", "dep_pushed", 8673590, money.New(9720, usd), ago(15*time.Minute)),
	}, EventsByID: map[string][]push.Event{
		"dep_pushed:credit": {{At: ago(16 * time.Minute), To: push.Queued, Detail: "enqueued"}, {At: ago(16 * time.Minute), From: push.Queued, To: push.Sending},
			{At: ago(15 * time.Minute), From: push.Sending, To: push.InDoubt, Detail: "POST changebalance: context deadline exceeded after 5s"}},
	}}
	f.Payments = &Payments{acts: acts, Payments: map[string]payments.Payment{
		"pay_review": {ID: "pay_review", Direction: payments.Deposit, MethodID: "card", Provider: "sandbox", ProviderRef: "sb_123", CustomerID: "usr_alice",
			CustomerEmail: "alice@example.com", AccountID: "8673591", Gross: money.New(5000, eur), Net: money.New(4850, eur), Received: money.New(4500, eur),
			Status: payments.Review, Reason: payments.ReasonAmountMismatch, Message: "the provider reports 45.00 EUR, we asked for 50.00 EUR", CreatedAt: ago(2 * time.Hour)},
	}, EventsByID: map[string][]payments.StoredEvent{
		"pay_review": {{ID: "pev_1", Provider: "sandbox", PaymentID: "pay_review", Source: "webhook", Outcome: payments.OutcomeReview, ReceivedAt: ago(2 * time.Hour),
			Body: []byte(`{"id":"sb_123","status":"succeeded","amount":"45.00","currency":"EUR"}`)}},
	}}
	f.Users = &Users{Users: map[string]identity.User{
		"usr_alice": {ID: "usr_alice", Email: "alice@example.com", Language: "en", Status: identity.StatusActive, CreatedAt: ago(30 * 24 * time.Hour)},
		"usr_bob":   {ID: "usr_bob", Email: "bob@example.com", Language: "de", Status: identity.StatusActive, CreatedAt: ago(10 * 24 * time.Hour)},
	}, AccountsByUser: map[string][]identity.Account{
		"usr_alice": {{Login: 8673590, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_alice"}, {Login: 8673591, Currency: "EUR", Kind: identity.KindTrading, UserID: "usr_alice"}},
		"usr_bob":   {{Login: 8673592, Currency: "USD", Kind: identity.KindTrading, UserID: "usr_bob"}},
	}}
	f.Compliance = &Compliance{acts: acts, Profiles: map[string]bo.KYCProfile{
		"usr_alice": {UserID: "usr_alice", Level: 1, Country: "DE", Source: "api", Reference: "kyc-case-17", UpdatedBy: "broker:kyc", UpdatedAt: ago(24 * time.Hour), Stored: true},
	}, History: map[string][]bo.KYCChange{}, HoldList: []bo.Hold{
		{TxnID: "dep_held", UserID: "usr_bob", Kind: "deposit", Rule: "card_country", Explanation: "The card was issued in BR; the user's country is GB.", State: bo.HoldOpen, CreatedAt: ago(40 * time.Minute)},
	}, LimitList: []bo.Limit{
		{LimitKey: bo.LimitKey{Direction: "deposit", Method: bo.AnyMethod, Currency: "USD", KYCLevel: 0}, PerDay: money.New(100000, usd), PerMonth: money.New(200000, usd)},
		{LimitKey: bo.LimitKey{Direction: "withdrawal", Method: "bank-transfer", Currency: "USD", KYCLevel: 1}, PerDay: money.New(1000000, usd), CountPerDay: 3},
	}, RuleList: []bo.Rule{
		{Name: "velocity", Title: "Velocity", Description: "Holds a user's deposit or withdrawal when, counting it, the user made more than 5 of that kind within 1 hour.",
			Enabled: true, Uses: []string{"count", "window", "amounts"}, Count: 5, Window: time.Hour, Amounts: map[string]money.Amount{"USD": money.New(1000000, usd)}},
		{Name: "new_destination", Title: "First withdrawal to a new destination", Description: "Holds a withdrawal to a bank account, card or wallet that no earlier completed withdrawal or deposit of the user used.", Enabled: true},
	}}
	f.Reports = &Reports{Timelines: map[string][]bo.TimelineEvent{
		"wd_done": {{At: ago(5 * time.Hour), Source: "session", What: "cashier screen opened"}, {At: ago(5 * time.Hour), Source: "funding", What: "→ requested"},
			{At: ago(4 * time.Hour), Source: "funding", What: "awaiting_approval → approved", Actor: "staff:" + FinanceID},
			{At: ago(4 * time.Hour), Source: "push", What: "push sending → applied", Detail: "balanceHistoryId 77"}},
	}, Rows: []bo.TxRow{
		{ID: "wd_done", Kind: "withdrawal", UserID: "usr_alice", Email: "alice@example.com", Login: 8673590, MethodID: "bank-transfer", Provider: "sandbox",
			State: "completed", Amount: money.New(20000, usd), Credit: money.New(19900, usd), Fee: money.New(100, usd), CreatedAt: ago(5 * time.Hour), UpdatedAt: ago(4 * time.Hour)},
		{ID: "dep_1", Kind: "deposit", UserID: "usr_alice", Email: "alice@example.com", Login: 8673590, MethodID: "card", State: "completed",
			Amount: money.New(10000, usd), Credit: money.New(9720, usd), CreatedAt: ago(6 * time.Hour)},
		{ID: "dep_2", Kind: "deposit", UserID: "usr_bob", Email: "bob@example.com", Login: 8673592, MethodID: "card", State: "declined",
			Amount: money.New(5000, usd), CreatedAt: ago(7 * time.Hour)},
	}}
	f.Reconcile = &Reconcile{acts: acts, RunList: []bo.ReconRun{
		{ID: "rcn_1", Actor: "system", Status: "differences", Summary: "1 difference (1 new): 3 accounts, 5 payments checked", Differences: 1, NewCases: 1, StartedAt: ago(time.Hour), FinishedAt: ago(time.Hour).Add(2 * time.Second)},
	}, CaseList: []bo.ReconCase{
		{ID: "rcc_1", RunID: "rcn_1", Seen: 1, Kind: "ledger_vs_platform", Subject: "8673590", Expected: "1097.20 USD", Actual: "1000.00 USD",
			Evidence: []byte(`{"ledger":"1097.20","platform":"1000.00"}`), Status: "open", OpenedAt: ago(time.Hour)},
	}}
	f.Audit = &Audit{acts: acts, Check: bo.AuditCheck{Checked: 3, HeadSeq: 3, HeadHash: strings.Repeat("ab", 32)}, Entries: []bo.AuditEntry{
		{Seq: 3, At: ago(time.Hour), Actor: "staff:" + FinanceID, Action: "withdrawal.approved", Subject: "wd_done", Detail: map[string]string{"amount": "200.00 USD"}, Hash: strings.Repeat("c", 64)},
		{Seq: 2, At: ago(2 * time.Hour), Actor: "user:usr_alice", Action: "withdrawal.requested", Subject: "wd_done", Hash: strings.Repeat("d", 64)},
		{Seq: 1, At: ago(3 * time.Hour), Actor: "system", Action: "ledger.transfer", Subject: "dep_1", Hash: strings.Repeat("e", 64)},
	}}

	return f
}

// Deps returns the fixture's fakes as the screens' dependencies, with a
// renderer of its own.
func (f *Fixture) Deps() bo.Deps {
	return bo.Deps{Staff: f.Staff, Renderer: web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"}),
		Funding: f.Funding, Pushes: f.Pushes, Payments: f.Payments, Users: f.Users, Compliance: f.Compliance, Reports: f.Reports,
		Reconcile: f.Reconcile, Audit: f.Audit}
}
