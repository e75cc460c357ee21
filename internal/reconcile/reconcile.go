// Package reconcile compares the cashier's books with the outside world and
// turns every difference into a case with evidence.
//
// Two comparisons make a run:
//
//   - Per trading account: the ledger's platform:<platform>:<login> posted
//     balance (what the cashier moved onto the account) against the net of
//     the pushes our push table says were applied, and against what the
//     trading platform says the cashier changed: every applied push must be
//     on the platform once, with our externalId and the same type and
//     amount; every push recorded as not applied must be absent; and the
//     platform must hold no change in our id space that we have no push
//     for.
//   - Per payment provider that offers a report (psp.Reporter): every
//     payment and payout we hold as succeeded must be in the report as
//     succeeded with the same amount, and every report line must be known to
//     us with the same status (and, when it succeeded, the same amount).
//
// A difference is reported only when two reads in a row agree on it, so a
// push or a payment that settles while a run reads does not open a case.
// Each difference becomes a case (reconcile_cases) with what each side said;
// the next run that finds the same difference updates the open case instead
// of opening another, and a difference an operator resolved is not reopened
// while it stays exactly the same. Runs and resolutions are written to the
// audit trail through an optional audit.Recorder.
//
// The scheduled run is the job kind JobKind: its handler enqueues the next
// run at the next multiple of Config.Interval (one job per slot, by dedup
// key) and then runs. docs/reconciliation.md describes what is compared and
// why.
package reconcile

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the reconciliation tables (versions 00630–00639).
var Schema = sqlstore.Schema{Name: "reconcile", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("reconcile: embedded " + dir + ": " + err.Error())
	}
	return sub
}

// Ledger reads the ledger's accounts by id prefix; *ledger.Ledger is one.
type Ledger interface {
	Accounts(ctx context.Context, prefix string) ([]ledger.Account, error)
}

// Pushes reads our push records; *push.Service is one. List with an empty
// state lists every push, newest first, at most limit.
type Pushes interface {
	List(ctx context.Context, state push.State, limit int) ([]push.Push, error)
	Get(ctx context.Context, id string) (push.Push, error)
}

// Payments reads our payment records; *payments.Service is one.
type Payments interface {
	List(ctx context.Context, f payments.ListFilter) ([]payments.Payment, error)
	Get(ctx context.Context, id string) (payments.Payment, error)
}

// PlatformChange is one entry of a trading account's balance history on the
// platform.
type PlatformChange struct {
	ExternalID string              // the id the change was made with; ours for the cashier's changes
	HistoryID  int64               // the platform's balance-history id (0 for bonus moves)
	Type       platform.ChangeType // DEPOSIT, WITHDRAW or a bonus type
	Delta      money.Amount        // signed: positive adds to the account
	Balance    money.Amount        // the balance after the change, when the platform says
	At         time.Time
}

// History reads a trading account's balance history from the platform.
// BalanceHistory returns every change of the login, oldest first. It returns
// an error that errors.Is platform.ErrLookupUnsupported when the platform
// offers no history, and one with code errs.NotFound for a login the
// platform does not know.
//
// cTrader documents no such call; the cTrader simulator offers it as an
// extension (ctrader.Client.BalanceHistory), which cmd/cashier adapts.
type History interface {
	BalanceHistory(ctx context.Context, login int64) ([]PlatformChange, error)
}

// Deps are the services a Service reads. DB, Ledger and Pushes are
// required for the account comparison, Payments and Providers for the
// provider comparison.
type Deps struct {
	DB     *sqlstore.DB
	Clock  clock.Clock // default clock.System
	Ledger Ledger
	Pushes Pushes
	// Platform reads accounts (the balance, for the record) and, when it
	// implements platform.ChangeLookup, finds changes by our id where
	// History is missing or unsupported. Nil compares the ledger with our
	// pushes only.
	Platform platform.Connector
	// History, when set, gives the platform's balance history: amounts are
	// compared and changes we have no push for are found.
	History  History
	Payments Payments
	// Providers are reconciled when they implement psp.Reporter; the others
	// are named in the run's notes.
	Providers []psp.Provider
	// Audit records runs, new cases and resolutions (default audit.Discard).
	Audit  audit.Recorder
	Logger *slog.Logger
}

// Config tunes a Service.
type Config struct {
	// Platform names the trading platform in ledger account ids (default
	// "ctrader": platform:ctrader:<login>).
	Platform string
	// Interval is how often the scheduled run runs (default 1 hour). Runs
	// are due at multiples of it (on the hour, by default).
	Interval time.Duration
	// Settle is how old a provider's change and our record of it must be
	// before they are compared (default 15 minutes): younger ones may still
	// be on their way (a webhook, a poll) and wait for the next run.
	Settle time.Duration
	// ReportSlack is how much earlier than a run's From the provider's
	// report is read (default 48 hours), so that a payment we finished
	// inside the window is found even if the provider finished it before.
	ReportSlack time.Duration
	// ExternalIDPrefixes mark the platform changes that are ours by their
	// externalId (default "dep_" and "wd_", the ids of funding's pushes): a
	// change with such an id that we have no push for is a difference.
	ExternalIDPrefixes []string
}

