// Package compliance is the back office's gate on money movements: KYC
// profiles (a verified level and a country per user), limits by KYC level
// per direction, method and currency, and fraud rules that hold a
// transaction for an operator's review.
//
// Funding asks it through funding.Screener (Service.Screen) when a deposit
// is started or paid and when a withdrawal is requested, and tells it of
// every status change through a funding.Hook (Service.OnFundingEvent). The
// package keeps its own record of each user's activity from those two
// sources; it never reads funding's tables.
//
// docs/compliance.md describes the levels, the limits, each rule with its
// parameters and defaults, and the broker's KYC API (package
// internal/httpapi/kycapi).
package compliance

import (
	"embed"
	"io/fs"
	"regexp"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the compliance part of the database (versions 00620–00629).
var Schema = sqlstore.Schema{Name: "compliance", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// MaxLevel is the highest KYC level; levels run from 0 (unverified) to
// MaxLevel.
const MaxLevel = 3

// Options configures the service. The zero value is valid: nobody is
// gated by KYC, no limit is configured and the fraud rules have their
// defaults (see DefaultRules).
type Options struct {
	Clock clock.Clock // default clock.System
	// Audit records KYC, limit and rule changes in the caller's
	// transaction; default audit.Discard.
	Audit audit.Recorder
	// Methods, when set, names payment methods in the messages customers
	// read and lets SetLimit refuse a method id that is not configured.
	Methods *payments.Catalog
	// Location is where calendar days and months of the limits begin;
	// default UTC.
	Location *time.Location

	// DefaultKYCLevel and DefaultCountry describe a user without a stored
	// profile.
	DefaultKYCLevel int
	DefaultCountry  string

	// VerifiedLevel is the KYC level from which a user counts as verified.
	// A user below it may deposit at most UnverifiedDepositAllowance in a
	// currency, in total over the user's lifetime. 0 turns the allowance
	// off. The usual setting is 1.
	VerifiedLevel int
	// UnverifiedDepositAllowance is the lifetime deposit allowance of an
	// unverified user, per currency code. When the map is empty the
	// allowance is off; when it is not, an unverified user cannot deposit
	// in a currency it does not list.
	UnverifiedDepositAllowance map[string]money.Amount
	// WithdrawalKYCLevel is the KYC level every withdrawal needs; 0 means
	// none. The usual setting is 1.
	WithdrawalKYCLevel int
}

// Service keeps KYC profiles, limits and fraud rules and screens deposits
// and withdrawals. It is safe for concurrent use.
type Service struct {
	db    *sqlstore.DB
	clock clock.Clock
	audit audit.Recorder
	opt   Options
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// New returns a service on db. It returns an errs.Invalid error for a
// missing database, levels outside 0..MaxLevel, a malformed default
// country, and an allowance that is negative or in another currency than
// its key.
func New(db *sqlstore.DB, opt Options) (*Service, error) {
	const op = "compliance.New"
	switch {
	case db == nil:
		return nil, errs.E(errs.Invalid, op, "a database is required")
	case !validLevel(opt.DefaultKYCLevel), !validLevel(opt.VerifiedLevel), !validLevel(opt.WithdrawalKYCLevel):
		return nil, errs.Ef(errs.Invalid, op, "KYC levels must be between 0 and %d", MaxLevel)
	case opt.DefaultCountry != "" && !countryCode.MatchString(opt.DefaultCountry):
		return nil, errs.Ef(errs.Invalid, op, "default country %q must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE", opt.DefaultCountry)
	}
	allowance := make(map[string]money.Amount, len(opt.UnverifiedDepositAllowance))
	for code, a := range opt.UnverifiedDepositAllowance {
		if a.Currency().Code != code || a.IsNegative() {
			return nil, errs.Ef(errs.Invalid, op, "the unverified deposit allowance for %s must be a non-negative amount in %s", code, code)
		}
		allowance[code] = a
	}
	opt.UnverifiedDepositAllowance = allowance
	if opt.Clock == nil {
		opt.Clock = clock.System{}
	}
	if opt.Audit == nil {
		opt.Audit = audit.Discard
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	return &Service{db: db, clock: opt.Clock, audit: opt.Audit, opt: opt}, nil
}

func validLevel(l int) bool { return l >= 0 && l <= MaxLevel }

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// dayStart and monthStart are the beginnings of the calendar day and month
// of t in the configured location.
func (s *Service) dayStart(t time.Time) time.Time {
	l := t.In(s.opt.Location)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.opt.Location)
}

func (s *Service) monthStart(t time.Time) time.Time {
	l := t.In(s.opt.Location)
	return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, s.opt.Location)
}

// methodName is the method's English name when the catalog knows it, else
// its id.
func (s *Service) methodName(id string) string {
	if s.opt.Methods != nil {
		if m, err := s.opt.Methods.Method(id); err == nil {
			return m.Name("en")
		}
	}
	return id
}
