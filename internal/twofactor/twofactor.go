// Package twofactor is the second factor of OpenCashier: each user's chosen
// method (a code by e-mail, a code by SMS, or a TOTP code from an
// authenticator app such as Google Authenticator), and code challenges bound
// to a purpose and a reference (a withdrawal wizard, a login).
//
// Codes are six digits from crypto/rand, stored only as a SHA-256 hash salted
// with the challenge id. Expiry, the count of wrong attempts and the resend
// cool-down live in the database, so they hold across replicas and restarts.
// A TOTP code is accepted once: the last accepted 30-second step is stored,
// and a code of that step or an earlier one is refused (the replay guard).
package twofactor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the twofactor part of the database (versions 00550–00559).
var Schema = sqlstore.Schema{Name: "twofactor", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Method is how a user proves the second factor.
type Method string

// The methods, named as seed 002 names them in recipient.method.
const (
	Email  Method = "email"
	SMS    Method = "sms"
	Google Method = "google"
)

// Valid reports whether m is one of the methods.
func (m Method) Valid() bool { return m == Email || m == SMS || m == Google }

// Challenge states.
const (
	StatePending   = "pending"
	StateVerified  = "verified"
	StateExpired   = "expired"
	StateExhausted = "exhausted"
)

// Defaults of Config.
const (
	DefaultCodeTTL        = 10 * time.Minute
	DefaultAttempts       = 5
	DefaultResendCooldown = time.Minute
	DefaultIssuer         = "OpenCashier"
	codeDigits            = 6
)

// Config holds the rules for codes.
type Config struct {
	// CodeTTL is how long a code (and a TOTP challenge) stays valid.
	CodeTTL time.Duration
	// Attempts is how many wrong codes a challenge takes before it is
	// used up.
	Attempts int
	// ResendCooldown is how long after a code was sent before another may
	// be sent for the same challenge.
	ResendCooldown time.Duration
	// Issuer is the name authenticator apps show next to the account.
	Issuer string
}

func (c Config) withDefaults() Config {
	if c.CodeTTL <= 0 {
		c.CodeTTL = DefaultCodeTTL
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.ResendCooldown <= 0 {
		c.ResendCooldown = DefaultResendCooldown
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	return c
}

// Deps are what the service works with. DB and Clock are required; Mailer is
// needed for e-mail codes and SMS for SMS codes (a challenge by a method
// without its sender fails with errs.Unavailable).
type Deps struct {
	DB     *sqlstore.DB
	Clock  clock.Clock
	Mailer mail.Mailer
	SMS    SMSSender
	// Rand is the source of codes and TOTP secrets; crypto/rand when nil.
	Rand io.Reader
}

// Service keeps enrolments and challenges. It is safe for concurrent use.
type Service struct {
	d   Deps
	cfg Config
}

// New returns a service. It returns errs.Invalid without a DB or a Clock.
func New(d Deps, c Config) (*Service, error) {
	const op = "twofactor.New"
	if d.DB == nil || d.Clock == nil {
		return nil, errs.E(errs.Invalid, op, "DB and Clock are required")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &Service{d: d, cfg: c.withDefaults()}, nil
}

// Config returns the rules with defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Recipient says where codes go: the method and its address.
type Recipient struct {
	Method Method
	Email  string // for Email
	Phone  string // for SMS, E.164 ("+447700900123")
	Name   string // the user's name, shown in messages
}

// Enrolment is a user's second factor.
type Enrolment struct {
	UserID string
	Recipient
	// TOTPConfirmed is true once an authenticator app proved its secret.
	TOTPConfirmed bool
	UpdatedAt     time.Time
}

func checkRecipient(op string, r Recipient) error {
	switch r.Method {
	case Email:
		if a, err := netmail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
			return errs.E(errs.Invalid, op, "a valid e-mail address is required")
		}
	case SMS:
		if !validPhone(r.Phone) {
			return errs.E(errs.Invalid, op, "a phone number in international format (+ and 8 to 15 digits) is required")
		}
	case Google:
		return errs.E(errs.Invalid, op, "google is enrolled with BeginTOTP and ConfirmTOTP")
	default:
		return errs.Ef(errs.Invalid, op, "unknown method %q (email, sms, google)", r.Method)
	}
	return nil
}

func validPhone(p string) bool {
	if len(p) < 9 || len(p) > 16 || p[0] != '+' {
		return false
	}
	for _, c := range p[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Enrol sets a user's method to e-mail or SMS codes (replacing any earlier
// method, including TOTP). It returns errs.Invalid for a bad method or address.
func (s *Service) Enrol(ctx context.Context, userID string, r Recipient) (Enrolment, error) {
	const op = "twofactor.Enrol"
	if userID == "" {
		return Enrolment{}, errs.E(errs.Invalid, op, "user id is required")
	}
	if err := checkRecipient(op, r); err != nil {
		return Enrolment{}, err
	}
	now := s.d.Clock.Now()
	err := s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE twofactor_enrolments SET method = ?, email = ?, phone = ?, name = ?,
			totp_secret = '', totp_pending = '', totp_confirmed_at = NULL, updated_at = ? WHERE user_id = ?`,
			string(r.Method), r.Email, r.Phone, r.Name, sqlstore.Micros(now), userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO twofactor_enrolments (user_id, method, email, phone, name, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`, userID, string(r.Method), r.Email, r.Phone, r.Name, sqlstore.Micros(now))
		return err
	})
	if err != nil {
		return Enrolment{}, errs.Wrap(op, err)
	}
	return s.mustEnrolment(ctx, op, userID)
}

// Enrolment returns the user's second factor and whether there is one. A
// TOTP enrolment counts only once confirmed. It returns errors of the
// database only.
func (s *Service) Enrolment(ctx context.Context, userID string) (Enrolment, bool, error) {
	const op = "twofactor.Enrolment"
	e, err := s.load(ctx, s.d.DB.QueryRow, userID, "")
	if errors.Is(err, sql.ErrNoRows) {
		return Enrolment{}, false, nil
	}
	if err != nil {
		return Enrolment{}, false, errs.Wrap(op, err)
	}
	if !e.Method.Valid() || (e.Method == Google && !e.TOTPConfirmed) {
		return e.Enrolment, false, nil
	}
	return e.Enrolment, true, nil
}

func (s *Service) mustEnrolment(ctx context.Context, op, userID string) (Enrolment, error) {
	e, ok, err := s.Enrolment(ctx, userID)
	if err != nil {
		return Enrolment{}, errs.Wrap(op, err)
	}
	if !ok {
		return Enrolment{}, errs.E(errs.NotFound, op, "no second factor enrolled")
	}
	return e, nil
}

type rowFunc func(ctx context.Context, q string, args ...any) *sql.Row

// enrolmentRow is an enrolment with its TOTP secret and replay guard.
type enrolmentRow struct {
	Enrolment
	secret   string
	pending  string
	lastStep int64
}

func (s *Service) load(ctx context.Context, row rowFunc, userID, suffix string) (enrolmentRow, error) {
	var (
		e         enrolmentRow
		method    string
		confirmed sql.NullInt64
		updated   int64
	)
	err := row(ctx, `SELECT method, email, phone, name, totp_secret, totp_pending, totp_confirmed_at, totp_last_step, updated_at
		FROM twofactor_enrolments WHERE user_id = ?`+suffix, userID).
		Scan(&method, &e.Email, &e.Phone, &e.Name, &e.secret, &e.pending, &confirmed, &e.lastStep, &updated)
	if err != nil {
		return enrolmentRow{}, err
	}
	e.UserID = userID
	e.Method = Method(method)
	e.TOTPConfirmed = confirmed.Valid
	e.UpdatedAt = sqlstore.FromMicros(updated)
	return e, nil
}

// newCode returns a code of codeDigits decimal digits.
func (s *Service) newCode() (string, error) {
	max := big.NewInt(1)
	for range codeDigits {
		max.Mul(max, big.NewInt(10))
	}
	n, err := rand.Int(s.d.Rand, max)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", codeDigits, n.Int64()), nil
}

func hashCode(challengeID, code string) string {
	sum := sha256.Sum256([]byte(challengeID + ":" + code))
	return hex.EncodeToString(sum[:])
}

func sameHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// normalizeCode drops spaces users type between digit groups.
func normalizeCode(code string) string {
	return strings.ReplaceAll(strings.TrimSpace(code), " ", "")
}
