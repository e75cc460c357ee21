package staff

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Session is a signed-in staff member.
type Session struct {
	// Token is the session's secret (32 random bytes, base64url). Carry it
	// in a Secure, HttpOnly cookie, never in a URL. Only its hash is
	// stored.
	Token string
	// Member is the member as of this request: a new role or a disabling
	// is in force at once.
	Member    Member
	CreatedAt time.Time
	// ExpiresAt is when the session ends unless it is used again: the
	// sliding idle expiry, never after AbsoluteExpiresAt.
	ExpiresAt time.Time
	// AbsoluteExpiresAt is SessionMax after login.
	AbsoluteExpiresAt time.Time
	// CSRF is the session's anti-forgery token, to put in forms and check
	// on every state-changing request with CheckCSRF.
	CSRF string
}

// Can reports whether the session's member may do p.
func (s Session) Can(p Permission) bool { return s.Member.Can(p) }

// CheckCSRF compares the token a form sent with the session's, in
// constant time. It returns errs.Forbidden when they differ.
func (s Session) CheckCSRF(token string) error {
	if s.CSRF == "" || subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) != 1 {
		return errs.E(errs.Forbidden, "staff.CheckCSRF", "the form is out of date or was not sent by the back office; reload the page")
	}
	return nil
}

// Authorize checks that the session's member may do p. It returns
// errs.Unauthorized for a zero Session and errs.Forbidden, naming the
// role and the permission, when the role lacks p or the member is
// disabled.
func Authorize(s Session, p Permission) error {
	const op = "staff.Authorize"
	if s.Member.ID == "" {
		return errs.E(errs.Unauthorized, op, "not signed in")
	}
	return authorize(op, s.Member, p)
}

// Authorize is the package function Authorize, for callers that hold a
// *Service.
func (*Service) Authorize(s Session, p Permission) error { return Authorize(s, p) }

func authorize(op string, m Member, p Permission) error {
	if m.Status != StatusActive {
		return errs.E(errs.Forbidden, op, "this staff account is disabled")
	}
	if !m.Role.Can(p) {
		return errs.Ef(errs.Forbidden, op, "the %s role does not have the permission %q (%s)", m.Role, p, p.Description())
	}
	return nil
}

// openSession creates a session for m in tx.
func (s *Service) openSession(ctx context.Context, tx *sqlstore.Tx, m Member, now time.Time) (Session, error) {
	sess := Session{Token: newToken(), Member: m, CreatedAt: now, CSRF: newToken(),
		AbsoluteExpiresAt: now.Add(s.opt.SessionMax)}
	sess.ExpiresAt = earlier(now.Add(s.opt.SessionIdle), sess.AbsoluteExpiresAt)
	_, err := tx.Exec(ctx, `INSERT INTO staff_sessions (token_hash, member_id, csrf, created_at, last_seen_at,
		idle_expires_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		tokenHash(sess.Token), m.ID, sess.CSRF, sqlstore.Micros(now), sqlstore.Micros(now),
		sqlstore.Micros(sess.ExpiresAt), sqlstore.Micros(sess.AbsoluteExpiresAt))
	if err != nil {
		return Session{}, errs.Wrap("staff.openSession", err)
	}
	return sess, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Session returns the session with the given token, with its member as of
// now, and slides its idle expiry (never past the absolute one).
//
// It returns errs.Unauthorized for an unknown token (never issued, logged
// out, or ended by a disabling, TOTP reset or password change) and for a
// disabled member, and errs.Expired for a session past its idle or
// absolute expiry (which is then removed).
func (s *Service) Session(ctx context.Context, token string) (Session, error) {
	const op = "staff.Session"
	if !wellFormedToken(token) {
		return Session{}, errs.E(errs.Unauthorized, op, "not signed in")
	}
	var out Session
	var result error
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		out, result = Session{}, nil
		var memberID, csrf string
		var created, idle, absolute int64
		err := tx.QueryRow(ctx, `SELECT member_id, csrf, created_at, idle_expires_at, expires_at FROM staff_sessions
			WHERE token_hash = ?`+tx.ForUpdate(), tokenHash(token)).Scan(&memberID, &csrf, &created, &idle, &absolute)
		if errors.Is(err, sql.ErrNoRows) {
			result = errs.E(errs.Unauthorized, op, "not signed in")
			return nil
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		now := s.now()
		drop := func() error {
			_, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = ?`, tokenHash(token))
			return errs.Wrap(op, err)
		}
		switch {
		case !now.Before(sqlstore.FromMicros(absolute)):
			result = errs.E(errs.Expired, op, "the session has reached its time limit; sign in again")
			return drop()
		case !now.Before(sqlstore.FromMicros(idle)):
			result = errs.E(errs.Expired, op, "the session has expired after a while without use; sign in again")
			return drop()
		}
		m, err := getMember(ctx, tx, op, "id = ?", memberID, "")
		if err != nil {
			return err
		}
		if m.Status != StatusActive {
			result = errs.E(errs.Unauthorized, op, "this staff account is disabled")
			return drop()
		}
		out = Session{Token: token, Member: m, CreatedAt: sqlstore.FromMicros(created), CSRF: csrf,
			AbsoluteExpiresAt: sqlstore.FromMicros(absolute)}
		out.ExpiresAt = earlier(now.Add(s.opt.SessionIdle), out.AbsoluteExpiresAt)
		_, err = tx.Exec(ctx, `UPDATE staff_sessions SET last_seen_at = ?, idle_expires_at = ? WHERE token_hash = ?`,
			sqlstore.Micros(now), sqlstore.Micros(out.ExpiresAt), tokenHash(token))
		return errs.Wrap(op, err)
	})
	if err != nil {
		return Session{}, err
	}
	if result != nil {
		return Session{}, result
	}
	return out, nil
}

// Logout ends the session with the given token and records it. Logging
// out a session that is unknown or already ended is not an error. It
// returns only database errors.
func (s *Service) Logout(ctx context.Context, token string) error {
	const op = "staff.Logout"
	if !wellFormedToken(token) {
		return nil
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var memberID string
		err := tx.QueryRow(ctx, `SELECT member_id FROM staff_sessions WHERE token_hash = ?`+tx.ForUpdate(), tokenHash(token)).Scan(&memberID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = ?`, tokenHash(token)); err != nil {
			return errs.Wrap(op, err)
		}
		return s.record(ctx, tx, "staff:"+memberID, "staff.logout", subject(memberID), nil)
	})
}

// endSessions removes a member's sessions (except the one whose hash is
// keep, if any) and pending logins, and returns how many sessions ended.
func endSessions(ctx context.Context, tx *sqlstore.Tx, memberID, keep string) (int64, error) {
	res, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE member_id = ? AND token_hash <> ?`, memberID, keep)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `DELETE FROM staff_pending_logins WHERE member_id = ?`, memberID)
	return n, err
}

// Sweep removes expired sessions and pending logins (they are refused
// anyway; this keeps the tables small). Run it now and then. It returns
// how many rows it removed, or a database error.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	const op = "staff.Sweep"
	now := sqlstore.Micros(s.now())
	var total int64
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		total = 0
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM staff_sessions WHERE expires_at <= ? OR idle_expires_at <= ?`, []any{now, now}},
			{`DELETE FROM staff_pending_logins WHERE expires_at <= ?`, []any{now}},
		} {
			res, err := tx.Exec(ctx, q.sql, q.args...)
			if err != nil {
				return errs.Wrap(op, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return errs.Wrap(op, err)
			}
			total += n
		}
		return nil
	})
	return total, err
}
