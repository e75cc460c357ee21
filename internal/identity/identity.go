// Package identity owns who a trader is: users with their passwords and cTID
// user ids, their trading accounts, every token kind the cTrader integration
// uses (crmApiToken, one-time tokens, accessToken, inappToken), password
// reset tokens and the short server-side cashier sessions that replace a
// one-time token once a cashier screen has opened.
//
// The package implements the broker side of cTrader's "SSO user creation and
// authorisation" option and its "one-time token handoff" option (see
// docs/identity.md). It talks to cTrader only through the small interfaces it
// declares (CTIDProvisioner, TraderCreator, HandoffRedeemer, TraderLookup);
// cmd/cashier wires the WebServices client or the simulator behind them.
//
// Every token is 256 bits from crypto/rand, written base64url without
// padding, and stored only as its SHA-256 hash. Plain tokens are returned to
// the caller once and never logged.
package identity

import (
	"embed"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed schema
var schemaFS embed.FS

// Schema holds the identity tables (migrations 00200–00299).
var Schema = sqlstore.Schema{Name: "identity", FS: mustSub(schemaFS, "schema")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Mode says who the identity provider is.
type Mode string

// The two identity modes of cTrader.
const (
	// ModeSSO: the broker owns identity. cTrader calls our /oauth2
	// endpoints, and in-app screens open with a one-time token we issued.
	ModeSSO Mode = "sso"
	// ModeHandoff: cTrader owns identity. In-app screens open with a token
	// cTrader issued, which we redeem at cTrader.
	ModeHandoff Mode = "handoff"
)

// Config holds the identity settings. Zero durations take the defaults
// listed in DefaultConfig.
type Config struct {
	Mode Mode
	// CRMPasswords are the shared passwords cTrader may present to
	// /oauth2/crmApiToken. Several are valid at once so that they can be
	// rotated; a token issued for a password stops working once the password
	// is removed from this list.
	CRMPasswords []string
	// CRMTokenTTL is the crmApiToken lifetime; the spec requires at least
	// seven days.
	CRMTokenTTL time.Duration
	// OTTokenTTL is the one-time token lifetime (the spec says one minute).
	OTTokenTTL time.Duration
	// AccessTokenTTL is the accessToken lifetime; negative means no expiry.
	AccessTokenTTL time.Duration
	// InAppTokenTTL is the inappToken lifetime.
	InAppTokenTTL time.Duration
	// CashierSessionTTL is the lifetime of a cashier session.
	CashierSessionTTL time.Duration
	// ResetTokenTTL is the lifetime of a password-reset link.
	ResetTokenTTL time.Duration
	// LockoutThreshold failed logins in a row lock a user out for
	// LockoutPeriod.
	LockoutThreshold int
	LockoutPeriod    time.Duration
	// DefaultLanguage is the broker's default language (ISO 639-1).
	DefaultLanguage string
	// Platform names the trading platform of accounts opened at signup.
	Platform string
	// HandoffKnownUsersOnly stops handoff mode from creating a local user
	// for a cTID user id (and e-mail) it has not seen; such users are then
	// refused until an operator adds them.
	HandoffKnownUsersOnly bool
	// Password sets the argon2id cost; zero takes DefaultPasswordParams.
	Password PasswordParams
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Mode:              ModeSSO,
		CRMTokenTTL:       7 * 24 * time.Hour,
		OTTokenTTL:        time.Minute,
		AccessTokenTTL:    90 * 24 * time.Hour,
		InAppTokenTTL:     30 * 24 * time.Hour,
		CashierSessionTTL: 30 * time.Minute,
		ResetTokenTTL:     30 * time.Minute,
		LockoutThreshold:  5,
		LockoutPeriod:     15 * time.Minute,
		DefaultLanguage:   "en",
		Platform:          "ctrader",
		Password:          DefaultPasswordParams,
	}
}

// MinCRMTokenTTL is the shortest crmApiToken lifetime the spec allows.
const MinCRMTokenTTL = 7 * 24 * time.Hour

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.CRMTokenTTL == 0 {
		c.CRMTokenTTL = d.CRMTokenTTL
	}
	if c.OTTokenTTL == 0 {
		c.OTTokenTTL = d.OTTokenTTL
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = d.AccessTokenTTL
	}
	if c.InAppTokenTTL == 0 {
		c.InAppTokenTTL = d.InAppTokenTTL
	}
	if c.CashierSessionTTL == 0 {
		c.CashierSessionTTL = d.CashierSessionTTL
	}
	if c.ResetTokenTTL == 0 {
		c.ResetTokenTTL = d.ResetTokenTTL
	}
	if c.LockoutThreshold == 0 {
		c.LockoutThreshold = d.LockoutThreshold
	}
	if c.LockoutPeriod == 0 {
		c.LockoutPeriod = d.LockoutPeriod
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = d.DefaultLanguage
	}
	if c.Platform == "" {
		c.Platform = d.Platform
	}
	if c.Password == (PasswordParams{}) {
		c.Password = d.Password
	}
	return c
}

