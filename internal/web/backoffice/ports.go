package backoffice

import (
	"context"
	"html/template"
	"io"
	"time"

	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/push"
)

// This file holds the ports: the small interfaces the screens and the
// admin API need of the services behind them, with their own types where
// the service is still being built (staff, compliance, reports,
// reconciliation, audit, funding's back-office calls), so that
// cmd/cashier adapts the real packages with thin adapters. Push, payments
// and identity are used with their own types: *push.Service,
// *payments.Service and *identity.Service implement their ports as they
// are.

// --- staff ---

// Permission is one thing a staff member may be allowed to do. The values
// are those of internal/staff.
type Permission string

// The permissions the screens check.
const (
	// PermView: read the work queues, transactions, dashboard, rules and
	// limits, and reconciliation.
	PermView Permission = "view"
	// PermExport: download the CSV export of transactions.
	PermExport Permission = "export"
	// PermUsersView: look up users, their accounts, KYC and transactions.
	PermUsersView Permission = "users.view"
	// PermWithdrawalsDecide: approve or reject withdrawals.
	PermWithdrawalsDecide Permission = "withdrawals.decide"
	// PermPushesResolve: resolve balance pushes in doubt.
	PermPushesResolve Permission = "pushes.resolve"
	// PermPaymentsReview: decide payments flagged for review, and clear
	// other flags after settling them by hand.
	PermPaymentsReview Permission = "payments.review"
	// PermHoldsDecide: release or reject deposits held by a fraud rule.
	PermHoldsDecide Permission = "holds.decide"
	// PermKYCSet: set a user's KYC level and country.
	PermKYCSet Permission = "kyc.set"
	// PermRulesEdit: edit limits and fraud rules.
	PermRulesEdit Permission = "rules.edit"
	// PermReconcile: run reconciliation and resolve its cases.
	PermReconcile Permission = "reconcile"
	// PermAuditView: search and verify the audit trail.
	PermAuditView Permission = "audit.view"
	// PermStaffManage: add staff, change roles, disable, reset TOTP.
	PermStaffManage Permission = "staff.manage"
)

// Roles are the staff roles, from the least to the most trusted (those of
// internal/staff).
var Roles = []string{"viewer", "support", "finance", "compliance", "admin"}

// Member is a staff member.
type Member struct {
	ID    string
	Email string
	Name  string
	Role  string // one of Roles
	// Status is "active" or "disabled" (disabled members cannot sign in).
	Status string
	// TOTPEnrolled is false until the member's first login enrols an
	// authenticator (and again after a reset).
	TOTPEnrolled bool
	// LockedUntil is the end of a lockout after wrong passwords or codes.
	LockedUntil time.Time
	CreatedAt   time.Time
	LastLoginAt time.Time // zero if never
}

// Enrolment is the TOTP secret a member adds to an authenticator app at
// the first login.
type Enrolment struct {
	Secret string // base32, shown as text
	URI    string // the otpauth:// URI
	// QRPNG is a PNG image of URI; empty, the screens draw one.
	QRPNG []byte
}

// PendingLogin is a login between the password and the TOTP code.
type PendingLogin struct {
	// Token is opaque and short-lived; CompleteLogin takes it.
	Token     string
	ExpiresAt time.Time
	// Enrol is set when the member has no authenticator yet.
	Enrol *Enrolment
}

// Session is a signed-in member.
type Session struct {
	// Token is the session's secret: the cookie of the screens and the
	// bearer token of the admin API.
	Token string
	// CSRF is the token every form of the session carries.
	CSRF      string
	Member    Member
	ExpiresAt time.Time
}

// NewMember describes a staff member to add.
type NewMember struct {
	Email    string
	Name     string
	Role     string
	Password string // the initial password, given to the member in person
	// Actor is who adds the member ("staff:<id>").
	Actor string
}

