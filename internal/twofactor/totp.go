package twofactor

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// TOTP parameters: those Google Authenticator uses.
const (
	totpPeriod = 30
	// totpSkew is how many steps before and after the current one are
	// accepted, for clocks that drift.
	totpSkew = 1
	qrSize   = 256
)

// TOTPSetup is what a user needs to add the account to an authenticator app.
type TOTPSetup struct {
	// Secret is the base32 secret, for typing in by hand.
	Secret string
	// URL is the otpauth:// URL the QR code holds.
	URL string
	// QRCode is a PNG image of URL.
	QRCode []byte
}

// BeginTOTP starts (or restarts) TOTP enrolment with a new secret. The
// user's current method stays in force until ConfirmTOTP proves the app
// holds the secret. accountName is shown in the app (usually the e-mail).
//
// It returns errs.Invalid without a user or account name.
func (s *Service) BeginTOTP(ctx context.Context, userID, accountName string) (TOTPSetup, error) {
	const op = "twofactor.BeginTOTP"
	if userID == "" || accountName == "" {
		return TOTPSetup{}, errs.E(errs.Invalid, op, "user id and account name are required")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.cfg.Issuer, AccountName: accountName, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.d.Rand,
	})
	if err != nil {
		return TOTPSetup{}, errs.Wrap(op, err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return TOTPSetup{}, errs.Wrap(op, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPSetup{}, errs.Wrap(op, err)
	}
	now := sqlstore.Micros(s.d.Clock.Now())
	err = s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		// The current method (and a confirmed TOTP secret) stays in force
		// until the new secret is confirmed.
		res, err := tx.Exec(ctx, `UPDATE twofactor_enrolments SET totp_pending = ?, updated_at = ? WHERE user_id = ?`,
			key.Secret(), now, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO twofactor_enrolments (user_id, method, totp_pending, updated_at)
			VALUES (?, 'none', ?, ?)`, userID, key.Secret(), now)
		return err
	})
	if err != nil {
		return TOTPSetup{}, errs.Wrap(op, err)
	}
	return TOTPSetup{Secret: key.Secret(), URL: key.URL(), QRCode: buf.Bytes()}, nil
}

// ConfirmTOTP checks a code from the app against the secret of BeginTOTP;
// when it is right, Google becomes the user's method (and the code's step is
// used up, like any accepted code).
//
// It returns errs.NotFound when no enrolment was begun and errs.Invalid for
// a wrong code.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) (Enrolment, error) {
	const op = "twofactor.ConfirmTOTP"
	code = normalizeCode(code)
	err := s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		e, err := s.load(ctx, tx.QueryRow, userID, tx.ForUpdate())
		if errors.Is(err, sql.ErrNoRows) || (err == nil && e.pending == "") {
			return errs.E(errs.NotFound, op, "TOTP enrolment was not begun")
		}
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		// A new secret starts with a fresh replay guard.
		if _, err := tx.Exec(ctx, `UPDATE twofactor_enrolments SET totp_last_step = 0 WHERE user_id = ?`, userID); err != nil {
			return err
		}
		ok, _, err := s.acceptTOTP(ctx, tx, userID, e.pending, 0, code, now)
		if err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.Invalid, op, "the code is not right")
		}
		_, err = tx.Exec(ctx, `UPDATE twofactor_enrolments SET method = 'google', totp_secret = totp_pending, totp_pending = '',
			totp_confirmed_at = ?, updated_at = ? WHERE user_id = ?`, sqlstore.Micros(now), sqlstore.Micros(now), userID)
		return err
	})
	if err != nil {
		return Enrolment{}, errs.Wrap(op, err)
	}
	return s.mustEnrolment(ctx, op, userID)
}

// acceptTOTP checks code against the steps around now; a right code of a
// step after lastStep is accepted and its step stored as the new guard.
func (s *Service) acceptTOTP(ctx context.Context, tx *sqlstore.Tx, userID, secret string, lastStep int64, code string, now time.Time) (ok, replay bool, err error) {
	if len(code) != int(otp.DigitsSix) {
		return false, false, nil
	}
	current := now.Unix() / totpPeriod
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return false, false, err
		}
		if !sameHash(want, code) {
			continue
		}
		if step <= lastStep {
			return false, true, nil
		}
		_, err = tx.Exec(ctx, `UPDATE twofactor_enrolments SET totp_last_step = ? WHERE user_id = ? AND totp_last_step < ?`,
			step, userID, step)
		return err == nil, false, err
	}
	return false, false, nil
}
