package identity

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Status is whether a user may use the service.
type Status string

// The user statuses.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Attribution records where a user came from: the `source`, `partnerId`,
// UTM and gclid parameters cTrader appended to the signup screen.
type Attribution struct {
	Source      string
	PartnerID   string
	UTMSource   string
	UTMMedium   string
	UTMCampaign string
	UTMTerm     string
	UTMContent  string
	GCLID       string
}

// User is a trader known to the broker.
type User struct {
	ID          string // "usr_" + UUIDv7
	Email       string
	Language    string // preferred language, ISO 639-1
	CTIDUserID  int64  // cTrader's userId; 0 until a cTID exists
	Attribution Attribution
	Status      Status
	HasPassword bool // false for users known only through the handoff
	CreatedAt   time.Time
}

// NewUser describes a user to create.
type NewUser struct {
	Email       string
	Password    string // empty only for users created by the handoff or operators who set none
	Language    string
	CTIDUserID  int64
	Attribution Attribution
}

// emailKey is the case-insensitive form used for uniqueness.
func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// checkEmail returns the cleaned address or an errs.Invalid error.
func checkEmail(op, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", errs.E(errs.Invalid, op, "e-mail address is required")
	}
	if len(email) > 254 {
		return "", errs.E(errs.Invalid, op, "e-mail address is too long")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", errs.Ef(errs.Invalid, op, "%q is not an e-mail address", email)
	}
	if strings.HasSuffix(strings.ToLower(email), "@privaterelay.appleid.com") {
		return "", errs.E(errs.Invalid, op, "Apple private relay addresses cannot be used with cTrader; please use another address")
	}
	return email, nil
}

const userColumns = `id, email, language, COALESCE(ctid_user_id, 0), partner_id, source, utm_source, utm_medium,
	utm_campaign, utm_term, utm_content, gclid, status, password_hash <> '', created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var x userScan
	if err := row.Scan(x.dest()...); err != nil {
		return User{}, err
	}
	return x.user(), nil
}

// userScan receives the userColumns of a row.
type userScan struct {
	u       User
	status  string
	created int64
}

func (x *userScan) dest() []any {
	a := &x.u.Attribution
	return []any{&x.u.ID, &x.u.Email, &x.u.Language, &x.u.CTIDUserID, &a.PartnerID, &a.Source, &a.UTMSource, &a.UTMMedium,
		&a.UTMCampaign, &a.UTMTerm, &a.UTMContent, &a.GCLID, &x.status, &x.u.HasPassword, &x.created}
}

func (x *userScan) user() User {
	u := x.u
	u.Status = Status(x.status)
	u.CreatedAt = sqlstore.FromMicros(x.created)
	return u
}

type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

func getUser(ctx context.Context, q querier, op, where string, arg any) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM identity_users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errs.E(errs.NotFound, op, "user not found")
	}
	if err != nil {
		return User{}, errs.Wrap(op, err)
	}
	return u, nil
}

// CreateUser stores a new user without contacting cTrader. It returns
// errs.Invalid for a bad e-mail address, password or language and
// errs.Conflict when the e-mail address (compared case-insensitively) or the
// cTID user id is taken.
func (s *Service) CreateUser(ctx context.Context, n NewUser) (User, error) {
	const op = "identity.CreateUser"
	var u User
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		u, err = s.createUserTx(ctx, tx, n, op)
		return err
	})
	return u, err
}

func (s *Service) createUserTx(ctx context.Context, tx *sqlstore.Tx, n NewUser, op string) (User, error) {
	email, err := checkEmail(op, n.Email)
	if err != nil {
		return User{}, err
	}
	hash := ""
	if n.Password != "" {
		if err := checkPasswordPolicy(op, n.Password); err != nil {
			return User{}, err
		}
		if hash, err = hashPassword(n.Password, s.cfg.Password); err != nil {
			return User{}, errs.Wrap(op, err)
		}
	}
	lang := normalizeLanguage(n.Language)
	if lang == "" {
		lang = s.cfg.DefaultLanguage
	}
	if n.CTIDUserID < 0 {
		return User{}, errs.E(errs.Invalid, op, "cTID user id must be positive")
	}
	a := clip(n.Attribution)
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, errs.Wrap(op, err)
	}
	now := s.now()
	u := User{ID: "usr_" + id.String(), Email: email, Language: lang, CTIDUserID: n.CTIDUserID, Attribution: a,
		Status: StatusActive, HasPassword: hash != "", CreatedAt: sqlstore.FromMicros(sqlstore.Micros(now))}
	_, err = tx.Exec(ctx, `INSERT INTO identity_users (id, email, email_key, password_hash, language, ctid_user_id,
		partner_id, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content, gclid, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, email, emailKey(email), hash, lang, nullInt(n.CTIDUserID), a.PartnerID, a.Source, a.UTMSource, a.UTMMedium,
		a.UTMCampaign, a.UTMTerm, a.UTMContent, a.GCLID, string(StatusActive), sqlstore.Micros(now), sqlstore.Micros(now))
	if sqlstore.IsUniqueViolation(err) {
		if n.CTIDUserID != 0 {
			if _, e := getUser(ctx, tx, op, "ctid_user_id = ?", n.CTIDUserID); e == nil {
				return User{}, errs.Ef(errs.Conflict, op, "cTID user id %d belongs to another user", n.CTIDUserID)
			}
		}
		return User{}, errs.E(errs.Conflict, op, "a user with this e-mail address already exists")
	}
	if err != nil {
		return User{}, errs.Wrap(op, err)
	}
	return u, nil
}