// Staff is what the screens need of internal/staff.
//
// BeginLogin checks an e-mail address and password: errs.Unauthorized for
// a wrong pair, errs.Forbidden for a disabled member, errs.RateLimited
// while locked out. CompleteLogin checks the TOTP code and opens a
// session: errs.Unauthorized for a wrong or replayed code or an unknown
// pending login, errs.Expired for a pending login that took too long,
// errs.RateLimited once locked out. Session returns the session of a
// token and slides its idle expiry: errs.Unauthorized for an unknown token
// or a disabled member, errs.Expired for an expired session. Authorize
// returns errs.Forbidden when the session's role lacks the permission.
// The member changes take the acting member ("staff:<id>") and return
// errs.Invalid, errs.NotFound, errs.Forbidden or errs.Conflict (the last
// admin, one's own role) with a message for the screen.
type Staff interface {
	BeginLogin(ctx context.Context, email, password string) (PendingLogin, error)
	CompleteLogin(ctx context.Context, pendingToken, code string) (Session, error)
	Session(ctx context.Context, token string) (Session, error)
	Logout(ctx context.Context, token string) error
	Authorize(s Session, p Permission) error

	Members(ctx context.Context) ([]Member, error)
	AddMember(ctx context.Context, m NewMember) (Member, error)
	SetRole(ctx context.Context, actor, memberID, role string) error
	Disable(ctx context.Context, actor, memberID string) error
	Enable(ctx context.Context, actor, memberID string) error
	ResetTOTP(ctx context.Context, actor, memberID string) error
}

// --- funding ---

// The kinds of Task (those of funding.TaskKind).
const (
	TaskApproval    = "withdrawal_approval"
	TaskPushInDoubt = "push_in_doubt"
	TaskFlagged     = "flagged"
)

// The flags that put a deposit or withdrawal on the task list (those of
// funding).
const (
	FlagPaymentReview   = "payment_review"
	FlagReviewHold      = "review_hold"
	FlagPlatformRefused = "platform_refused"
	FlagReturnRefused   = "return_refused"
	FlagRefundDue       = "refund_due"
)

// Task is one thing an operator has to look at: a withdrawal awaiting
// approval, a push in doubt, or a flagged deposit or withdrawal.
type Task struct {
	Kind string // TaskApproval, TaskPushInDoubt or TaskFlagged
	// ID is the deposit ("dep_…") or withdrawal ("wd_…").
	ID        string
	PushID    string // for TaskPushInDoubt
	PaymentID string // the deposit's or withdrawal's payment
	Flag      string // for TaskFlagged
	UserID    string
	Email     string // may be empty: the screens look it up
	Login     int64
	MethodID  string
	// Destination is a withdrawal's masked destination.
	Destination string
	// Amount is a withdrawal's amount or a deposit's credit, in the
	// trading account's currency.
	Amount money.Amount
	Status string
	// Since is when the task arose; CreatedAt when the deposit or
	// withdrawal was asked for.
	Since     time.Time
	CreatedAt time.Time
	// HoldRule and HoldNote name the fraud or compliance rule that holds
	// it and explain it.
	HoldRule, HoldNote string
	// FourEyes says a withdrawal is above the four-eyes amount: it needs
	// two approvals by different people. FirstApprovedBy is set once one
	// person approved it.
	FourEyes        bool
	FirstApprovedBy string
	FirstApprovedAt time.Time
}

// Decision is a deposit or withdrawal after an operator's decision.
type Decision struct {
	ID     string
	Status string
	// FirstApprovedBy and NeedsSecondApproval are set when the approval
	// was the first of two.
	FirstApprovedBy     string
	NeedsSecondApproval bool
}

