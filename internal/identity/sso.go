package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// crmPasswordRef is a short fingerprint of a crm password, stored with each
// crmApiToken so that removing the password from the settings retires the
// tokens issued for it.
func crmPasswordRef(password string) string {
	sum := sha256.Sum256([]byte("opencashier crm password\x00" + password))
	return hex.EncodeToString(sum[:8])
}

// IssueCRMToken checks the password cTrader presents to
// /oauth2/crmApiToken against every configured password (in constant time)
// and issues a crmApiToken. It returns errs.Unauthorized when the password
// matches none.
func (s *Service) IssueCRMToken(ctx context.Context, password string) (string, time.Time, error) {
	const op = "identity.IssueCRMToken"
	given := sha256.Sum256([]byte(password))
	match := -1
	for i, p := range s.cfg.CRMPasswords {
		want := sha256.Sum256([]byte(p))
		if subtle.ConstantTimeCompare(given[:], want[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 || password == "" {
		return "", time.Time{}, errs.E(errs.Unauthorized, op, "Client authentication failed")
	}
	var tok string
	var exp time.Time
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		tok, exp, err = s.insertToken(ctx, tx, newTokenRow{kind: KindCRM, secretRef: s.crmRefs[match], ttl: s.cfg.CRMTokenTTL})
		return err
	})
	return tok, exp, err
}

// VerifyCRMToken checks a crmApiToken. It returns errs.Unauthorized for a
// token that is malformed, unknown, revoked, expired, or issued for a
// password that is no longer configured.
func (s *Service) VerifyCRMToken(ctx context.Context, token string) error {
	const op = "identity.VerifyCRMToken"
	fail := errs.E(errs.Unauthorized, op, "Client authentication failed")
	if !WellFormedToken(token) {
		return fail
	}
	t, err := loadToken(ctx, s.db, KindCRM, token, op)
	if errs.Is(err, errs.NotFound) {
		return fail
	}
	if err != nil {
		return err
	}
	if t.usable(s.now(), op) != nil {
		return fail
	}
	for _, ref := range s.crmRefs {
		if subtle.ConstantTimeCompare([]byte(ref), []byte(t.secretRef)) == 1 {
			return nil
		}
	}
	return fail
}

// RevokeCRMTokens revokes every crmApiToken; cTrader must ask for a new one.
// It returns how many were revoked.
func (s *Service) RevokeCRMTokens(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE identity_tokens SET revoked_at = ? WHERE kind = ? AND revoked_at IS NULL`,
			sqlstore.Micros(s.now()), string(KindCRM))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: "operator", Action: "token.revoked", Subject: "crmApiToken",
			Detail: map[string]string{"count": strconv.FormatInt(n, 10)}})
	})
	if err != nil {
		return 0, errs.Wrap("identity.RevokeCRMTokens", err)
	}
	return n, nil
}

// Exchange is the answer to /oauth2/onetime/authorize.
type Exchange struct {
	CTIDUserID  int64
	AccessToken string // only when the user chose "keep me logged in"
	InAppToken  string
}

// ExchangeLoginToken consumes a one-time login token (exactly once, even
// under concurrent calls) and returns the user's cTID user id, an
// accessToken if the user chose to stay logged in, and a new inappToken.
// It returns errs.Invalid for a malformed token, errs.NotFound for an
// unknown, used or revoked one, errs.Expired once its minute is over,
// errs.Forbidden for a disabled user and errs.Conflict for a user without
// a cTID.
func (s *Service) ExchangeLoginToken(ctx context.Context, code string) (Exchange, error) {
	const op = "identity.ExchangeLoginToken"
	if !WellFormedToken(code) {
		return Exchange{}, errs.E(errs.Invalid, op, "token is malformed")
	}
	var out Exchange
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		out = Exchange{}
		t, err := s.consumeToken(ctx, tx, KindOT, PurposeLogin, code, op)
		if err != nil {
			return err
		}
		u, err := s.activeUser(ctx, tx, t.userID, op)
		if err != nil {
			return err
		}
		out.CTIDUserID = u.CTIDUserID
		var parent string
		if t.remember {
			ttl := s.cfg.AccessTokenTTL
			if ttl < 0 {
				ttl = 0
			}
			if out.AccessToken, _, err = s.insertToken(ctx, tx, newTokenRow{kind: KindAccess, userID: u.ID, ttl: ttl}); err != nil {
				return err
			}
			parent = hashToken(out.AccessToken)
		}
		out.InAppToken, err = s.issueInAppSessionToken(ctx, tx, u.ID, parent)
		return err
	})
	return out, err
}

// activeUser loads a user who may be recognised by cTrader.
func (s *Service) activeUser(ctx context.Context, tx *sqlstore.Tx, userID, op string) (User, error) {
	u, err := getUser(ctx, tx, op, "id = ?", userID)
	if err != nil {
		return User{}, err
	}
	if u.Status != StatusActive {
		return User{}, errs.E(errs.Forbidden, op, "user is disabled")
	}
	if u.CTIDUserID == 0 {
		return User{}, errs.E(errs.Conflict, op, "user has no cTID")
	}
	return u, nil
}

func (s *Service) issueInAppSessionToken(ctx context.Context, tx *sqlstore.Tx, userID, parent string) (string, error) {
	tok, _, err := s.insertToken(ctx, tx, newTokenRow{kind: KindInApp, userID: userID, parent: parent, ttl: s.cfg.InAppTokenTTL})
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE identity_users SET inapp_issued = 1 WHERE id = ? AND inapp_issued = 0`, userID); err != nil {
		return "", errs.Wrap("identity.issueInAppSessionToken", err)
	}
	return tok, nil
}