// Defaults of Config.
const (
	DefaultPlatform    = "ctrader"
	DefaultInterval    = time.Hour
	DefaultSettle      = 15 * time.Minute
	DefaultReportSlack = 48 * time.Hour
)

// DefaultExternalIDPrefixes are the prefixes of funding's push ids.
var DefaultExternalIDPrefixes = []string{"dep_", "wd_"}

// Service runs reconciliations and keeps their cases. It is safe for
// concurrent use; two runs at once are harmless (a difference still has
// one open case).
type Service struct {
	d   Deps
	cfg Config
	log *slog.Logger
}

// New returns a Service. It returns an errs.Invalid error without a
// database, without a ledger or pushes, or with providers but no payments.
func New(d Deps, cfg Config) (*Service, error) {
	const op = "reconcile.New"
	switch {
	case d.DB == nil:
		return nil, errs.E(errs.Invalid, op, "a database is required")
	case d.Ledger == nil || d.Pushes == nil:
		return nil, errs.E(errs.Invalid, op, "the ledger and the push records are required")
	case len(d.Providers) > 0 && d.Payments == nil:
		return nil, errs.E(errs.Invalid, op, "providers need the payment records")
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Audit == nil {
		d.Audit = audit.Discard
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if cfg.Platform == "" {
		cfg.Platform = DefaultPlatform
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.ReportSlack <= 0 {
		cfg.ReportSlack = DefaultReportSlack
	}
	if len(cfg.ExternalIDPrefixes) == 0 {
		cfg.ExternalIDPrefixes = DefaultExternalIDPrefixes
	}
	return &Service{d: d, cfg: cfg, log: d.Logger.With("component", "reconcile")}, nil
}

// PlatformAccountID is the ledger account of what the cashier moved onto a
// trading account: platform:<platform>:<login>.
func (s *Service) PlatformAccountID(login int64) string {
	return "platform:" + s.cfg.Platform + ":" + itoa(login)
}

// ours reports whether an externalId is in the cashier's id space.
func (s *Service) ours(externalID string) bool {
	for _, p := range s.cfg.ExternalIDPrefixes {
		if strings.HasPrefix(externalID, p) {
			return true
		}
	}
	return false
}

func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

// Kind says what a case is about.
type Kind string

// The kinds of case. The first seven come from the account comparison
// (subject: the login), the others from the provider comparison (subject:
// the payment id).
const (
	// KindLedgerVsPushes: the ledger's platform account differs from the net
	// of the pushes our push table says were applied.
	KindLedgerVsPushes Kind = "ledger_vs_pushes"
	// KindLedgerVsPlatform: the ledger's platform account differs from the
	// net of the changes the platform holds with our ids.
	KindLedgerVsPlatform Kind = "ledger_vs_platform"
	// KindPushMissing: a push recorded applied is not on the platform.
	KindPushMissing Kind = "push_missing_on_platform"
	// KindPushAmount: the platform's change with a push's id has another
	// type or amount.
	KindPushAmount Kind = "push_amount_differs"
	// KindPushDuplicated: the platform holds a push's id more than once.
	KindPushDuplicated Kind = "push_duplicated_on_platform"
	// KindPushNotApplied: a push recorded as not applied (rejected,
	// resolved not applied) is on the platform.
	KindPushNotApplied Kind = "push_on_platform_not_applied"
	// KindPlatformUnknown: the platform holds a change in our id space that
	// no push of ours (on that login) made.
	KindPlatformUnknown Kind = "platform_change_unknown"

	// KindPaymentMissing: a payment or payout we hold as succeeded is not
	// in the provider's report.
	KindPaymentMissing Kind = "payment_missing_in_report"
	// KindPaymentStatus: the report and we disagree on a final status.
	KindPaymentStatus Kind = "payment_status_differs"
	// KindPaymentAmount: both say succeeded, with different amounts.
	KindPaymentAmount Kind = "payment_amount_differs"
	// KindPaymentKind: the report has a payout where we have a deposit, or
	// the other way round.
	KindPaymentKind Kind = "payment_kind_differs"
	// KindReportUnknown: a report line we have no payment for (at that
	// provider).
	KindReportUnknown Kind = "report_line_unknown"
)

// CaseStatus is open until an operator resolves the case.
type CaseStatus string

// The case statuses.
const (
	Open     CaseStatus = "open"
	Resolved CaseStatus = "resolved"
)

// Case is one difference found by a run.
type Case struct {
	ID        string // "rcc_" + UUIDv7
	RunID     string // the run that opened it
	LastRunID string // the latest run that found it
	Seen      int    // how many runs found it
	Kind      Kind
	Subject   string // the login (account cases) or the payment id (provider cases)
	Ref       string // the push id or the provider's id it is about, if any
	Expected  string // what our records say
	Actual    string // what the other side says
	// Evidence is a JSON object with what each side said.
	Evidence   json.RawMessage
	Status     CaseStatus
	ResolvedBy string
	Note       string
	OpenedAt   time.Time
	UpdatedAt  time.Time
	ResolvedAt time.Time
}

// RunStatus sums a run up.
type RunStatus string

// The run statuses.
const (
	// Clean: everything compared agreed.
	Clean RunStatus = "clean"
	// Differences: at least one difference was found (new or still open).
	Differences RunStatus = "differences"
	// Incomplete: no difference was found, but something could not be
	// compared (Run.Skipped says what and why).
	Incomplete RunStatus = "incomplete"
)

// RunOptions selects what a run compares.
type RunOptions struct {
	// Actor is recorded with the run ("system" for the schedule,
	// "operator:<name>", "staff:<id>"); default "system".
	Actor string
	// Login, when set, compares only that trading account and its payments;
	// report lines we have no payment for cannot be told apart by account
	// and are then not reported.
	Login int64
	// From limits the provider comparison to changes at or after it, and
	// the platform look-ups of single pushes (when there is no history) to
	// pushes settled at or after it. Zero compares everything.
	From time.Time
	// To limits the provider comparison to changes before it; zero means
	// now less Config.Settle.
	To time.Time
}

// AccountFigures are one trading account's totals in a run.
type AccountFigures struct {
	Login int64 `json:"login"`
	// Ledger is the posted balance of platform:<platform>:<login>.
	Ledger string `json:"ledger"`
	// Pushes is the net of the pushes recorded applied (DEPOSIT less
	// WITHDRAW), and Applied, NotApplied and InFlight count the pushes.
	Pushes     string `json:"pushes"`
	Applied    int    `json:"applied"`
	NotApplied int    `json:"notApplied"`
	InFlight   int    `json:"inFlight"`
	// Platform is the net of the changes the platform holds with our ids
	// (in-flight pushes left out); empty without a balance history.
	Platform string `json:"platform,omitempty"`
	// Balance is the platform's balance of the account, when it answers,
	// and Outside what it holds beyond what the cashier moved (Balance less
	// Platform, or less Pushes without a history): the opening balance,
	// trading P&L, swaps, commissions and changes made outside the cashier.
	// It is recorded, never compared.
	Balance string `json:"balance,omitempty"`
	Outside string `json:"outside,omitempty"`
}

// ProviderFigures are one provider's totals in a run.
type ProviderFigures struct {
	Name        string `json:"name"`
	ReportLines int    `json:"reportLines"`
	Payments    int    `json:"payments"` // payments and payouts compared
}

// Run is one reconciliation.
type Run struct {
	ID         string // "rcn_" + UUIDv7
	Actor      string
	Login      int64     // 0: every account
	From, To   time.Time // From zero: from the beginning
	Status     RunStatus
	Accounts   int // trading accounts compared
	Pushes     int // pushes compared
	Payments   int // payments and payouts compared
	ReportLine int // provider report lines read
	// Differences counts what this run found, NewCases the cases it opened
	// (the rest were open already, or resolved before unchanged).
	Differences int
	NewCases    int
	Detail      RunDetail
	StartedAt   time.Time
	FinishedAt  time.Time
}

// RunDetail is what a run kept beyond its counts.
type RunDetail struct {
	Providers []ProviderFigures `json:"providers,omitempty"`
	Accounts  []AccountFigures  `json:"accounts,omitempty"`
	// Notes say what a run does not compare by design (a provider without
	// a report, a platform without a history).
	Notes []string `json:"notes,omitempty"`
	// Skipped says what could not be compared this time and why (the
	// platform or a provider did not answer); it makes a run incomplete.
	Skipped []string `json:"skipped,omitempty"`
	// Cases are the ids of the cases this run found (new and still open).
	Cases []string `json:"cases,omitempty"`
	// Accepted are resolved cases whose difference this run found again,
	// unchanged: an operator explained it, so it counts as no difference.
	Accepted []string `json:"accepted,omitempty"`
}

// Summary is the run in a line: "clean: 12 accounts, 40 payments checked",
// or the number of differences.
func (r Run) Summary() string {
	counts := plural(r.Accounts, "account") + ", " + plural(r.Payments, "payment") + " checked"
	if n := len(r.Detail.Accepted); n > 0 {
		counts += " (" + plural(n, "resolved difference") + " still there)"
	}
	switch r.Status {
	case Clean:
		return "clean: " + counts
	case Incomplete:
		return "incomplete: " + counts + "; " + plural(len(r.Detail.Skipped), "part") + " could not be compared"
	}
	return plural(r.Differences, "difference") + " (" + itoa(int64(r.NewCases)) + " new): " + counts
}