// Funding is what the work queues need of internal/funding; FundingOf
// adapts *funding.Service. Every decision takes the acting staff member
// ("staff:<id>"). ApproveWithdrawal returns errs.Conflict when the
// withdrawal is not awaiting approval and errs.Forbidden when the first
// approver of a four-eyes withdrawal approves it again. Reasons and notes
// are required (errs.Invalid). Unknown ids are errs.NotFound.
type Funding interface {
	Tasks(ctx context.Context) ([]Task, error)
	ApproveWithdrawal(ctx context.Context, id, by string) (Decision, error)
	RejectWithdrawal(ctx context.Context, id, by, reason string) (Decision, error)
	ReleaseDeposit(ctx context.Context, id, by, note string) (Decision, error)
	RejectDeposit(ctx context.Context, id, by, reason string) (Decision, error)
	ClearFlag(ctx context.Context, id, by, note string) error
}

// --- pushes, payments, users ---

// Pushes is what the screens need of internal/push; *push.Service
// implements it. Resolve returns errs.Conflict unless the push is in
// doubt.
type Pushes interface {
	Get(ctx context.Context, id string) (push.Push, error)
	Events(ctx context.Context, id string) ([]push.Event, error)
	Resolve(ctx context.Context, id string, applied bool, operator, note string) (push.Push, error)
}

// Payments is what the screens need of internal/payments;
// *payments.Service implements it. ResolveReview returns errs.Conflict
// unless the payment is under review.
type Payments interface {
	Get(ctx context.Context, id string) (payments.Payment, error)
	History(ctx context.Context, id string) ([]payments.StatusChange, error)
	Events(ctx context.Context, paymentID string) ([]payments.StoredEvent, error)
	ResolveReview(ctx context.Context, id string, to payments.Status, operator, note string) (payments.Payment, error)
}

// Users finds traders; *identity.Service implements it. UserByID and
// UserByEmail return errs.NotFound for nobody.
type Users interface {
	UserByID(ctx context.Context, id string) (identity.User, error)
	UserByEmail(ctx context.Context, email string) (identity.User, error)
	Accounts(ctx context.Context, userID string) ([]identity.Account, error)
}

// --- compliance ---

// MaxKYCLevel is the highest KYC level (that of internal/compliance).
const MaxKYCLevel = 3

// KYCProfile is a user's KYC status.
type KYCProfile struct {
	UserID  string
	Level   int    // 0 = unverified
	Country string // ISO 3166-1 alpha-2
	// Source is "staff" or "api" (the broker's KYC system); Reference is
	// their reason or case reference.
	Source    string
	Reference string
	UpdatedBy string
	UpdatedAt time.Time
	// Stored is false for a user never set: the defaults apply.
	Stored bool
}

// KYCChange is one change of a KYC profile.
type KYCChange struct {
	Level     int
	Country   string
	Source    string
	Reference string
	// PreviousLevel is -1 for a user's first profile.
	PreviousLevel   int
	PreviousCountry string
	Actor           string
	At              time.Time
}

// KYCUpdate is a staff member's change to a KYC profile.
type KYCUpdate struct {
	Level     int
	Country   string
	Reference string // the reason or case reference
}

// The states of a Hold (those of internal/compliance).
const (
	HoldPending  = "pending"
	HoldOpen     = "open"
	HoldResolved = "resolved"
)

// Hold is a transaction a fraud rule held for review.
type Hold struct {
	TxnID       string // "dep_…" or "wd_…"
	UserID      string
	Kind        string // "deposit" or "withdrawal"
	Rule        string
	Explanation string
	Login       int64
	MethodID    string
	Amount      money.Amount
	State       string // HoldPending, HoldOpen or HoldResolved
	CreatedAt   time.Time
	ResolvedAt  time.Time
	Resolution  string // the status the transaction moved to
	ResolvedBy  string
}

// AnyMethod in a limit's Method counts every payment method together.
const AnyMethod = "*"

// LimitKey names a limit: the direction ("deposit" or "withdrawal"), a
// payment method id or AnyMethod, a currency code and the KYC level it
// applies from.
type LimitKey struct {
	Direction string
	Method    string
	Currency  string
	KYCLevel  int
}

