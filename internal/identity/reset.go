package identity

import (
	"context"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// PasswordReset is a reset link to send to a user.
type PasswordReset struct {
	User      User
	Token     string // goes into the link; single use
	ExpiresAt time.Time
}

// RequestPasswordReset issues a password-reset token for the user with the
// given e-mail address; earlier unused reset tokens of the user stop
// working. It returns errs.NotFound for an unknown address (the caller must
// not reveal that to the person asking) and errs.Forbidden for a disabled
// user.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) (PasswordReset, error) {
	const op = "identity.RequestPasswordReset"
	var out PasswordReset
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		u, err := getUser(ctx, tx, op, "email_key = ?", emailKey(email))
		if err != nil {
			return err
		}
		if u.Status != StatusActive {
			return errs.E(errs.Forbidden, op, "user is disabled")
		}
		if _, err := s.revokeUserTokens(ctx, tx, u.ID, KindReset); err != nil {
			return err
		}
		tok, exp, err := s.insertToken(ctx, tx, newTokenRow{kind: KindReset, userID: u.ID, ttl: s.cfg.ResetTokenTTL})
		out = PasswordReset{User: u, Token: tok, ExpiresAt: exp}
		return err
	})
	return out, err
}

// CheckResetToken tells whether a reset token can still be used, without
// using it (the form shows first, the new password comes later). It returns
// errs.Invalid for a malformed token, errs.NotFound for an unknown, used or
// replaced one, and errs.Expired for an expired one.
func (s *Service) CheckResetToken(ctx context.Context, token string) (User, error) {
	const op = "identity.CheckResetToken"
	if !WellFormedToken(token) {
		return User{}, errs.E(errs.Invalid, op, "link is malformed")
	}
	t, err := loadToken(ctx, s.db, KindReset, token, op)
	if err != nil {
		return User{}, err
	}
	if err := t.usable(s.now(), op); err != nil {
		return User{}, err
	}
	return s.UserByID(ctx, t.userID)
}

// ResetPassword uses a reset token (once) to set a new password. It also
// clears a lockout and revokes the user's accessTokens, inappTokens and
// cashier sessions, so that devices holding old credentials must log in
// again. Errors are those of CheckResetToken, plus errs.Invalid for a
// password that breaks the policy.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string) (User, error) {
	const op = "identity.ResetPassword"
	if !WellFormedToken(token) {
		return User{}, errs.E(errs.Invalid, op, "link is malformed")
	}
	if err := checkPasswordPolicy(op, newPassword); err != nil {
		return User{}, err
	}
	hash, err := hashPassword(newPassword, s.cfg.Password)
	if err != nil {
		return User{}, errs.Wrap(op, err)
	}
	var u User
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		t, err := s.consumeToken(ctx, tx, KindReset, "", token, op)
		if err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, op, "id = ?", t.userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE identity_users SET password_hash = ?, failed_logins = 0, locked_until = NULL,
			updated_at = ? WHERE id = ?`, hash, sqlstore.Micros(s.now()), u.ID); err != nil {
			return errs.Wrap(op, err)
		}
		_, err = s.revokeUserTokens(ctx, tx, u.ID, KindAccess, KindInApp, KindCashier)
		return err
	})
	if err == nil {
		u.HasPassword = true
	}
	return u, err
}

// SetPassword sets a user's password directly (operators). It returns
// errs.Invalid for a password that breaks the policy and errs.NotFound for
// an unknown user.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	const op = "identity.SetPassword"
	if err := checkPasswordPolicy(op, password); err != nil {
		return err
	}
	hash, err := hashPassword(password, s.cfg.Password)
	if err != nil {
		return errs.Wrap(op, err)
	}
	res, err := s.db.Exec(ctx, `UPDATE identity_users SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?`,
		hash, sqlstore.Micros(s.now()), userID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.NotFound, op, "user not found")
	}
	return nil
}
