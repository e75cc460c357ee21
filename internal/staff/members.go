package staff

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

// Member is a staff member as the back office shows them. Password hashes
// and TOTP secrets never leave the package.
type Member struct {
	ID     string // "stf_<uuid7>"
	Email  string
	Name   string
	Role   Role
	Status Status
	// TOTPEnrolled is set once the member's first good code confirmed their
	// authenticator; until then the next login enrols one.
	TOTPEnrolled bool
	// FailedLogins counts wrong passwords and codes since the last success
	// or lockout.
	FailedLogins int
	// LockedUntil is the end of the current lockout (zero when none began).
	LockedUntil time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// LastLoginAt is the last completed login (zero before the first).
	LastLoginAt time.Time
}

// Actor is how the member appears as the actor of audit records and of
// this package's methods: "staff:<id>".
func (m Member) Actor() string { return "staff:" + m.ID }

// Can reports whether the member is active and their role has p.
func (m Member) Can(p Permission) bool { return m.Status == StatusActive && m.Role.Can(p) }

// Locked reports whether the member is locked out at now.
func (m Member) Locked(now time.Time) bool { return now.Before(m.LockedUntil) }

// NewMember asks for a staff member.
type NewMember struct {
	Email    string
	Name     string
	Role     Role
	Password string
	// Actor is who adds the member, for the audit trail: "operator:<name>"
	// on the command line, a member's Actor() in the back office (who then
	// needs PermStaffManage), or "system".
	Actor string
}

const memberColumns = `id, email, name, role, status, totp_secret <> '', failed_logins, locked_until,
	created_at, updated_at, last_login_at`

type scanner interface{ Scan(...any) error }

func scanMember(row scanner) (Member, error) {
	var m Member
	var role, status string
	var locked, last sql.NullInt64
	var created, updated int64
	if err := row.Scan(&m.ID, &m.Email, &m.Name, &role, &status, &m.TOTPEnrolled, &m.FailedLogins, &locked,
		&created, &updated, &last); err != nil {
		return Member{}, err
	}
	m.Role, m.Status = Role(role), Status(status)
	m.LockedUntil = sqlstore.FromNullMicros(locked)
	m.CreatedAt, m.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
	m.LastLoginAt = sqlstore.FromNullMicros(last)
	return m, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

// getMember loads one member by a condition ("id = ?"); suffix may lock
// the row. It returns errs.NotFound when there is none.
func getMember(ctx context.Context, q queryRower, op, where string, arg any, suffix string) (Member, error) {
	m, err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+` FROM staff_members WHERE `+where+suffix, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, errs.E(errs.NotFound, op, "no such staff member")
	}
	if err != nil {
		return Member{}, errs.Wrap(op, err)
	}
	return m, nil
}

// checkEmail returns the cleaned address or errs.Invalid.
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
	return email, nil
}

// checkName returns the cleaned name or errs.Invalid.
func checkName(op, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errs.E(errs.Invalid, op, "name is required")
	case len([]rune(name)) > 100:
		return "", errs.E(errs.Invalid, op, "name must have at most 100 characters")
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", errs.E(errs.Invalid, op, "name must not contain control characters")
	}
	return name, nil
}

// checkActor resolves who acts on staff records. "operator:<name>" (the
// command line, which has the database anyway) and "system" may; a staff
// member ("staff:<id>", or a bare "stf_…" id) must be active with
// PermStaffManage. It returns errs.Invalid for a missing or malformed
// actor and errs.Forbidden for a member without the permission, and the
// actor in its audit form.
func (s *Service) checkActor(ctx context.Context, tx *sqlstore.Tx, op, actor string) (string, error) {
	actor = strings.TrimSpace(actor)
	if strings.HasPrefix(actor, "stf_") {
		actor = "staff:" + actor
	}
	switch {
	case actor == "system":
		return actor, nil
	case strings.HasPrefix(actor, "operator:") && len(actor) > len("operator:"):
		return actor, nil
	case strings.HasPrefix(actor, "staff:"):
		m, err := getMember(ctx, tx, op, "id = ?", strings.TrimPrefix(actor, "staff:"), "")
		if errs.Is(err, errs.NotFound) {
			return "", errs.Ef(errs.Forbidden, op, "the acting staff member %s does not exist", actor)
		}
		if err != nil {
			return "", err
		}
		if err := authorize(op, m, PermStaffManage); err != nil {
			return "", err
		}
		return actor, nil
	case actor == "":
		return "", errs.E(errs.Invalid, op, "who acts is required (operator:<name>, staff:<id> or system)")
	default:
		return "", errs.Ef(errs.Invalid, op, "actor %q is neither operator:<name>, staff:<id> nor system", actor)
	}
}

