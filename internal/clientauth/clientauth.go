// Package clientauth issues and checks the bearer tokens of the client API
// (seeds 002 and 003): a user logs in with e-mail address and password, plus
// a second-factor code when one is enrolled, and receives a short-lived
// access token (15 minutes) and a refresh token (30 days).
//
// Tokens are 256-bit random values; only their SHA-256 hashes are stored.
// One login is a token family. A refresh token is single-use: refreshing
// rotates it (a new access and refresh token in the same family, the old
// access token revoked). Presenting a refresh token a second time is taken
// as theft: the whole family is revoked, so neither the thief nor the user
// keeps a working token. Logout revokes the family of the presented token.
package clientauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the clientauth part of the database (version 00500).
var Schema = sqlstore.Schema{Name: "clientauth", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Token lifetimes.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 30 * 24 * time.Hour
)

// Token kinds as stored.
const (
	kindAccess  = "access"
	kindRefresh = "refresh"
)

// Passwords checks a user's e-mail address and password.
//
// CheckLogin returns the user id for a right pair, errs.Unauthorized for a
// wrong one, errs.RateLimited while the user is locked out and
// errs.Forbidden for a disabled user.
type Passwords interface {
	CheckLogin(ctx context.Context, email, password string) (userID string, err error)
}

// IdentityPasswords adapts *identity.Service to Passwords. identity.Login
// also issues a one-time login token for the cTrader handoff; it is left
// unused and expires on its own.
type IdentityPasswords struct{ Identity *identity.Service }

// CheckLogin implements Passwords with identity.Service.Login, which counts
// failed attempts and locks the user out after too many.
func (p IdentityPasswords) CheckLogin(ctx context.Context, email, password string) (string, error) {
	res, err := p.Identity.Login(ctx, email, password, false)
	if err != nil {
		return "", err
	}
	return res.User.ID, nil
}

// SecondFactor is the user's second factor (e-mail code, SMS code or TOTP),
// implemented by the 2FA package.
//
// Enrolled reports whether the user must give a code at login. Verify checks
// a code: it returns nil for a right code, errs.Unauthorized for a wrong or
// used one, errs.Expired for an expired one and errs.RateLimited when too
// many attempts failed.
type SecondFactor interface {
	Enrolled(ctx context.Context, userID string) (bool, error)
	Verify(ctx context.Context, userID, code string) error
}

// Options configures a Service. DB and Passwords are required.
type Options struct {
	DB        *sqlstore.DB
	Passwords Passwords
	// SecondFactor, when set, is asked at every login; nil means no user
	// has a second factor.
	SecondFactor SecondFactor
	Clock        clock.Clock   // default clock.System
	AccessTTL    time.Duration // default DefaultAccessTTL
	RefreshTTL   time.Duration // default DefaultRefreshTTL
}

// Service issues, refreshes, checks and revokes client tokens. It is safe
// for concurrent use.
type Service struct {
	db         *sqlstore.DB
	passwords  Passwords
	second     SecondFactor
	clock      clock.Clock
	accessTTL  time.Duration
	refreshTTL time.Duration
}

// New returns a Service. It returns errs.Invalid without a database or a
// password checker, or with a negative lifetime.
func New(o Options) (*Service, error) {
	const op = "clientauth.New"
	if o.DB == nil || o.Passwords == nil {
		return nil, errs.E(errs.Invalid, op, "DB and Passwords are required")
	}
	if o.AccessTTL < 0 || o.RefreshTTL < 0 {
		return nil, errs.E(errs.Invalid, op, "token lifetimes must not be negative")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = DefaultAccessTTL
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = DefaultRefreshTTL
	}
	return &Service{db: o.DB, passwords: o.Passwords, second: o.SecondFactor, clock: o.Clock,
		accessTTL: o.AccessTTL, refreshTTL: o.RefreshTTL}, nil
}

// Tokens is what a login or a refresh gives the client.
type Tokens struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	UserID           string
}

// ErrSecondFactorRequired is the message of the errs.Unauthorized error that
// Login returns when the user has a second factor and no code was given.
const ErrSecondFactorRequired = "a second-factor code is required for this user"

// Login checks the credentials and the second-factor code (when the user
// has one enrolled) and opens a token family. It returns the errors of
// Passwords.CheckLogin, errs.Unauthorized with ErrSecondFactorRequired when
// a code is needed and missing, the errors of SecondFactor.Verify for a bad
// code, and errs.Invalid for an empty e-mail address or password.
func (s *Service) Login(ctx context.Context, email, password, code string) (Tokens, error) {
	const op = "clientauth.Login"
	if strings.TrimSpace(email) == "" || password == "" {
		return Tokens{}, errs.E(errs.Invalid, op, "email and password are required")
	}
	userID, err := s.passwords.CheckLogin(ctx, email, password)
	if err != nil {
		return Tokens{}, errs.Wrap(op, err)
	}
	if s.second != nil {
		enrolled, err := s.second.Enrolled(ctx, userID)
		if err != nil {
			return Tokens{}, errs.Wrap(op, err)
		}
		if enrolled {
			if code == "" {
				return Tokens{}, errs.E(errs.Unauthorized, op, ErrSecondFactorRequired)
			}
			if err := s.second.Verify(ctx, userID, code); err != nil {
				return Tokens{}, errs.Wrap(op, err)
			}
		}
	}
	family, err := uuid.NewV7()
	if err != nil {
		return Tokens{}, errs.Wrap(op, err)
	}
	var t Tokens
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		t, err = s.issue(ctx, tx, "fam_"+family.String(), userID)
		return err
	})
	return t, err
}

