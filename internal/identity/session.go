package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// CashierSession is the short server-side session that replaces a one-time
// token once an in-app screen has opened: bound to one user and one trading
// account (Account 0 when the screen is not about one account, e.g. account
// creation).
type CashierSession struct {
	// Token is the session's secret, returned only by OpenInApp. Carry it in
	// a cookie or a hidden form field, never in a URL.
	Token      string
	UserID     string
	CTIDUserID int64
	Email      string
	Language   string
	Account    int64
	Mode       Mode // how the screen was opened
	ExpiresAt  time.Time
}

// OpenInApp opens an in-app screen from the `token` and `account` query
// parameters cTrader put in its URL, in either identity mode:
//
//   - SSO: the token is one of our one-time in-app tokens; it is consumed
//     exactly once.
//   - Handoff: the token is cTrader's; it is redeemed at cTrader, and the
//     cTID user id (and e-mail) it returns is mapped to our user.
//
// The account must belong to the user (in handoff mode cTrader's
// tradingLogin counts as the user's). account 0 picks the account the token
// names, or the user's only account, or none. It then creates a cashier
// session for the user and account and returns it with its secret.
//
// Errors: errs.Invalid for a malformed SSO token, errs.NotFound for an
// unknown, used or revoked token or an account nobody owns, errs.Expired for
// an expired token, errs.Forbidden for someone else's account or a disabled
// user, errs.Unavailable when cTrader cannot be reached (handoff).
func (s *Service) OpenInApp(ctx context.Context, token string, account int64) (CashierSession, error) {
	if account < 0 {
		return CashierSession{}, errs.Ef(errs.Invalid, "identity.OpenInApp", "account %d is not a trading account number", account)
	}
	if s.cfg.Mode == ModeHandoff {
		return s.openHandoff(ctx, token, account)
	}
	return s.openSSO(ctx, token, account)
}

func (s *Service) openSSO(ctx context.Context, token string, account int64) (CashierSession, error) {
	const op = "identity.OpenInApp"
	if !WellFormedToken(token) {
		return CashierSession{}, errs.E(errs.Invalid, op, "token is malformed")
	}
	var out CashierSession
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		t, err := s.consumeToken(ctx, tx, KindOT, PurposeInApp, token, op)
		if err != nil {
			return err
		}
		u, err := getUser(ctx, tx, op, "id = ?", t.userID)
		if err != nil {
			return err
		}
		if u.Status != StatusActive {
			return errs.E(errs.Forbidden, op, "user is disabled")
		}
		switch {
		case t.account != 0 && account != 0 && t.account != account:
			return errs.Ef(errs.Forbidden, op, "this link was issued for another trading account")
		case account == 0:
			account = t.account
		}
		if account, err = s.pickAccount(ctx, tx, u.ID, account); err != nil {
			return err
		}
		out, err = s.insertSession(ctx, tx, u, account, ModeSSO)
		return err
	})
	return out, err
}

// pickAccount checks that the user owns account, or picks their only one.
func (s *Service) pickAccount(ctx context.Context, tx *sqlstore.Tx, userID string, account int64) (int64, error) {
	if account != 0 {
		if _, err := accountOf(ctx, tx, userID, account); err != nil {
			return 0, err
		}
		return account, nil
	}
	all, err := listAccounts(ctx, tx, "identity.OpenInApp", "user_id = ?", userID)
	if err != nil {
		return 0, err
	}
	if len(all) == 1 {
		return all[0].Login, nil
	}
	return 0, nil
}

func (s *Service) insertSession(ctx context.Context, tx *sqlstore.Tx, u User, account int64, mode Mode) (CashierSession, error) {
	tok, exp, err := s.insertToken(ctx, tx, newTokenRow{kind: KindCashier, purpose: Purpose(mode), userID: u.ID,
		account: account, ttl: s.cfg.CashierSessionTTL})
	if err != nil {
		return CashierSession{}, err
	}
	return CashierSession{Token: tok, UserID: u.ID, CTIDUserID: u.CTIDUserID, Email: u.Email, Language: u.Language,
		Account: account, Mode: mode, ExpiresAt: exp}, nil
}

func (s *Service) openHandoff(ctx context.Context, token string, account int64) (CashierSession, error) {
	const op = "identity.OpenInApp"
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 4096 {
		return CashierSession{}, errs.E(errs.Invalid, op, "token is missing or too long")
	}
	id, err := s.redeemer.RedeemInAppToken(ctx, token)
	if err != nil {
		return CashierSession{}, errs.Wrap(op, err)
	}
	if id.UserID <= 0 {
		return CashierSession{}, errs.E(errs.Unavailable, op, "cTrader redeemed the token without a userId")
	}
	if account == 0 {
		account = id.TradingLogin
	}
	u, err := s.handoffUser(ctx, id)
	if err != nil {
		return CashierSession{}, err
	}
	if u.Status != StatusActive {
		return CashierSession{}, errs.E(errs.Forbidden, op, "user is disabled")
	}
	if account != 0 && account == id.TradingLogin {
		// cTrader vouches for this account; record it if we have not met it.
		if err := s.adoptAccount(ctx, u, account); err != nil {
			return CashierSession{}, err
		}
	}
	var out CashierSession
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		picked, err := s.pickAccount(ctx, tx, u.ID, account)
		if err != nil {
			return err
		}
		out, err = s.insertSession(ctx, tx, u, picked, ModeHandoff)
		return err
	})
	return out, err
}