// Add creates an active staff member, who enrols TOTP at their first
// login. The password needs at least MinPasswordLen characters.
//
// It returns errs.Invalid for a bad e-mail address, name, role, password
// or actor, errs.Conflict when the address (in any case) is taken, and
// errs.Forbidden when a staff actor lacks PermStaffManage.
func (s *Service) Add(ctx context.Context, n NewMember) (Member, error) {
	const op = "staff.Add"
	email, err := checkEmail(op, n.Email)
	if err != nil {
		return Member{}, err
	}
	name, err := checkName(op, n.Name)
	if err != nil {
		return Member{}, err
	}
	if !n.Role.Valid() {
		return Member{}, errs.Ef(errs.Invalid, op, "%q is not a role; the roles are %s", n.Role, roleList())
	}
	if err := checkPasswordPolicy(op, n.Password); err != nil {
		return Member{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Member{}, errs.Wrap(op, err)
	}
	hash := hashPassword(n.Password)
	now := s.now()
	m := Member{ID: "stf_" + id.String(), Email: email, Name: name, Role: n.Role, Status: StatusActive,
		CreatedAt: now, UpdatedAt: now}
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		actor, err := s.checkActor(ctx, tx, op, n.Actor)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO staff_members (id, email, email_key, name, role, status, password_hash,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.Email, emailKey(m.Email), m.Name, string(m.Role), string(m.Status), hash,
			sqlstore.Micros(now), sqlstore.Micros(now))
		if sqlstore.IsUniqueViolation(err) {
			return errs.Ef(errs.Conflict, op, "a staff member with the e-mail address %s already exists", email)
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		return s.record(ctx, tx, actor, "staff.added", subject(m.ID),
			map[string]string{"email": m.Email, "name": m.Name, "role": string(m.Role)})
	})
	if err != nil {
		return Member{}, err
	}
	return m, nil
}

// Get returns the member with the given id, or errs.NotFound.
func (s *Service) Get(ctx context.Context, id string) (Member, error) {
	return getMember(ctx, s.db, "staff.Get", "id = ?", id, "")
}

// GetByEmail returns the member with the given e-mail address (in any
// case), or errs.NotFound.
func (s *Service) GetByEmail(ctx context.Context, email string) (Member, error) {
	return getMember(ctx, s.db, "staff.GetByEmail", "email_key = ?", emailKey(email), "")
}

// List returns every member, by e-mail address.
func (s *Service) List(ctx context.Context) ([]Member, error) {
	const op = "staff.List"
	rows, err := s.db.Query(ctx, `SELECT `+memberColumns+` FROM staff_members ORDER BY email_key`)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, m)
	}
	return out, errs.Wrap(op, rows.Err())
}

// change runs fn on the member locked for update, after checking the
// actor, and records the audit record fn returns (if any) in the same
// transaction. A staff actor may not change themselves when self is false.
func (s *Service) change(ctx context.Context, op, actor, memberID string, self bool,
	fn func(tx *sqlstore.Tx, m *Member, now time.Time) (action string, detail map[string]string, err error)) (Member, error) {
	var out Member
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		actor, err := s.checkActor(ctx, tx, op, actor)
		if err != nil {
			return err
		}
		m, err := getMember(ctx, tx, op, "id = ?", memberID, tx.ForUpdate())
		if err != nil {
			return err
		}
		if !self && actor == m.Actor() {
			return errs.E(errs.Forbidden, op, "staff members cannot do this to their own account; ask another admin")
		}
		now := s.now()
		action, detail, err := fn(tx, &m, now)
		if err != nil {
			return err
		}
		if action == "" {
			out = m
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET updated_at = ? WHERE id = ?`, sqlstore.Micros(now), m.ID); err != nil {
			return errs.Wrap(op, err)
		}
		m.UpdatedAt = now
		if detail == nil {
			detail = map[string]string{}
		}
		detail["email"] = m.Email
		out = m
		return s.record(ctx, tx, actor, action, subject(m.ID), detail)
	})
	if err != nil {
		return Member{}, err
	}
	return out, nil
}

// keepAnAdmin returns errs.Conflict when m is the only active admin, so
// that demoting or disabling them would leave nobody to manage staff. It
// locks the active admins' rows so that two admins cannot demote each
// other at once.
func keepAnAdmin(ctx context.Context, tx *sqlstore.Tx, op string, m Member) error {
	if m.Role != Admin || m.Status != StatusActive {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM staff_members WHERE role = ? AND status = ?`+tx.ForUpdate(),
		string(Admin), string(StatusActive))
	if err != nil {
		return errs.Wrap(op, err)
	}
	defer rows.Close()
	others := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return errs.Wrap(op, err)
		}
		if id != m.ID {
			others++
		}
	}
	if err := rows.Err(); err != nil {
		return errs.Wrap(op, err)
	}
	if others == 0 {
		return errs.Ef(errs.Conflict, op, "%s is the last active admin; make another admin first", m.Email)
	}
	return nil
}