// Limit caps what one user moves per calendar day and month in one
// direction and currency; zero means no cap of that kind.
type Limit struct {
	LimitKey
	PerDay, PerMonth           money.Amount
	CountPerDay, CountPerMonth int
	UpdatedBy                  string
	UpdatedAt                  time.Time
}

// Rule is a fraud rule's settings with its explanation.
type Rule struct {
	Name        string // "velocity", "new_destination", …
	Title       string
	Description string // what it does, with its current parameters
	Enabled     bool
	// Uses lists the parameters the rule takes: "count", "window",
	// "amounts".
	Uses    []string
	Count   int
	Window  time.Duration
	Amounts map[string]money.Amount // per currency code
	// UpdatedBy and UpdatedAt are empty while the defaults apply.
	UpdatedBy string
	UpdatedAt time.Time
}

// Compliance is what the screens need of internal/compliance. The changes
// take the acting staff member and return errs.Invalid with a message for
// a bad value. Profile of a user never set returns the defaults with
// Stored false. Holds lists the holds waiting for an operator (open true,
// oldest first) or every hold (newest first); Hold returns errs.NotFound
// when no rule held the transaction.
type Compliance interface {
	Profile(ctx context.Context, userID string) (KYCProfile, error)
	KYCHistory(ctx context.Context, userID string) ([]KYCChange, error)
	SetKYC(ctx context.Context, actor, userID string, u KYCUpdate) error
	Holds(ctx context.Context, open bool) ([]Hold, error)
	Hold(ctx context.Context, txnID string) (Hold, error)
	Limits(ctx context.Context) ([]Limit, error)
	SetLimit(ctx context.Context, actor string, l Limit) error
	Rules(ctx context.Context) ([]Rule, error)
	SetRule(ctx context.Context, actor string, r Rule) error
}

// --- reports ---

// TxFilter selects transactions; zero fields match everything. Amount
// bounds are in Currency.
type TxFilter struct {
	UserID    string
	Email     string
	Login     int64
	Kind      string   // "deposit", "withdrawal" or ""
	Status    []string // stored states
	MethodID  string
	From, To  time.Time // created at, From ≤ t < To
	MinAmount money.Amount
	MaxAmount money.Amount
	Currency  string
	Limit     int    // default 50
	Cursor    string // TxPage.Next of the page before
}

