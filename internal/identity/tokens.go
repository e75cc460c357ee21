package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// TokenKind is the kind of a stored token.
type TokenKind string

// The token kinds.
const (
	KindCRM     TokenKind = "crm"     // crmApiToken: cTrader's backend calling us
	KindOT      TokenKind = "ot"      // one-time token (login or in-app)
	KindAccess  TokenKind = "access"  // accessToken: "keep me logged in"
	KindInApp   TokenKind = "inapp"   // inappToken: proves the app session on /oauth2/onetime/generate
	KindReset   TokenKind = "reset"   // password-reset link
	KindCashier TokenKind = "cashier" // cashier session
)

// Purpose is what a one-time token may be used for.
type Purpose string

// The purposes of one-time tokens.
const (
	PurposeLogin Purpose = "login" // exchanged by cTrader on /oauth2/onetime/authorize
	PurposeInApp Purpose = "inapp" // opens an in-app screen (cashier, account creation)
)

// TokenLen is the length of every token this package issues: 32 random
// bytes in base64url without padding.
const TokenLen = 43

// WellFormedToken reports whether s has the shape of a token this package
// issues (43 base64url characters encoding 32 bytes). The cTrader endpoints
// answer 417 CID_NON_EXISTED_TOKEN for a token that is not well formed.
func WellFormedToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}

// newToken returns a fresh plain token and its storage hash.
func newToken() (plain, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", errs.Wrap("identity.newToken", err)
	}
	plain = base64.RawURLEncoding.EncodeToString(b[:])
	return plain, hashToken(plain), nil
}

// hashToken returns the hex SHA-256 of a plain token, the only form stored.
func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// tokenRow is one row of identity_tokens.
type tokenRow struct {
	hash       string
	kind       TokenKind
	purpose    Purpose
	userID     string
	account    int64
	remember   bool
	parentHash string
	secretRef  string
	createdAt  time.Time
	expiresAt  time.Time // zero: never
	consumedAt time.Time
	revokedAt  time.Time
}

// newTokenRow describes a token to insert.
type newTokenRow struct {
	kind      TokenKind
	purpose   Purpose
	userID    string
	account   int64
	remember  bool
	parent    string
	secretRef string
	ttl       time.Duration // <= 0: never expires
}

