// Package withdrawwizard is the withdrawal wizard of seed 002: a client
// starts a wizard (a uuid), submits a withdrawal for it (or only previews
// one), proves the second factor with a code when one applies, and the
// withdrawal is then requested from funding.
//
// States of a wizard:
//
//	open ──submit──▶ awaiting_code ──right code──▶ done
//	  │                   └──code expired / attempts used up──▶ cancelled
//	  └──submit without a second factor──▶ done
//
// A preview (isPretend) changes nothing. A wizard expires Config.TTL after it
// was created unless it is done. The package imports no transport: the HTTP
// surface is internal/httpapi/wizardapi.
package withdrawwizard

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/twofactor"
)

//go:embed migrations
var migrations embed.FS

// Schema is the wizard part of the database (versions 00560–00569).
var Schema = sqlstore.Schema{Name: "withdrawwizard", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// The workflow strings of seed 002 responses. TerminateWorkflow is the
// seed's; the other two name the steps before it in the same style.
const (
	InitialWorkflow   = `B2B\TCA\Wizards\Workflow\InitialWorkflow`
	CodeWorkflow      = `B2B\TCA\Wizards\Workflow\CodeWorkflow`
	TerminateWorkflow = `B2B\TCA\Wizards\Workflow\TerminateWorkflow`
)

// Wizard states.
const (
	StateOpen         = "open"
	StateAwaitingCode = "awaiting_code"
	StateDone         = "done"
	StateCancelled    = "cancelled"
)

// Purpose is the twofactor purpose of wizard codes; the ref is the uuid.
const Purpose = "withdrawal"

// Defaults of Config.
const (
	DefaultTTL      = 30 * time.Minute
	DefaultTemplate = "Withdraw_Confirm"
)

// DefaultMethodNumbers maps seed 002's integer methodId to the method ids of
// the default catalog (internal/payments/default_methods.json). The numbers
// are part of the API: never renumber, only add.
var DefaultMethodNumbers = map[int]string{
	1: "card",
	2: "bank-transfer",
	3: "ewallet",
	4: "crypto",
}

// Funding is what the wizard needs from internal/funding; *funding.Service
// implements it.
type Funding interface {
	WithdrawalOptions(ctx context.Context, u funding.Customer, login int64) (funding.WithdrawalOptions, error)
	RequestWithdrawal(ctx context.Context, req funding.WithdrawalRequest) (funding.Withdrawal, error)
	Withdrawal(ctx context.Context, customerUserID, withdrawalID string) (funding.Withdrawal, error)
}

// Pricer prices a withdrawal; *payments.Service implements it.
type Pricer interface {
	PriceWithdrawal(ctx context.Context, methodID string, debit money.Amount, payout money.Currency, lang string) (payments.Price, error)
}

// Customer is the caller as funding sees them, with the name codes are
// addressed to.
type Customer struct {
	funding.Customer
	Name string
}

// CustomerFunc returns the customer behind a user id (cmd/cashier builds it
// from identity). It returns errs.NotFound for an unknown user.
type CustomerFunc func(ctx context.Context, userID string) (Customer, error)

// Deps are the services the wizard works with; all are required.
type Deps struct {
	DB        *sqlstore.DB
	Clock     clock.Clock
	Funding   Funding
	Pricer    Pricer
	TwoFactor *twofactor.Service
	Customers CustomerFunc
}

// Config holds the wizard's rules.
type Config struct {
	// TTL is how long a wizard may take from start to confirmation.
	TTL time.Duration
	// Require2FA sends a code by e-mail (to the customer's address) to
	// users who enrolled no second factor. Users who enrolled one always
	// confirm with it.
	Require2FA bool
	// MethodNumbers maps the API's integer methodId to catalog method ids;
	// nil means DefaultMethodNumbers.
	MethodNumbers map[int]string
	// Template names the code message (recipient.template).
	Template string
}

// Service runs wizards. It is safe for concurrent use.
type Service struct {
	d    Deps
	cfg  Config
	byID map[string]int
}

// New returns a service. It returns errs.Invalid for missing dependencies or
// a method mapping that names one id twice.
func New(d Deps, c Config) (*Service, error) {
	const op = "withdrawwizard.New"
	if d.DB == nil || d.Clock == nil || d.Funding == nil || d.Pricer == nil || d.TwoFactor == nil || d.Customers == nil {
		return nil, errs.E(errs.Invalid, op, "DB, Clock, Funding, Pricer, TwoFactor and Customers are required")
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.MethodNumbers == nil {
		c.MethodNumbers = DefaultMethodNumbers
	}
	if c.Template == "" {
		c.Template = DefaultTemplate
	}
	byID := make(map[string]int, len(c.MethodNumbers))
	for n, id := range c.MethodNumbers {
		if _, dup := byID[id]; dup || n <= 0 || id == "" {
			return nil, errs.Ef(errs.Invalid, op, "method numbers must be positive and name each method once (%d → %q)", n, id)
		}
		byID[id] = n
	}
	return &Service{d: d, cfg: c, byID: byID}, nil
}

// MethodNumber returns the API number of a catalog method id.
func (s *Service) MethodNumber(methodID string) (int, bool) {
	n, ok := s.byID[methodID]
	return n, ok
}

// Wizard is one withdrawal wizard.
type Wizard struct {
	UUID         string
	UserID       string
	State        string
	Login        int64
	MethodNumber int
	MethodID     string
	Amount       money.Amount // zero until submitted for a code
	Details      map[string]string
	WithdrawalID string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UpdatedAt    time.Time
}

// Start creates a wizard for the user. It returns errs.Invalid without a user.
func (s *Service) Start(ctx context.Context, userID string) (Wizard, error) {
	const op = "withdrawwizard.Start"
	if userID == "" {
		return Wizard{}, errs.E(errs.Invalid, op, "user id is required")
	}
	now := s.d.Clock.Now()
	w := Wizard{UUID: uuid.Must(uuid.NewV7()).String(), UserID: userID, State: StateOpen,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL), UpdatedAt: now}
	_, err := s.d.DB.Exec(ctx, `INSERT INTO withdrawwizard_wizards (uuid, user_id, state, created_at, expires_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, w.UUID, userID, w.State, sqlstore.Micros(now), sqlstore.Micros(w.ExpiresAt), sqlstore.Micros(now))
	if err != nil {
		return Wizard{}, errs.Wrap(op, err)
	}
	return w, nil
}

// Get returns the user's wizard. It returns errs.NotFound for an unknown
// uuid and for another user's wizard alike.
func (s *Service) Get(ctx context.Context, userID, id string) (Wizard, error) {
	const op = "withdrawwizard.Get"
	w, err := s.load(ctx, s.d.DB.QueryRow, userID, id, "")
	if err != nil {
		return Wizard{}, errs.Wrap(op, err)
	}
	return w, nil
}

type rowFunc func(ctx context.Context, q string, args ...any) *sql.Row

func (s *Service) load(ctx context.Context, row rowFunc, userID, id, suffix string) (Wizard, error) {
	var (
		w                         Wizard
		currency, details         string
		minor                     int64
		created, expires, updated int64
	)
	err := row(ctx, `SELECT uuid, user_id, state, login, method_number, method_id, currency, amount_minor, details,
		withdrawal_id, created_at, expires_at, updated_at FROM withdrawwizard_wizards WHERE uuid = ?`+suffix, id).
		Scan(&w.UUID, &w.UserID, &w.State, &w.Login, &w.MethodNumber, &w.MethodID, &currency, &minor, &details,
			&w.WithdrawalID, &created, &expires, &updated)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && w.UserID != userID) {
		return Wizard{}, errs.E(errs.NotFound, "withdrawwizard.load", "no such wizard")
	}
	if err != nil {
		return Wizard{}, err
	}
	if currency != "" {
		cur, err := money.LookupCurrency(currency)
		if err != nil {
			return Wizard{}, err
		}
		w.Amount = money.New(minor, cur)
	}
	if err := json.Unmarshal([]byte(details), &w.Details); err != nil {
		return Wizard{}, err
	}
	w.CreatedAt, w.ExpiresAt, w.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(expires), sqlstore.FromMicros(updated)
	return w, nil
}

func (s *Service) setState(ctx context.Context, id, from, to, withdrawalID string) error {
	_, err := s.d.DB.Exec(ctx, `UPDATE withdrawwizard_wizards SET state = ?, withdrawal_id = CASE WHEN ? = '' THEN withdrawal_id ELSE ? END,
		updated_at = ? WHERE uuid = ? AND state = ?`, to, withdrawalID, withdrawalID, sqlstore.Micros(s.d.Clock.Now()), id, from)
	return err
}