// TxRow is one transaction in a list.
type TxRow struct {
	ID       string
	Kind     string // "deposit" or "withdrawal"
	UserID   string
	Email    string
	Login    int64
	MethodID string
	Provider string
	State    string
	Flag     string
	// Amount is what the customer paid (deposit) or what left the trading
	// account (withdrawal); Credit what the other side received.
	Amount    money.Amount
	Fee       money.Amount
	Credit    money.Amount
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TxPage is a page of search results; Next is the cursor of the next
// page, empty on the last.
type TxPage struct {
	Rows []TxRow
	Next string
}

// TimelineEvent is one step in a transaction's life: a screen the trader
// saw, a status change, a provider event, a push, an approval.
type TimelineEvent struct {
	At     time.Time
	Source string // "session", "funding", "payment", "provider", "push"
	What   string
	Detail string
	Actor  string
}

// TxDetail is one transaction with its whole timeline, oldest first.
type TxDetail struct {
	Row       TxRow
	PaymentID string
	PushIDs   []string
	Timeline  []TimelineEvent
}

// Point is one value of a chart's series: Value is an exact decimal or a
// count, as text.
type Point struct {
	Label string
	Value string
}

// Series is one line or set of bars of a chart.
type Series struct {
	Name   string
	Points []Point
}

// Chart is one of the dashboard's charts: the picture as inline SVG
// (internal/reports draws it: no script, no style, every text escaped)
// and the numbers behind it.
type Chart struct {
	ID     string // "per_day", "approval_times", "decline_reasons", "funnel"
	Title  string
	SVG    template.HTML
	Series []Series
}

// Figure is a headline number of the dashboard.
type Figure struct {
	Name  string // machine name, e.g. "deposits_count"
	Label string
	Value string
}

// Dashboard is the dashboard for a period.
type Dashboard struct {
	From, To time.Time
	Figures  []Figure
	Charts   []Chart
}

// Reports is what the screens need of internal/reports. Search returns
// errs.Invalid with a message for a filter it cannot apply (a bad cursor,
// amounts in another currency); Timeline returns errs.NotFound for an
// unknown id; WriteCSV streams every match (Limit and Cursor ignored) to
// w; Dashboard returns errs.Invalid for a bad period.
type Reports interface {
	Search(ctx context.Context, f TxFilter) (TxPage, error)
	WriteCSV(ctx context.Context, w io.Writer, f TxFilter) error
	Timeline(ctx context.Context, id string) (TxDetail, error)
	Dashboard(ctx context.Context, from, to time.Time) (Dashboard, error)
}

// --- reconciliation ---

// ReconRun is one reconciliation run.
type ReconRun struct {
	ID          string
	Actor       string // "system" for the schedule, "staff:<id>"
	Status      string // "clean", "differences" or "incomplete"
	Summary     string // the run in a line
	Accounts    int
	Payments    int
	Differences int
	NewCases    int
	Notes       []string // what a run does not compare by design
	Skipped     []string // what could not be compared this time, and why
	StartedAt   time.Time
	FinishedAt  time.Time
}

// ReconCase is one difference found by reconciliation.
type ReconCase struct {
	ID       string
	RunID    string
	Seen     int    // how many runs found it
	Kind     string // "ledger_vs_platform", "payment_amount_differs", …
	Subject  string // the trading account or payment
	Ref      string // the push or provider id it is about
	Expected string // what our records say
	Actual   string // what the other side says
	// Evidence is a JSON object with what each side said.
	Evidence   []byte
	Status     string // "open" or "resolved"
	ResolvedBy string
	Note       string
	OpenedAt   time.Time
	ResolvedAt time.Time
}

// Reconcile is what the screens need of internal/reconcile. Runs lists
// the latest runs, newest first. Cases lists the open cases (open true) or
// the resolved ones (open false), at most limit. Resolve returns
// errs.Conflict for a case already resolved and errs.Invalid without a
// note; Run reconciles now.
type Reconcile interface {
	Runs(ctx context.Context, limit int) ([]ReconRun, error)
	Cases(ctx context.Context, open bool, limit int) ([]ReconCase, error)
	Resolve(ctx context.Context, caseID, actor, note string) (ReconCase, error)
	Run(ctx context.Context, actor string) (ReconRun, error)
}

// --- audit ---

// AuditQuery selects audit records; empty fields match everything.
type AuditQuery struct {
	Actor   string // exact
	Action  string // a prefix: "withdrawal." or "withdrawal.approved"
	Subject string // exact
	Text    string // a substring of a detail value
	// From (inclusive) and To (exclusive) bound the records' times.
	From, To time.Time
	// BeforeSeq pages backwards: only records older than it.
	BeforeSeq int64
	Limit     int // default 50
}

// AuditEntry is one record of the trail.
type AuditEntry struct {
	Seq     int64
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Detail  map[string]string
	Hash    string
}

// AuditProblem is one thing wrong with the chain.
type AuditProblem struct {
	Seq    int64
	Kind   string // "edited", "missing", "link", "head", "anchor"
	Detail string
}

// AuditCheck is the result of verifying the chain.
type AuditCheck struct {
	Checked  int64
	HeadSeq  int64
	HeadHash string
	Problems []AuditProblem
	// MoreProblems counts problems beyond those listed.
	MoreProblems int64
}

// OK reports whether the chain is intact.
func (c AuditCheck) OK() bool { return len(c.Problems) == 0 && c.MoreProblems == 0 }

// Audit is what the screens need of internal/audit. Search returns
// records newest first and errs.Invalid for a malformed query.
type Audit interface {
	Search(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	Verify(ctx context.Context) (AuditCheck, error)
}