// insertToken stores a new token and returns it in plain text with its expiry.
func (s *Service) insertToken(ctx context.Context, tx *sqlstore.Tx, n newTokenRow) (string, time.Time, error) {
	plain, hash, err := newToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	var expires time.Time
	if n.ttl > 0 {
		expires = now.Add(n.ttl)
	}
	_, err = tx.Exec(ctx, `INSERT INTO identity_tokens
		(hash, kind, purpose, user_id, account_login, remember, parent_hash, secret_ref, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		hash, string(n.kind), string(n.purpose), nullString(n.userID), nullInt(n.account), boolInt(n.remember),
		nullString(n.parent), n.secretRef, sqlstore.Micros(now), sqlstore.NullMicros(expires))
	if err != nil {
		return "", time.Time{}, errs.Wrap("identity.insertToken", err)
	}
	return plain, expires, nil
}

const tokenColumns = `hash, kind, purpose, COALESCE(user_id, ''), COALESCE(account_login, 0), remember,
	COALESCE(parent_hash, ''), secret_ref, created_at, expires_at, consumed_at, revoked_at` // #nosec G101 -- column names, not a credential

func scanToken(row interface{ Scan(...any) error }) (tokenRow, error) {
	var x tokenScan
	if err := row.Scan(x.dest()...); err != nil {
		return tokenRow{}, err
	}
	return x.row(), nil
}

// tokenScan receives the tokenColumns of a row.
type tokenScan struct {
	t                          tokenRow
	kind, purpose              string
	remember                   int
	created                    int64
	expires, consumed, revoked sql.NullInt64
}

func (x *tokenScan) dest() []any {
	return []any{&x.t.hash, &x.kind, &x.purpose, &x.t.userID, &x.t.account, &x.remember, &x.t.parentHash, &x.t.secretRef,
		&x.created, &x.expires, &x.consumed, &x.revoked}
}

func (x *tokenScan) row() tokenRow {
	t := x.t
	t.kind, t.purpose, t.remember = TokenKind(x.kind), Purpose(x.purpose), x.remember != 0
	t.createdAt = sqlstore.FromMicros(x.created)
	t.expiresAt = sqlstore.FromNullMicros(x.expires)
	t.consumedAt = sqlstore.FromNullMicros(x.consumed)
	t.revokedAt = sqlstore.FromNullMicros(x.revoked)
	return t
}

// loadToken reads the token of the given kind. It returns errs.NotFound when
// there is none (including a token of another kind).
func loadToken(ctx context.Context, q querier, kind TokenKind, plain, op string) (tokenRow, error) {
	t, err := scanToken(q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM identity_tokens WHERE hash = ? AND kind = ?`,
		hashToken(plain), string(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		return tokenRow{}, errs.E(errs.NotFound, op, "token not found")
	}
	if err != nil {
		return tokenRow{}, errs.Wrap(op, err)
	}
	return t, nil
}

// usable returns nil if t may be used at now, errs.NotFound if it was
// revoked or consumed (it no longer exists for the caller) and errs.Expired
// if its lifetime is over.
func (t tokenRow) usable(now time.Time, op string) error {
	switch {
	case !t.revokedAt.IsZero():
		return errs.E(errs.NotFound, op, "token not found (revoked)")
	case !t.consumedAt.IsZero():
		return errs.E(errs.NotFound, op, "token not found (already used)")
	case !t.expiresAt.IsZero() && !now.Before(t.expiresAt):
		return errs.E(errs.Expired, op, "token expired")
	}
	return nil
}

// consumeToken marks a one-time token used, atomically: of any number of
// concurrent callers exactly one succeeds. It returns the token row, or
// errs.NotFound (unknown, wrong kind or purpose, revoked, already used) or
// errs.Expired.
func (s *Service) consumeToken(ctx context.Context, tx *sqlstore.Tx, kind TokenKind, purpose Purpose, plain, op string) (tokenRow, error) {
	now := s.now()
	hash := hashToken(plain)
	t, err := scanToken(tx.QueryRow(ctx, `UPDATE identity_tokens SET consumed_at = ?
		WHERE hash = ? AND kind = ? AND purpose = ? AND consumed_at IS NULL AND revoked_at IS NULL
		AND (expires_at IS NULL OR expires_at > ?) RETURNING `+tokenColumns,
		sqlstore.Micros(now), hash, string(kind), string(purpose), sqlstore.Micros(now)))
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return tokenRow{}, errs.Wrap(op, err)
	}
	// Not consumed now: say why.
	t, err = loadToken(ctx, tx, kind, plain, op)
	if err != nil {
		return tokenRow{}, err
	}
	if t.purpose != purpose {
		return tokenRow{}, errs.E(errs.NotFound, op, "token not found")
	}
	if err := t.usable(now, op); err != nil {
		return tokenRow{}, err
	}
	// Not updated yet usable: another transaction consumed it between our
	// UPDATE and SELECT on a database that let us read its commit.
	return tokenRow{}, errs.E(errs.NotFound, op, "token not found (already used)")
}

// revokeUserTokens revokes every live token of the given kinds of a user.
func (s *Service) revokeUserTokens(ctx context.Context, tx *sqlstore.Tx, userID string, kinds ...TokenKind) (int64, error) {
	var (
		total   int64
		revoked []string
	)
	for _, k := range kinds {
		res, err := tx.Exec(ctx, `UPDATE identity_tokens SET revoked_at = ?
			WHERE user_id = ? AND kind = ? AND revoked_at IS NULL AND consumed_at IS NULL`,
			sqlstore.Micros(s.now()), userID, string(k))
		if err != nil {
			return total, errs.Wrap("identity.revokeUserTokens", err)
		}
		n, _ := res.RowsAffected()
		if n > 0 {
			revoked = append(revoked, fmt.Sprintf("%s:%d", k, n))
		}
		total += n
	}
	if total > 0 {
		if err := s.audit.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "token.revoked", Subject: "user:" + userID,
			Detail: map[string]string{"tokens": strings.Join(revoked, ","), "count": strconv.FormatInt(total, 10)}}); err != nil {
			return total, errs.Wrap("identity.revokeUserTokens", err)
		}
	}
	return total, nil
}

// PurgeExpiredTokens deletes tokens that expired or were consumed or
// revoked more than `keep` ago, and returns how many it deleted. Run it now
// and then; nothing depends on old rows.
func (s *Service) PurgeExpiredTokens(ctx context.Context, keep time.Duration) (int64, error) {
	cutoff := sqlstore.Micros(s.now().Add(-keep))
	res, err := s.db.Exec(ctx, `DELETE FROM identity_tokens
		WHERE (expires_at IS NOT NULL AND expires_at < ?) OR consumed_at < ? OR revoked_at < ?`, cutoff, cutoff, cutoff)
	if err != nil {
		return 0, errs.Wrap("identity.PurgeExpiredTokens", err)
	}
	return res.RowsAffected()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