// handoffUser maps cTrader's userId (then e-mail) to our user, creating one
// if allowed.
func (s *Service) handoffUser(ctx context.Context, id HandoffIdentity) (User, error) {
	const op = "identity.OpenInApp"
	u, err := s.UserByCTID(ctx, id.UserID)
	if err == nil || !errs.Is(err, errs.NotFound) {
		return u, err
	}
	if id.Email != "" {
		u, err = s.UserByEmail(ctx, id.Email)
		switch {
		case err == nil && u.CTIDUserID == 0:
			if err := s.SetCTIDUserID(ctx, u.ID, id.UserID); err != nil {
				return User{}, err
			}
			u.CTIDUserID = id.UserID
			return u, nil
		case err == nil:
			return User{}, errs.E(errs.Forbidden, op, "this e-mail address belongs to another cTID")
		case !errs.Is(err, errs.NotFound):
			return User{}, err
		}
	}
	if s.cfg.HandoffKnownUsersOnly || id.Email == "" {
		return User{}, errs.Ef(errs.NotFound, op, "cTID user %d is not known to the broker", id.UserID)
	}
	u, err = s.CreateUser(ctx, NewUser{Email: id.Email, CTIDUserID: id.UserID})
	if errs.Is(err, errs.Conflict) {
		// Another request created it at the same moment.
		return s.UserByCTID(ctx, id.UserID)
	}
	return u, err
}

// adoptAccount records cTrader's tradingLogin for u if no one has it yet.
// It returns errs.Forbidden if the login is recorded for another user.
func (s *Service) adoptAccount(ctx context.Context, u User, login int64) error {
	const op = "identity.OpenInApp"
	a, err := accountForLogin(ctx, s.db, login)
	if err == nil {
		if a.UserID != u.ID {
			return errs.Ef(errs.Forbidden, op, "trading account %d belongs to someone else", login)
		}
		return nil
	}
	if !errs.Is(err, errs.NotFound) {
		return err
	}
	if s.lookup == nil {
		return errs.Ef(errs.NotFound, op, "trading account %d is not recorded; link it with `cashier accounts link`", login)
	}
	info, err := s.lookup.LookupTrader(ctx, login)
	if err != nil {
		return errs.Wrap(op, err)
	}
	env := Environment(strings.ToLower(info.Environment))
	if env == "" {
		env = Live
	}
	_, err = s.LinkAccount(ctx, NewAccount{UserID: u.ID, Login: login, Environment: env, Currency: info.Currency})
	if errs.Is(err, errs.Conflict) {
		return s.adoptAccount(ctx, u, login) // recorded meanwhile; check the owner
	}
	return err
}

// Session resolves a cashier session's secret. It returns errs.Invalid for a
// malformed secret, errs.NotFound for an unknown or closed session, and
// errs.Expired for an expired one. The returned session's Token is empty.
func (s *Service) Session(ctx context.Context, token string) (CashierSession, error) {
	const op = "identity.Session"
	if !WellFormedToken(token) {
		return CashierSession{}, errs.E(errs.Invalid, op, "session is malformed")
	}
	// The session and its user in one read.
	var (
		ts tokenScan
		us userScan
	)
	row := s.db.QueryRow(ctx, `SELECT t.hash, t.kind, t.purpose, COALESCE(t.user_id, ''), COALESCE(t.account_login, 0), t.remember,
		COALESCE(t.parent_hash, ''), t.secret_ref, t.created_at, t.expires_at, t.consumed_at, t.revoked_at,
		u.id, u.email, u.language, COALESCE(u.ctid_user_id, 0), u.partner_id, u.source, u.utm_source, u.utm_medium,
		u.utm_campaign, u.utm_term, u.utm_content, u.gclid, u.status, u.password_hash <> '', u.created_at
		FROM identity_tokens t JOIN identity_users u ON u.id = t.user_id WHERE t.hash = ? AND t.kind = ?`, hashToken(token), string(KindCashier))
	err := row.Scan(append(ts.dest(), us.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return CashierSession{}, errs.E(errs.NotFound, op, "token not found")
	}
	if err != nil {
		return CashierSession{}, errs.Wrap(op, err)
	}
	t, u := ts.row(), us.user()
	if err := t.usable(s.now(), op); err != nil {
		return CashierSession{}, err
	}
	if u.Status != StatusActive {
		return CashierSession{}, errs.E(errs.Forbidden, op, "user is disabled")
	}
	return CashierSession{UserID: u.ID, CTIDUserID: u.CTIDUserID, Email: u.Email, Language: u.Language,
		Account: t.account, Mode: Mode(t.purpose), ExpiresAt: t.expiresAt}, nil
}

// CloseSession ends a cashier session. Closing an unknown session is not an
// error.
func (s *Service) CloseSession(ctx context.Context, token string) error {
	_, err := s.db.Exec(ctx, `UPDATE identity_tokens SET revoked_at = ? WHERE hash = ? AND kind = ? AND revoked_at IS NULL`,
		sqlstore.Micros(s.now()), hashToken(token), string(KindCashier))
	return errs.Wrap("identity.CloseSession", err)
}