// SetRole gives a member another role, in force from their next request.
// The actor is as for NewMember.Actor; staff cannot change their own role.
//
// It returns errs.Invalid for an unknown role or a bad actor,
// errs.NotFound for an unknown member, errs.Forbidden when the actor may
// not, and errs.Conflict when it would leave no active admin.
func (s *Service) SetRole(ctx context.Context, actor, memberID string, role Role) (Member, error) {
	const op = "staff.SetRole"
	if !role.Valid() {
		return Member{}, errs.Ef(errs.Invalid, op, "%q is not a role; the roles are %s", role, roleList())
	}
	return s.change(ctx, op, actor, memberID, false, func(tx *sqlstore.Tx, m *Member, _ time.Time) (string, map[string]string, error) {
		if m.Role == role {
			return "", nil, nil
		}
		if role != Admin {
			if err := keepAnAdmin(ctx, tx, op, *m); err != nil {
				return "", nil, err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET role = ? WHERE id = ?`, string(role), m.ID); err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		from := m.Role
		m.Role = role
		return "staff.role_changed", map[string]string{"from": string(from), "to": string(role)}, nil
	})
}

// Disable stops a member from signing in and ends their sessions and
// pending logins. The actor is as for NewMember.Actor; staff cannot
// disable themselves.
//
// It returns errs.Invalid for a bad actor, errs.NotFound for an unknown
// member, errs.Forbidden when the actor may not, and errs.Conflict for the
// last active admin.
func (s *Service) Disable(ctx context.Context, actor, memberID string) (Member, error) {
	const op = "staff.Disable"
	return s.change(ctx, op, actor, memberID, false, func(tx *sqlstore.Tx, m *Member, _ time.Time) (string, map[string]string, error) {
		if m.Status == StatusDisabled {
			return "", nil, nil
		}
		if err := keepAnAdmin(ctx, tx, op, *m); err != nil {
			return "", nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET status = ? WHERE id = ?`, string(StatusDisabled), m.ID); err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		n, err := endSessions(ctx, tx, m.ID, "")
		if err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		m.Status = StatusDisabled
		return "staff.disabled", map[string]string{"sessions_ended": itoa(n)}, nil
	})
}

// Enable lets a disabled member sign in again; it also lifts a lockout
// (so an admin can unlock a member before LockFor has passed).
//
// It returns errs.Invalid for a bad actor, errs.NotFound for an unknown
// member and errs.Forbidden when the actor may not.
func (s *Service) Enable(ctx context.Context, actor, memberID string) (Member, error) {
	const op = "staff.Enable"
	return s.change(ctx, op, actor, memberID, true, func(tx *sqlstore.Tx, m *Member, now time.Time) (string, map[string]string, error) {
		if m.Status == StatusActive && !m.Locked(now) && m.FailedLogins == 0 {
			return "", nil, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET status = ?, failed_logins = 0, locked_until = NULL WHERE id = ?`,
			string(StatusActive), m.ID); err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		detail := map[string]string{"was": string(m.Status)}
		if m.Locked(now) {
			detail["unlocked"] = "true"
		}
		m.Status, m.FailedLogins, m.LockedUntil = StatusActive, 0, time.Time{}
		return "staff.enabled", detail, nil
	})
}

// ResetTOTP forgets a member's authenticator (a lost phone): their next
// login enrols a new one. It ends their sessions and pending logins.
//
// It returns errs.Invalid for a bad actor, errs.NotFound for an unknown
// member and errs.Forbidden when the actor may not.
func (s *Service) ResetTOTP(ctx context.Context, actor, memberID string) (Member, error) {
	const op = "staff.ResetTOTP"
	return s.change(ctx, op, actor, memberID, true, func(tx *sqlstore.Tx, m *Member, _ time.Time) (string, map[string]string, error) {
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET totp_secret = '', totp_enrolled_at = NULL, totp_last_step = 0
			WHERE id = ?`, m.ID); err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		n, err := endSessions(ctx, tx, m.ID, "")
		if err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		m.TOTPEnrolled = false
		return "staff.totp_reset", map[string]string{"sessions_ended": itoa(n)}, nil
	})
}

// SetPassword gives a member a new password (one who forgot theirs), lifts
// a lockout and ends their sessions and pending logins. The actor is as
// for NewMember.Actor.
//
// It returns errs.Invalid for a password against the policy or a bad
// actor, errs.NotFound for an unknown member and errs.Forbidden when the
// actor may not.
func (s *Service) SetPassword(ctx context.Context, actor, memberID, password string) (Member, error) {
	const op = "staff.SetPassword"
	if err := checkPasswordPolicy(op, password); err != nil {
		return Member{}, err
	}
	hash := hashPassword(password)
	return s.change(ctx, op, actor, memberID, true, func(tx *sqlstore.Tx, m *Member, _ time.Time) (string, map[string]string, error) {
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET password_hash = ?, failed_logins = 0, locked_until = NULL
			WHERE id = ?`, hash, m.ID); err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		n, err := endSessions(ctx, tx, m.ID, "")
		if err != nil {
			return "", nil, errs.Wrap(op, err)
		}
		m.FailedLogins, m.LockedUntil = 0, time.Time{}
		return "staff.password_set", map[string]string{"sessions_ended": itoa(n)}, nil
	})
}

// ChangePassword lets a signed-in member change their own password; it
// needs the current one. Their other sessions end; this one stays. A
// wrong current password counts as a failed login.
//
// It returns errs.Unauthorized for a wrong current password or a session
// that is no longer valid, errs.RateLimited when the member is locked out,
// and errs.Invalid for a new password against the policy.
func (s *Service) ChangePassword(ctx context.Context, sess Session, current, next string) error {
	const op = "staff.ChangePassword"
	if err := checkPasswordPolicy(op, next); err != nil {
		return err
	}
	if !wellFormedToken(sess.Token) {
		return errs.E(errs.Unauthorized, op, "not signed in")
	}
	var hash string
	now := sqlstore.Micros(s.now())
	err := s.db.QueryRow(ctx, `SELECT m.password_hash FROM staff_sessions s JOIN staff_members m ON m.id = s.member_id
		WHERE s.token_hash = ? AND m.id = ? AND m.status = ? AND s.expires_at > ? AND s.idle_expires_at > ?`,
		tokenHash(sess.Token), sess.Member.ID, string(StatusActive), now, now).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.E(errs.Unauthorized, op, "not signed in")
	}
	if err != nil {
		return errs.Wrap(op, err)
	}
	ok := len(current) <= MaxPasswordLen && checkPassword(hash, current)
	newHash := hashPassword(next)
	var result error
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		result = nil
		m, err := getMember(ctx, tx, op, "id = ?", sess.Member.ID, tx.ForUpdate())
		if err != nil {
			return err
		}
		now := s.now()
		if m.Locked(now) {
			result = errs.E(errs.RateLimited, op, "too many failed attempts; try again later")
			return nil
		}
		if !ok {
			result = errs.E(errs.Unauthorized, op, "the current password is not right")
			return s.failure(ctx, tx, op, m, now, "current password", &result)
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET password_hash = ?, failed_logins = 0, updated_at = ? WHERE id = ?`,
			newHash, sqlstore.Micros(now), m.ID); err != nil {
			return errs.Wrap(op, err)
		}
		n, err := endSessions(ctx, tx, m.ID, tokenHash(sess.Token))
		if err != nil {
			return errs.Wrap(op, err)
		}
		return s.record(ctx, tx, m.Actor(), "staff.password_changed", subject(m.ID),
			map[string]string{"email": m.Email, "other_sessions_ended": itoa(n)})
	})
	if err != nil {
		return err
	}
	return result
}