// Authorization is the answer to /oauth2/authorize.
type Authorization struct {
	CTIDUserID int64
	InAppToken string
}

// VerifyAccessToken checks a long-term accessToken (automatic re-login). It
// may be verified any number of times; each call returns a new inappToken.
// It returns errs.Invalid for a malformed token, errs.NotFound for an
// unknown or revoked one, errs.Expired for an expired one and
// errs.Forbidden for a disabled user.
func (s *Service) VerifyAccessToken(ctx context.Context, accessToken string) (Authorization, error) {
	const op = "identity.VerifyAccessToken"
	if !WellFormedToken(accessToken) {
		return Authorization{}, errs.E(errs.Invalid, op, "token is malformed")
	}
	var out Authorization
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		out = Authorization{}
		t, err := loadToken(ctx, tx, KindAccess, accessToken, op)
		if err != nil {
			return err
		}
		if err := t.usable(s.now(), op); err != nil {
			return err
		}
		u, err := s.activeUser(ctx, tx, t.userID, op)
		if err != nil {
			return err
		}
		out.CTIDUserID = u.CTIDUserID
		out.InAppToken, err = s.issueInAppSessionToken(ctx, tx, u.ID, t.hash)
		return err
	})
	return out, err
}

// GenerateInAppOT issues a one-time token for an in-app action of the user
// with the given cTID user id (/oauth2/onetime/generate). Once an
// inappToken has been issued to the user, a valid one of theirs is
// required. It returns errs.NotFound for an unknown cTID user id,
// errs.Invalid for a malformed inappToken, errs.Forbidden for a disabled
// user or a missing, unknown, revoked or foreign inappToken, and
// errs.Expired for an expired inappToken.
func (s *Service) GenerateInAppOT(ctx context.Context, ctidUserID int64, inappToken string) (string, error) {
	const op = "identity.GenerateInAppOT"
	if ctidUserID <= 0 {
		return "", errs.E(errs.NotFound, op, "user not found")
	}
	if inappToken != "" && !WellFormedToken(inappToken) {
		return "", errs.E(errs.Invalid, op, "inappToken is malformed")
	}
	var tok string
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		// The user, whether an inappToken was ever issued to them, and the
		// inappToken presented, in one read.
		var (
			us     userScan
			issued int
			ts     tokenScan
		)
		err := tx.QueryRow(ctx, `SELECT u.id, u.email, u.language, COALESCE(u.ctid_user_id, 0), u.partner_id, u.source, u.utm_source,
			u.utm_medium, u.utm_campaign, u.utm_term, u.utm_content, u.gclid, u.status, u.password_hash <> '', u.created_at, u.inapp_issued,
			COALESCE(t.hash, ''), COALESCE(t.kind, ''), COALESCE(t.purpose, ''), COALESCE(t.user_id, ''), COALESCE(t.account_login, 0),
			COALESCE(t.remember, 0), COALESCE(t.parent_hash, ''), COALESCE(t.secret_ref, ''), COALESCE(t.created_at, 0),
			t.expires_at, t.consumed_at, t.revoked_at
			FROM identity_users u LEFT JOIN identity_tokens t ON t.hash = ? AND t.kind = ?
			WHERE u.ctid_user_id = ?`, inappHash(inappToken), string(KindInApp), ctidUserID).Scan(
			append(append(us.dest(), &issued), ts.dest()...)...)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, "user not found")
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		u := us.user()
		if u.Status != StatusActive {
			return errs.E(errs.Forbidden, op, "user is disabled")
		}
		switch {
		case inappToken != "":
			t := ts.row()
			if t.hash == "" {
				return errs.E(errs.Forbidden, op, "inappToken is not valid for this user")
			}
			if t.userID != u.ID {
				return errs.E(errs.Forbidden, op, "inappToken is not valid for this user")
			}
			if err := t.usable(s.now(), op); err != nil {
				if errs.Is(err, errs.Expired) {
					return errs.E(errs.Expired, op, "inappToken expired")
				}
				return errs.E(errs.Forbidden, op, "inappToken is not valid for this user")
			}
		case issued != 0:
			return errs.E(errs.Forbidden, op, "inappToken is required for this user")
		}
		tok, _, err = s.insertToken(ctx, tx, newTokenRow{kind: KindOT, purpose: PurposeInApp, userID: u.ID, ttl: s.cfg.OTTokenTTL})
		return err
	})
	return tok, err
}

