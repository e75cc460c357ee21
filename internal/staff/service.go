package staff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Defaults of Options.
const (
	DefaultIssuer      = "OpenCashier back office"
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
	DefaultMaxFailures = 5
	DefaultLockFor     = 15 * time.Minute
	DefaultLoginTTL    = 5 * time.Minute
)

// Options configure a Service. Zero fields take the defaults above.
type Options struct {
	// Issuer is the name authenticator apps show beside the member's
	// e-mail address.
	Issuer string
	// SessionIdle ends a session that has not been used for this long;
	// every use slides it.
	SessionIdle time.Duration
	// SessionMax ends a session this long after login, however busy.
	SessionMax time.Duration
	// MaxFailures wrong passwords or codes in a row lock a member out.
	MaxFailures int
	// LockFor is how long a lockout lasts.
	LockFor time.Duration
	// LoginTTL is how long the pending token between password and TOTP
	// code is good for.
	LoginTTL time.Duration
	// Audit receives a record of every change and login, in the
	// transaction of the change. Nil keeps nothing (audit.Discard).
	Audit audit.Recorder
}

func (o Options) withDefaults() Options {
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.SessionMax <= 0 {
		o.SessionMax = DefaultSessionMax
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.LockFor <= 0 {
		o.LockFor = DefaultLockFor
	}
	if o.LoginTTL <= 0 {
		o.LoginTTL = DefaultLoginTTL
	}
	if o.Audit == nil {
		o.Audit = audit.Discard
	}
	return o
}

// Service manages staff members, their logins and sessions. It is safe for
// concurrent use.
type Service struct {
	db    *sqlstore.DB
	clock clock.Clock
	opt   Options

	dummyOnce sync.Once
	dummy     string // a hash to check unknown e-mail addresses against
}

// New returns a Service on db (migrated with Schema) telling time by clk
// (clock.System{} when nil).
func New(db *sqlstore.DB, clk clock.Clock, opt Options) *Service {
	if clk == nil {
		clk = clock.System{}
	}
	return &Service{db: db, clock: clk, opt: opt.withDefaults()}
}

// Options returns the options in force, defaults filled in.
func (s *Service) Options() Options { return s.opt }

func (s *Service) now() time.Time {
	// Stored instants have microsecond precision; so do returned ones.
	return sqlstore.FromMicros(sqlstore.Micros(s.clock.Now()))
}

// dummyHash is checked against when an e-mail address is unknown, so that
// a wrong address costs the same time as a wrong password.
func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy = hashPassword(newToken()) })
	return s.dummy
}

// record writes one audit record in tx.
func (s *Service) record(ctx context.Context, tx *sqlstore.Tx, actor, action, subject string, detail map[string]string) error {
	if err := s.opt.Audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		return errs.Wrap("staff.audit "+action, err)
	}
	return nil
}

// subject names a member in the audit trail.
func subject(memberID string) string { return "staff:" + memberID }

// newToken returns 32 random bytes as 43 base64url characters.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is how tokens are stored: hex SHA-256.
func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// wellFormedToken reports whether t looks like a token of newToken, so
// garbage is refused before the database is asked.
func wellFormedToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil
}

// emailKey is the case-insensitive form of an address, used for
// uniqueness and lookup.
func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