// Validate checks the settings. It returns an errs.Invalid error naming the
// first one that is wrong.
func (c Config) Validate() error {
	const op = "identity.Config.Validate"
	switch {
	case c.Mode != ModeSSO && c.Mode != ModeHandoff:
		return errs.Ef(errs.Invalid, op, "mode %q is neither %q nor %q", c.Mode, ModeSSO, ModeHandoff)
	case c.CRMTokenTTL < MinCRMTokenTTL:
		return errs.Ef(errs.Invalid, op, "crmApiToken lifetime %s is shorter than the 7 days the spec requires", c.CRMTokenTTL)
	case c.OTTokenTTL <= 0 || c.OTTokenTTL > 10*time.Minute:
		return errs.Ef(errs.Invalid, op, "one-time token lifetime %s must be between 0 and 10m (the spec says 1m)", c.OTTokenTTL)
	case c.InAppTokenTTL < 0, c.CashierSessionTTL < 0, c.ResetTokenTTL < 0, c.LockoutPeriod < 0:
		return errs.E(errs.Invalid, op, "token lifetimes and the lockout period must be positive")
	case c.LockoutThreshold < 1:
		return errs.Ef(errs.Invalid, op, "lockout threshold %d must be at least 1", c.LockoutThreshold)
	}
	for i, p := range c.CRMPasswords {
		if len(p) < 8 {
			return errs.Ef(errs.Invalid, op, "crm password #%d is shorter than 8 characters", i+1)
		}
	}
	return c.Password.Validate()
}

// Deps are the collaborators of a Service. DB is required; the rest are
// optional where noted.
type Deps struct {
	DB    *sqlstore.DB
	Clock clock.Clock // nil means the system clock
	// Provisioner creates cTIDs and links trading accounts (SSO signup).
	// Without it, signup and login work but users get no cTID user id and
	// cannot be recognised by cTrader.
	Provisioner CTIDProvisioner
	// Traders opens trading accounts on the platform; without it, accounts
	// can only be linked by operators.
	Traders TraderCreator
	// Redeemer redeems cTrader's one-time tokens; required in handoff mode.
	Redeemer HandoffRedeemer
	// Lookup reads a trading account's currency for accounts that handoff
	// mode meets for the first time; optional.
	Lookup TraderLookup
	Logger *slog.Logger // nil means slog.Default()
	// Audit records every token revocation in the audit trail, in the
	// revoking transaction; nil records nothing.
	Audit audit.Recorder
}

// Service is the identity domain service. It is safe for concurrent use.
type Service struct {
	db       *sqlstore.DB
	clock    clock.Clock
	cfg      Config
	prov     CTIDProvisioner
	traders  TraderCreator
	redeemer HandoffRedeemer
	lookup   TraderLookup
	audit    audit.Recorder
	log      *slog.Logger
	crmRefs  []string // fingerprints of the configured crm passwords
	dummy    string   // a password hash to spend time on for unknown users
}

// New returns a Service. It returns an errs.Invalid error for bad settings,
// a missing database, or handoff mode without a redeemer.
func New(deps Deps, cfg Config) (*Service, error) {
	const op = "identity.New"
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errs.E(errs.Invalid, op, "a database is required")
	}
	if cfg.Mode == ModeHandoff && deps.Redeemer == nil {
		return nil, errs.E(errs.Invalid, op, "handoff mode needs a redeemer for cTrader's tokens")
	}
	if deps.Clock == nil {
		deps.Clock = clock.System{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Audit == nil {
		deps.Audit = audit.Discard
	}
	s := &Service{
		db: deps.DB, clock: deps.Clock, cfg: cfg,
		prov: deps.Provisioner, traders: deps.Traders, redeemer: deps.Redeemer, lookup: deps.Lookup,
		log: deps.Logger, audit: deps.Audit,
	}
	for _, p := range cfg.CRMPasswords {
		s.crmRefs = append(s.crmRefs, crmPasswordRef(p))
	}
	dummy, err := hashPassword("not a real password: spends the time of a check", cfg.Password)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	s.dummy = dummy
	return s, nil
}

// Config returns the settings in force, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Mode returns the identity mode.
func (s *Service) Mode() Mode { return s.cfg.Mode }

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// normalizeLanguage returns a lower-case two-letter code, or "".
func normalizeLanguage(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if len(lang) != 2 || lang[0] < 'a' || lang[0] > 'z' || lang[1] < 'a' || lang[1] > 'z' {
		return ""
	}
	return lang
}