// inappHash is the stored form of an inappToken presented to
// GenerateInAppOT; none (empty) matches no token.
func inappHash(plain string) string {
	if plain == "" {
		return ""
	}
	return hashToken(plain)
}

// Logout revokes every token of the user with the given cTID user id
// (accessTokens, inappTokens, unused one-time tokens, cashier sessions), as
// /oauth2/logout asks. If accessToken is given it must be well formed. It
// returns errs.NotFound for an unknown user and errs.Invalid for a malformed
// accessToken, and how many tokens it revoked.
func (s *Service) Logout(ctx context.Context, ctidUserID int64, accessToken string) (int64, error) {
	const op = "identity.Logout"
	if accessToken != "" && !WellFormedToken(accessToken) {
		return 0, errs.E(errs.Invalid, op, "accessToken is malformed")
	}
	var n int64
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		u, err := getUser(ctx, tx, op, "ctid_user_id = ?", ctidUserID)
		if err != nil {
			return err
		}
		n, err = s.revokeUserTokens(ctx, tx, u.ID, KindAccess, KindInApp, KindOT, KindCashier)
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "user logged out by cTrader", "user_ctid", ctidUserID, "revoked", n)
	}
	return n, err
}

// RevokeAccessToken revokes one accessToken and the inappTokens issued
// through it. It returns errs.NotFound if there is no such token.
func (s *Service) RevokeAccessToken(ctx context.Context, accessToken string) error {
	const op = "identity.RevokeAccessToken"
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		t, err := loadToken(ctx, tx, KindAccess, accessToken, op)
		if err != nil {
			return err
		}
		now := sqlstore.Micros(s.now())
		res, err := tx.Exec(ctx, `UPDATE identity_tokens SET revoked_at = ? WHERE (hash = ? OR parent_hash = ?) AND revoked_at IS NULL`,
			now, t.hash, t.hash)
		if err != nil {
			return errs.Wrap(op, err)
		}
		n, _ := res.RowsAffected()
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: "ctrader", Action: "token.revoked", Subject: "user:" + t.userID,
			Detail: map[string]string{"tokens": "access and its children", "count": strconv.FormatInt(n, 10)}})
	})
}