// issue stores a new access and refresh token of the family.
func (s *Service) issue(ctx context.Context, tx *sqlstore.Tx, family, userID string) (Tokens, error) {
	const op = "clientauth.issue"
	now := s.clock.Now().UTC()
	t := Tokens{UserID: userID, AccessExpiresAt: now.Add(s.accessTTL), RefreshExpiresAt: now.Add(s.refreshTTL)}
	var err error
	if t.AccessToken, err = newToken(); err != nil {
		return Tokens{}, errs.Wrap(op, err)
	}
	if t.RefreshToken, err = newToken(); err != nil {
		return Tokens{}, errs.Wrap(op, err)
	}
	for _, row := range []struct {
		plain, kind string
		exp         time.Time
	}{{t.AccessToken, kindAccess, t.AccessExpiresAt}, {t.RefreshToken, kindRefresh, t.RefreshExpiresAt}} {
		if _, err := tx.Exec(ctx, `INSERT INTO clientauth_tokens (hash, family_id, user_id, kind, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, hashToken(row.plain), family, userID, row.kind, sqlstore.Micros(now), sqlstore.Micros(row.exp)); err != nil {
			return Tokens{}, errs.Wrap(op, err)
		}
	}
	return t, nil
}

// Refresh exchanges a refresh token for a new access and refresh token and
// revokes the family's earlier access tokens. A refresh token that was
// already used revokes its whole family. It returns errs.Unauthorized for
// an unknown, used, revoked or expired refresh token.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	const op = "clientauth.Refresh"
	invalid := errs.E(errs.Unauthorized, op, "the refresh token is not valid")
	if !wellFormed(refreshToken) {
		return Tokens{}, invalid
	}
	var t Tokens
	reused := false
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		reused = false
		now := s.clock.Now().UTC()
		var family, userID, kind string
		var expires int64
		var used, revoked sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT family_id, user_id, kind, expires_at, used_at, revoked_at FROM clientauth_tokens
			WHERE hash = ?`+tx.ForUpdate(), hashToken(refreshToken)).Scan(&family, &userID, &kind, &expires, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && kind != kindRefresh) {
			return invalid
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		if used.Valid {
			// Reuse: someone holds a copy. Revoke the family and commit that.
			reused = true
			return s.revokeFamily(ctx, tx, family, now)
		}
		if revoked.Valid || !now.Before(sqlstore.FromMicros(expires)) {
			return invalid
		}
		if _, err := tx.Exec(ctx, `UPDATE clientauth_tokens SET used_at = ? WHERE hash = ?`, sqlstore.Micros(now), hashToken(refreshToken)); err != nil {
			return errs.Wrap(op, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE clientauth_tokens SET revoked_at = ? WHERE family_id = ? AND kind = ? AND revoked_at IS NULL`,
			sqlstore.Micros(now), family, kindAccess); err != nil {
			return errs.Wrap(op, err)
		}
		t, err = s.issue(ctx, tx, family, userID)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	if reused {
		return Tokens{}, errs.E(errs.Unauthorized, op, "the refresh token was already used; every token of this login is revoked")
	}
	return t, nil
}

func (s *Service) revokeFamily(ctx context.Context, tx *sqlstore.Tx, family string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE clientauth_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`,
		sqlstore.Micros(now), family); err != nil {
		return errs.Wrap("clientauth.revokeFamily", err)
	}
	return nil
}

// Authenticate checks an access token and returns its user id. It returns
// errs.Unauthorized for an unknown, revoked or expired token.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (string, error) {
	const op = "clientauth.Authenticate"
	invalid := errs.E(errs.Unauthorized, op, "the access token is not valid or has expired")
	if !wellFormed(accessToken) {
		return "", invalid
	}
	var userID, kind string
	var expires int64
	var revoked sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT user_id, kind, expires_at, revoked_at FROM clientauth_tokens WHERE hash = ?`,
		hashToken(accessToken)).Scan(&userID, &kind, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", invalid
	}
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	if kind != kindAccess || revoked.Valid || !s.clock.Now().Before(sqlstore.FromMicros(expires)) {
		return "", invalid
	}
	return userID, nil
}

// Logout revokes every token of the family the given access or refresh
// token belongs to. An unknown token is not an error (logging out twice is
// fine); it returns only database errors.
func (s *Service) Logout(ctx context.Context, token string) error {
	const op = "clientauth.Logout"
	if !wellFormed(token) {
		return nil
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var family string
		err := tx.QueryRow(ctx, `SELECT family_id FROM clientauth_tokens WHERE hash = ?`, hashToken(token)).Scan(&family)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		return s.revokeFamily(ctx, tx, family, s.clock.Now().UTC())
	})
}

// RevokeUser revokes every client token of a user (for a password change or
// a disabled user). It returns how many tokens it revoked, or a database
// error.
func (s *Service) RevokeUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.db.Exec(ctx, `UPDATE clientauth_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`,
		sqlstore.Micros(s.clock.Now()), userID)
	if err != nil {
		return 0, errs.Wrap("clientauth.RevokeUser", err)
	}
	return res.RowsAffected()
}

// PurgeExpired deletes tokens that expired more than keep ago. It returns
// how many it deleted, or a database error.
func (s *Service) PurgeExpired(ctx context.Context, keep time.Duration) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM clientauth_tokens WHERE expires_at < ?`, sqlstore.Micros(s.clock.Now().Add(-keep)))
	if err != nil {
		return 0, errs.Wrap("clientauth.PurgeExpired", err)
	}
	return res.RowsAffected()
}

// tokenLen is the length of an encoded token: 32 random bytes, base64url.
const tokenLen = 43

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func wellFormed(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}
