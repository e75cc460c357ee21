package identity

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// LoginResult is a successful login or signup: the user and a one-time
// login token for the success URL, which cTrader exchanges on
// /oauth2/onetime/authorize.
type LoginResult struct {
	User       User
	LoginToken string
	ExpiresAt  time.Time
	// Account is the trading account opened at signup, if one was asked for
	// and opened.
	Account *Account
	// AccountErr says why a requested trading account could not be opened;
	// the signup itself succeeded.
	AccountErr error
}

// Login checks an e-mail address and password and issues a one-time login
// token; remember ("keep me logged in") makes the token's exchange also
// return an accessToken. A user without a cTID gets one first.
//
// Failed attempts are counted in the database: after LockoutThreshold
// failures in a row the user is locked out for LockoutPeriod. It returns
// errs.Unauthorized for a wrong e-mail address or password (the same error
// for both), errs.RateLimited while locked out, errs.Forbidden for a
// disabled user and errs.Unavailable when a needed cTID cannot be created.
func (s *Service) Login(ctx context.Context, email, password string, remember bool) (LoginResult, error) {
	const op = "identity.Login"
	wrong := errs.E(errs.Unauthorized, op, "wrong e-mail address or password")
	if len(password) > MaxPasswordLen {
		return LoginResult{}, wrong
	}
	var id, hash, status string
	var locked sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT id, password_hash, status, locked_until FROM identity_users WHERE email_key = ?`,
		emailKey(email)).Scan(&id, &hash, &status, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(s.dummy, password) // spend the same time as for a real user
		return LoginResult{}, wrong
	}
	if err != nil {
		return LoginResult{}, errs.Wrap(op, err)
	}
	now := s.now()
	if locked.Valid && now.Before(sqlstore.FromMicros(locked.Int64)) {
		return LoginResult{}, errs.E(errs.RateLimited, op, "too many failed attempts; try again later")
	}
	if hash == "" || !checkPassword(hash, password) {
		if err := s.recordFailedLogin(ctx, id); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, wrong
	}
	if Status(status) != StatusActive {
		return LoginResult{}, errs.E(errs.Forbidden, op, "this user is disabled")
	}
	if _, err := s.db.Exec(ctx, `UPDATE identity_users SET failed_logins = 0, locked_until = NULL WHERE id = ?`, id); err != nil {
		return LoginResult{}, errs.Wrap(op, err)
	}
	u, err := s.UserByID(ctx, id)
	if err != nil {
		return LoginResult{}, err
	}
	if u, err = s.EnsureCTID(ctx, u); err != nil {
		return LoginResult{}, err
	}
	tok, exp, err := s.IssueLoginToken(ctx, u.ID, remember)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{User: u, LoginToken: tok, ExpiresAt: exp}, nil
}

// recordFailedLogin counts a failure and starts a lockout at the threshold.
func (s *Service) recordFailedLogin(ctx context.Context, userID string) error {
	const op = "identity.recordFailedLogin"
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var failed int
		if err := tx.QueryRow(ctx, `SELECT failed_logins FROM identity_users WHERE id = ?`+tx.ForUpdate(), userID).Scan(&failed); err != nil {
			return errs.Wrap(op, err)
		}
		failed++
		var until any
		if failed >= s.cfg.LockoutThreshold {
			until, failed = sqlstore.Micros(s.now().Add(s.cfg.LockoutPeriod)), 0
			s.log.WarnContext(ctx, "login locked out after repeated failures", "user", userID, "period", s.cfg.LockoutPeriod)
		}
		_, err := tx.Exec(ctx, `UPDATE identity_users SET failed_logins = ?, locked_until = ? WHERE id = ?`, failed, until, userID)
		return errs.Wrap(op, err)
	})
}

// EnsureCTID creates the cTID of a user who has none yet (a user added by an
// operator, or a signup whose cTID creation failed) and returns the updated
// user. Without a provisioner it returns the user unchanged. It returns
// errs.Unavailable (or the provisioner's error) if the cTID cannot be made.
func (s *Service) EnsureCTID(ctx context.Context, u User) (User, error) {
	const op = "identity.EnsureCTID"
	if u.CTIDUserID != 0 || s.prov == nil {
		return u, nil
	}
	ctid, err := s.prov.CreateUser(ctx, NewCTID{Email: u.Email, PreferredLanguage: u.Language})
	if err != nil {
		return u, errs.Wrap(op, err)
	}
	if err := s.SetCTIDUserID(ctx, u.ID, ctid); err != nil {
		return u, err
	}
	u.CTIDUserID = ctid
	if u.Attribution.PartnerID != "" {
		if ps, ok := s.prov.(PartnerSetter); ok {
			if err := ps.SetPartner(ctx, ctid, u.Attribution.PartnerID); err != nil {
				// Attribution is worth a log line, not a failed signup.
				s.log.WarnContext(ctx, "partner attribution not recorded at cTrader", "op", op, "user", u.ID, "err", err)
			}
		}
	}
	return u, nil
}

// SignUp asks for a new user.
type SignUp struct {
	NewUser
	Remember bool
	// Account, if set, asks for a trading account opened with the signup.
	Account *AccountRequest
}

// SignUp creates a user, creates their cTID, opens a trading account if one
// was asked for, and issues a one-time login token. It returns errs.Invalid
// for bad fields, errs.Conflict if the e-mail address is taken, and the
// provisioner's error if the cTID cannot be created (the user then exists
// and gets the cTID at the next login). A failure to open the trading
// account does not fail the signup; it is reported in LoginResult.AccountErr.
func (s *Service) SignUp(ctx context.Context, in SignUp) (LoginResult, error) {
	const op = "identity.SignUp"
	if in.Password == "" {
		return LoginResult{}, errs.E(errs.Invalid, op, "password is required")
	}
	if in.Account != nil {
		probe := NewAccount{UserID: "-", Login: 1, Environment: in.Account.Environment, Currency: in.Account.Currency}
		if err := probe.check(op, s.cfg.Platform); err != nil {
			return LoginResult{}, err
		}
	}
	in.CTIDUserID = 0
	u, err := s.CreateUser(ctx, in.NewUser)
	if err != nil {
		return LoginResult{}, err
	}
	if u, err = s.EnsureCTID(ctx, u); err != nil {
		return LoginResult{User: u}, err
	}
	res := LoginResult{User: u}
	if in.Account != nil {
		a, err := s.OpenTradingAccount(ctx, u.ID, *in.Account)
		if err != nil {
			s.log.WarnContext(ctx, "trading account not opened at signup", "op", op, "user", u.ID, "err", err)
			res.AccountErr = err
		} else {
			res.Account = &a
		}
	}
	res.LoginToken, res.ExpiresAt, err = s.IssueLoginToken(ctx, u.ID, in.Remember)
	return res, err
}

// IssueLoginToken issues a one-time login token for a user. It returns
// errs.NotFound for an unknown user and errs.Forbidden for a disabled one.
func (s *Service) IssueLoginToken(ctx context.Context, userID string, remember bool) (string, time.Time, error) {
	return s.issueOT(ctx, userID, PurposeLogin, 0, remember, "identity.IssueLoginToken")
}

// IssueInAppToken issues a one-time token that opens an in-app screen for a
// user, optionally bound to one of their accounts (0: any). It returns
// errs.NotFound for an unknown user, errs.Forbidden for a disabled user or
// someone else's account.
func (s *Service) IssueInAppToken(ctx context.Context, userID string, account int64) (string, time.Time, error) {
	return s.issueOT(ctx, userID, PurposeInApp, account, false, "identity.IssueInAppToken")
}

func (s *Service) issueOT(ctx context.Context, userID string, p Purpose, account int64, remember bool, op string) (string, time.Time, error) {
	var tok string
	var exp time.Time
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		u, err := getUser(ctx, tx, op, "id = ?", userID)
		if err != nil {
			return err
		}
		if u.Status != StatusActive {
			return errs.E(errs.Forbidden, op, "user is disabled")
		}
		if account != 0 {
			if _, err := accountOf(ctx, tx, userID, account); err != nil {
				return err
			}
		}
		tok, exp, err = s.insertToken(ctx, tx, newTokenRow{kind: KindOT, purpose: p, userID: userID, account: account,
			remember: remember, ttl: s.cfg.OTTokenTTL})
		return err
	})
	return tok, exp, err
}