// clip bounds the attribution strings that come from URLs.
func clip(a Attribution) Attribution {
	c := func(s string) string {
		s = strings.TrimSpace(s)
		if len(s) > 200 {
			s = s[:200]
		}
		return s
	}
	return Attribution{Source: c(a.Source), PartnerID: c(a.PartnerID), UTMSource: c(a.UTMSource), UTMMedium: c(a.UTMMedium),
		UTMCampaign: c(a.UTMCampaign), UTMTerm: c(a.UTMTerm), UTMContent: c(a.UTMContent), GCLID: c(a.GCLID)}
}

// UserByID returns the user with the given id, or errs.NotFound.
func (s *Service) UserByID(ctx context.Context, id string) (User, error) {
	return getUser(ctx, s.db, "identity.UserByID", "id = ?", id)
}

// UserByEmail returns the user with the given e-mail address (compared
// case-insensitively), or errs.NotFound.
func (s *Service) UserByEmail(ctx context.Context, email string) (User, error) {
	return getUser(ctx, s.db, "identity.UserByEmail", "email_key = ?", emailKey(email))
}

// UserByCTID returns the user with the given cTID user id, or errs.NotFound.
func (s *Service) UserByCTID(ctx context.Context, ctidUserID int64) (User, error) {
	return getUser(ctx, s.db, "identity.UserByCTID", "ctid_user_id = ?", ctidUserID)
}

// ListUsers returns every user, oldest first.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	const op = "identity.ListUsers"
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM identity_users ORDER BY created_at, id`)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, u)
	}
	return out, errs.Wrap(op, rows.Err())
}

// SetStatus enables or disables a user. Disabling also revokes every token
// and cashier session the user holds. It returns errs.NotFound for an
// unknown user and errs.Invalid for an unknown status.
func (s *Service) SetStatus(ctx context.Context, userID string, st Status) error {
	const op = "identity.SetStatus"
	if st != StatusActive && st != StatusDisabled {
		return errs.Ef(errs.Invalid, op, "status %q is neither active nor disabled", st)
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE identity_users SET status = ?, updated_at = ? WHERE id = ?`,
			string(st), sqlstore.Micros(s.now()), userID)
		if err != nil {
			return errs.Wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.NotFound, op, "user not found")
		}
		if st == StatusDisabled {
			_, err = s.revokeUserTokens(ctx, tx, userID, KindAccess, KindInApp, KindOT, KindCashier, KindReset)
		}
		return err
	})
}

// SetCTIDUserID records the cTID user id of a user. It returns errs.NotFound
// for an unknown user and errs.Conflict if another user has that id.
func (s *Service) SetCTIDUserID(ctx context.Context, userID string, ctid int64) error {
	const op = "identity.SetCTIDUserID"
	if ctid <= 0 {
		return errs.E(errs.Invalid, op, "cTID user id must be positive")
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error { return s.setCTIDTx(ctx, tx, userID, ctid, op) })
}

func (s *Service) setCTIDTx(ctx context.Context, tx *sqlstore.Tx, userID string, ctid int64, op string) error {
	res, err := tx.Exec(ctx, `UPDATE identity_users SET ctid_user_id = ?, updated_at = ? WHERE id = ?`,
		ctid, sqlstore.Micros(s.now()), userID)
	if sqlstore.IsUniqueViolation(err) {
		return errs.Ef(errs.Conflict, op, "cTID user id %d belongs to another user", ctid)
	}
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.NotFound, op, "user not found")
	}
	return nil
}

// ChangeEmail changes a user's e-mail address and tells cTrader, as the spec
// requires whenever the address changes in the CRM. It returns errs.Invalid
// for a bad address, errs.Conflict if the address is taken, errs.NotFound
// for an unknown user, and the provisioner's error if cTrader refuses (in
// which case nothing changes).
func (s *Service) ChangeEmail(ctx context.Context, userID, newEmail string) error {
	const op = "identity.ChangeEmail"
	email, err := checkEmail(op, newEmail)
	if err != nil {
		return err
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if other, err := s.UserByEmail(ctx, email); err == nil && other.ID != userID {
		return errs.E(errs.Conflict, op, "a user with this e-mail address already exists")
	}
	if u.CTIDUserID != 0 && s.prov != nil {
		if err := s.prov.ChangeEmail(ctx, u.CTIDUserID, email); err != nil {
			return errs.Wrap(op, err)
		}
	}
	_, err = s.db.Exec(ctx, `UPDATE identity_users SET email = ?, email_key = ?, updated_at = ? WHERE id = ?`,
		email, emailKey(email), sqlstore.Micros(s.now()), userID)
	if sqlstore.IsUniqueViolation(err) {
		return errs.E(errs.Conflict, op, "a user with this e-mail address already exists")
	}
	return errs.Wrap(op, err)
}

// SetLanguage records a user's preferred language (used for e-mail). It
// returns errs.Invalid for a code that is not two letters.
func (s *Service) SetLanguage(ctx context.Context, userID, lang string) error {
	const op = "identity.SetLanguage"
	l := normalizeLanguage(lang)
	if l == "" {
		return errs.Ef(errs.Invalid, op, "%q is not a two-letter language code", lang)
	}
	_, err := s.db.Exec(ctx, `UPDATE identity_users SET language = ?, updated_at = ? WHERE id = ?`, l, sqlstore.Micros(s.now()), userID)
	return errs.Wrap(op, err)
}

// CheckEmail tells whether an e-mail address would be accepted for a user,
// so that screens can say so before submitting. It returns an errs.Invalid
// error describing the problem.
func CheckEmail(email string) error {
	_, err := checkEmail("identity.CheckEmail", email)
	return err
}

// CheckPassword tells whether a password meets the policy (MinPasswordLen
// to MaxPasswordLen). It returns an errs.Invalid error describing the
// problem.
func CheckPassword(password string) error {
	return checkPasswordPolicy("identity.CheckPassword", password)
}
