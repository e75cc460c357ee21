package staff

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"image/png"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// TOTP parameters: those of Google Authenticator, as in internal/twofactor.
const (
	totpPeriod = 30
	// totpSkew is how many steps before and after the current one are
	// accepted, for clocks that drift.
	totpSkew = 1
	qrSize   = 256
)

// Pending is a login between the password and the TOTP code.
type Pending struct {
	// Token is the opaque secret CompleteLogin takes; it is good until
	// ExpiresAt and for wrong codes until the member is locked out.
	Token     string
	ExpiresAt time.Time
	// NeedsEnrolment is set when the member has no authenticator yet:
	// Enrolment holds a new secret to add to one, and the first good code
	// confirms it.
	NeedsEnrolment bool
	Enrolment      *Enrolment
}

// Enrolment is what a member needs to add their account to an
// authenticator app.
type Enrolment struct {
	// Secret is the base32 secret, for typing in by hand.
	Secret string
	// URI is the otpauth:// URI the QR code holds.
	URI string
	// QRPNG is a PNG image of URI.
	QRPNG []byte
}

// The answer to a wrong e-mail address or password: the same for both.
const wrongCredentials = "wrong e-mail address or password" // #nosec G101 -- a message shown to the user, not a credential

// BeginLogin checks a member's e-mail address and password and returns a
// pending login for CompleteLogin. A member without an authenticator gets
// a new TOTP secret to enrol.
//
// A wrong password counts as a failure; MaxFailures in a row lock the
// member out for LockFor. It returns errs.Unauthorized for an unknown
// address or a wrong password (the same error, after the same password
// hashing work), errs.RateLimited while the member is locked out
// (including the attempt that locks), and errs.Forbidden for a disabled
// member who gave the right password.
func (s *Service) BeginLogin(ctx context.Context, email, password string) (Pending, error) {
	const op = "staff.BeginLogin"
	key := emailKey(email)
	var id, stored, hash string
	err := s.db.QueryRow(ctx, `SELECT id, email, password_hash FROM staff_members WHERE email_key = ?`, key).Scan(&id, &stored, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(s.dummyHash(), password) // spend the time a real member costs
		err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			return s.record(ctx, tx, "system", "staff.login_failed", "email:"+printable(key, 200),
				map[string]string{"reason": "unknown e-mail address"})
		})
		if err != nil {
			return Pending{}, errs.Wrap(op, err)
		}
		return Pending{}, errs.E(errs.Unauthorized, op, wrongCredentials)
	}
	if err != nil {
		return Pending{}, errs.Wrap(op, err)
	}
	ok := len(password) <= MaxPasswordLen && checkPassword(hash, password)

	// A secret for enrolment is made outside the transaction (drawing the
	// QR code takes a while); it is dropped if the member turns out to be
	// enrolled.
	var enrol *Enrolment
	var enrolled bool
	if err := s.db.QueryRow(ctx, `SELECT totp_secret <> '' FROM staff_members WHERE id = ?`, id).Scan(&enrolled); err != nil {
		return Pending{}, errs.Wrap(op, err)
	}
	if ok && !enrolled {
		if enrol, err = s.newEnrolment(stored); err != nil {
			return Pending{}, errs.Wrap(op, err)
		}
	}

	var out Pending
	var result error
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		out, result = Pending{}, nil
		m, err := getMember(ctx, tx, op, "id = ?", id, tx.ForUpdate())
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case m.Locked(now):
			result = errs.E(errs.RateLimited, op, "too many failed attempts; try again later")
			return s.record(ctx, tx, "system", "staff.login_refused", subject(m.ID),
				map[string]string{"email": m.Email, "reason": "locked out", "locked_until": m.LockedUntil.Format(time.RFC3339)})
		case !ok:
			result = errs.E(errs.Unauthorized, op, wrongCredentials)
			return s.failure(ctx, tx, op, m, now, "wrong password", &result)
		case m.Status != StatusActive:
			result = errs.E(errs.Forbidden, op, "this staff account is disabled")
			return s.record(ctx, tx, "system", "staff.login_refused", subject(m.ID),
				map[string]string{"email": m.Email, "reason": "disabled"})
		}
		secret := ""
		if !m.TOTPEnrolled {
			if enrol == nil { // reset between the two reads
				if enrol, err = s.newEnrolment(m.Email); err != nil {
					return errs.Wrap(op, err)
				}
			}
			secret = enrol.Secret
		}
		tok, exp := newToken(), now.Add(s.opt.LoginTTL)
		if _, err := tx.Exec(ctx, `INSERT INTO staff_pending_logins (token_hash, member_id, enrol_secret, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, tokenHash(tok), m.ID, secret, sqlstore.Micros(now), sqlstore.Micros(exp)); err != nil {
			return errs.Wrap(op, err)
		}
		out = Pending{Token: tok, ExpiresAt: exp, NeedsEnrolment: secret != ""}
		if secret != "" {
			out.Enrolment = enrol
		}
		return nil
	})
	if err != nil {
		return Pending{}, err
	}
	if result != nil {
		return Pending{}, result
	}
	return out, nil
}

// newEnrolment makes a new TOTP secret with its URI and QR code.
func (s *Service) newEnrolment(account string) (*Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.opt.Issuer, AccountName: strings.TrimSpace(account), Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, err
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return &Enrolment{Secret: key.Secret(), URI: key.URL(), QRPNG: buf.Bytes()}, nil
}

// CompleteLogin checks the TOTP code of a pending login and opens a
// session. For a member who is enrolling, the first good code confirms
// the new authenticator. A code is accepted once: a code of the step
// already used (or an earlier one) is refused as a replay. Wrong and
// replayed codes count as failures towards the lockout.
//
// It returns errs.Unauthorized for an unknown or used pending token, a
// wrong or replayed code; errs.Expired for a pending token past its
// ExpiresAt; errs.RateLimited while the member is locked out (including
// the attempt that locks, which also ends the member's pending logins);
// and errs.Forbidden for a member disabled meanwhile.
func (s *Service) CompleteLogin(ctx context.Context, pendingToken, code string) (Session, error) {
	const op = "staff.CompleteLogin"
	if !wellFormedToken(pendingToken) {
		return Session{}, errs.E(errs.Unauthorized, op, "this login is unknown; sign in again")
	}
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	var out Session
	var result error
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		out, result = Session{}, nil
		var memberID, enrolSecret string
		var expires int64
		err := tx.QueryRow(ctx, `SELECT member_id, enrol_secret, expires_at FROM staff_pending_logins WHERE token_hash = ?`+tx.ForUpdate(),
			tokenHash(pendingToken)).Scan(&memberID, &enrolSecret, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			result = errs.E(errs.Unauthorized, op, "this login is unknown or already used; sign in again")
			return nil
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		now := s.now()
		dropPending := func() error {
			_, err := tx.Exec(ctx, `DELETE FROM staff_pending_logins WHERE token_hash = ?`, tokenHash(pendingToken))
			return errs.Wrap(op, err)
		}
		if !now.Before(sqlstore.FromMicros(expires)) {
			result = errs.E(errs.Expired, op, "this login has expired; sign in again")
			return dropPending()
		}
		m, err := getMember(ctx, tx, op, "id = ?", memberID, tx.ForUpdate())
		if err != nil {
			return err
		}
		var secret string
		var lastStep int64
		if err := tx.QueryRow(ctx, `SELECT totp_secret, totp_last_step FROM staff_members WHERE id = ?`, m.ID).Scan(&secret, &lastStep); err != nil {
			return errs.Wrap(op, err)
		}
		enrolling := enrolSecret != ""
		switch {
		case m.Locked(now):
			result = errs.E(errs.RateLimited, op, "too many failed attempts; try again later")
			return dropPending()
		case m.Status != StatusActive:
			result = errs.E(errs.Forbidden, op, "this staff account is disabled")
			return dropPending()
		case enrolling && secret != "", !enrolling && secret == "":
			// Enrolled or reset since the password was checked.
			result = errs.E(errs.Unauthorized, op, "this login is out of date; sign in again")
			return dropPending()
		}
		if enrolling {
			secret, lastStep = enrolSecret, 0
		}
		step, matched, err := matchTOTP(secret, code, now)
		if err != nil {
			return errs.Wrap(op, err)
		}
		switch {
		case !matched:
			result = errs.E(errs.Unauthorized, op, "the code is not right")
			return s.failure(ctx, tx, op, m, now, "wrong code", &result)
		case step <= lastStep:
			result = errs.E(errs.Unauthorized, op, "this code has already been used; wait for the next one")
			return s.failure(ctx, tx, op, m, now, "replayed code", &result)
		}

		if err := dropPending(); err != nil {
			return err
		}
		if enrolling {
			if _, err := tx.Exec(ctx, `UPDATE staff_members SET totp_secret = ?, totp_enrolled_at = ? WHERE id = ?`,
				enrolSecret, sqlstore.Micros(now), m.ID); err != nil {
				return errs.Wrap(op, err)
			}
			if err := s.record(ctx, tx, m.Actor(), "staff.totp_enrolled", subject(m.ID), map[string]string{"email": m.Email}); err != nil {
				return err
			}
			m.TOTPEnrolled = true
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_members SET totp_last_step = ?, failed_logins = 0, locked_until = NULL,
			last_login_at = ? WHERE id = ?`, step, sqlstore.Micros(now), m.ID); err != nil {
			return errs.Wrap(op, err)
		}
		m.FailedLogins, m.LockedUntil, m.LastLoginAt = 0, time.Time{}, now
		// A member's expired sessions are cleared as they log in again.
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE member_id = ? AND (expires_at <= ? OR idle_expires_at <= ?)`,
			m.ID, sqlstore.Micros(now), sqlstore.Micros(now)); err != nil {
			return errs.Wrap(op, err)
		}
		sess, err := s.openSession(ctx, tx, m, now)
		if err != nil {
			return err
		}
		out = sess
		return s.record(ctx, tx, m.Actor(), "staff.login", subject(m.ID), map[string]string{"email": m.Email,
			"role": string(m.Role), "session_expires_at": sess.AbsoluteExpiresAt.Format(time.RFC3339)})
	})
	if err != nil {
		return Session{}, err
	}
	if result != nil {
		return Session{}, result
	}
	return out, nil
}

// matchTOTP checks code against the steps around now and returns the step
// it belongs to.
func matchTOTP(secret, code string, now time.Time) (step int64, ok bool, err error) {
	if len(code) != int(otp.DigitsSix) {
		return 0, false, nil
	}
	current := now.Unix() / totpPeriod
	for st := current - totpSkew; st <= current+totpSkew; st++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(st*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return st, true, nil
		}
	}
	return 0, false, nil
}

// failure counts a wrong password or code of member m and records it. At
// MaxFailures it locks the member out for LockFor, ends their pending
// logins, records the lockout and sets *result to errs.RateLimited.
func (s *Service) failure(ctx context.Context, tx *sqlstore.Tx, op string, m Member, now time.Time, reason string, result *error) error {
	failed := m.FailedLogins + 1
	detail := map[string]string{"email": m.Email, "reason": reason, "failures": itoa(int64(failed))}
	if err := s.record(ctx, tx, "system", "staff.login_failed", subject(m.ID), detail); err != nil {
		return err
	}
	if failed < s.opt.MaxFailures {
		_, err := tx.Exec(ctx, `UPDATE staff_members SET failed_logins = ? WHERE id = ?`, failed, m.ID)
		return errs.Wrap(op, err)
	}
	until := now.Add(s.opt.LockFor)
	if _, err := tx.Exec(ctx, `UPDATE staff_members SET failed_logins = 0, locked_until = ? WHERE id = ?`,
		sqlstore.Micros(until), m.ID); err != nil {
		return errs.Wrap(op, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM staff_pending_logins WHERE member_id = ?`, m.ID); err != nil {
		return errs.Wrap(op, err)
	}
	*result = errs.Ef(errs.RateLimited, op, "too many failed attempts; this account is locked for %s", s.opt.LockFor)
	return s.record(ctx, tx, "system", "staff.locked", subject(m.ID), map[string]string{"email": m.Email,
		"failures": itoa(int64(failed)), "locked_until": until.Format(time.RFC3339)})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// printable makes text typed by anyone fit an audit subject: valid UTF-8,
// no control characters, at most n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
