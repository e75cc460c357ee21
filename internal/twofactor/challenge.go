package twofactor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// ChallengeRequest asks for a second-factor challenge.
type ChallengeRequest struct {
	UserID string
	// Purpose and Ref bind the challenge ("withdrawal" and a wizard uuid,
	// "login" and a login attempt): one challenge per user, purpose and ref.
	Purpose string
	Ref     string
	// Template names the message (e.g. "Withdraw_Confirm"); it is reported
	// back in Challenge.Template and heads the message text.
	Template string
	// Fallback is used when the user has not enrolled a method (for
	// instance e-mail to the address on file); without it such a user gets
	// errs.NotFound.
	Fallback *Recipient
}

// Challenge is one code challenge and its delivery.
type Challenge struct {
	ID        string
	UserID    string
	Purpose   string
	Ref       string
	Template  string
	Recipient Recipient
	// Sent is true when a code was delivered (always false for Google:
	// the code comes from the app).
	Sent         bool
	SentAt       time.Time
	ExpiresAt    time.Time
	ResendAfter  time.Time
	AttemptsLeft int
	State        string
	CreatedAt    time.Time
}

// Start creates the challenge for (user, purpose, ref) and sends its code,
// or returns the pending challenge that already exists (sending nothing; use
// Resend). A failed delivery is not an error: the challenge comes back with
// Sent false and may be resent at once.
//
// It returns errs.Invalid for a missing user, purpose or ref, or a bad
// fallback; errs.NotFound when the user has no method and there is no
// fallback; errs.Conflict when the challenge is already verified, expired or
// used up.
func (s *Service) Start(ctx context.Context, req ChallengeRequest) (Challenge, error) {
	const op = "twofactor.Start"
	if req.UserID == "" || req.Purpose == "" || req.Ref == "" {
		return Challenge{}, errs.E(errs.Invalid, op, "user, purpose and ref are required")
	}
	if c, err := s.challenge(ctx, s.d.DB.QueryRow, req.UserID, req.Purpose, req.Ref, ""); err == nil {
		if c.State != StatePending {
			return c, errs.Ef(errs.Conflict, op, "the challenge is %s", c.State)
		}
		return c, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Challenge{}, errs.Wrap(op, err)
	}
	e, ok, err := s.Enrolment(ctx, req.UserID)
	if err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	r := e.Recipient
	if !ok {
		if req.Fallback == nil {
			return Challenge{}, errs.E(errs.NotFound, op, "no second factor enrolled")
		}
		if err := checkRecipient(op, *req.Fallback); err != nil {
			return Challenge{}, err
		}
		r = *req.Fallback
	}
	now := s.d.Clock.Now()
	c := Challenge{
		ID: "tfa_" + uuid.Must(uuid.NewV7()).String(), UserID: req.UserID, Purpose: req.Purpose, Ref: req.Ref,
		Template: req.Template, Recipient: r, SentAt: now, ExpiresAt: now.Add(s.cfg.CodeTTL), ResendAfter: now,
		AttemptsLeft: s.cfg.Attempts, State: StatePending, CreatedAt: now,
	}
	code, hash := "", ""
	if r.Method != Google {
		if code, err = s.newCode(); err != nil {
			return Challenge{}, errs.Wrap(op, err)
		}
		hash = hashCode(c.ID, code)
	}
	err = s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO twofactor_challenges (id, user_id, purpose, ref, method, recipient, code_hash,
			sent, sent_at, expires_at, resend_after, attempts_left, state, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.UserID, c.Purpose, c.Ref, string(r.Method), recipientAddress(r), hash,
			sqlstore.Micros(now), sqlstore.Micros(c.ExpiresAt), sqlstore.Micros(now), c.AttemptsLeft, c.State, sqlstore.Micros(now))
		return err
	})
	if sqlstore.IsUniqueViolation(err) {
		// Another request started it first: answer with that one.
		got, gerr := s.challenge(ctx, s.d.DB.QueryRow, req.UserID, req.Purpose, req.Ref, "")
		if gerr != nil {
			return Challenge{}, errs.Wrap(op, gerr)
		}
		return got, nil
	}
	if err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	c.Template = req.Template
	if r.Method == Google {
		return c, nil
	}
	return s.deliver(ctx, c, code)
}

// Resend sends a new code for the pending challenge, with a full lifetime.
// The wrong attempts left are kept, so resending does not buy more guesses.
//
// It returns errs.NotFound for an unknown challenge; errs.Conflict when it
// is not pending or its method is Google (nothing to send); errs.RateLimited
// within the cool-down after the last code was sent.
func (s *Service) Resend(ctx context.Context, userID, purpose, ref, template string) (Challenge, error) {
	const op = "twofactor.Resend"
	code, err := s.newCode()
	if err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	var c Challenge
	err = s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		got, err := s.challenge(ctx, tx.QueryRow, userID, purpose, ref, tx.ForUpdate())
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, "no such challenge")
		}
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		switch {
		case got.State != StatePending:
			return errs.Ef(errs.Conflict, op, "the challenge is %s", got.State)
		case got.Recipient.Method == Google:
			return errs.E(errs.Conflict, op, "codes for google come from the authenticator app")
		case now.Before(got.ResendAfter):
			secs := int(got.ResendAfter.Sub(now).Round(time.Second) / time.Second)
			return errs.Ef(errs.RateLimited, op, "a new code can be sent in %d seconds", max(secs, 1))
		}
		got.SentAt, got.ExpiresAt, got.Sent = now, now.Add(s.cfg.CodeTTL), false
		_, err = tx.Exec(ctx, `UPDATE twofactor_challenges SET code_hash = ?, sent = 0, sent_at = ?, expires_at = ?
			WHERE id = ?`, hashCode(got.ID, code), sqlstore.Micros(now), sqlstore.Micros(got.ExpiresAt), got.ID)
		c = got
		return err
	})
	if err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	c.Template = template
	return s.deliver(ctx, c, code)
}

// deliver sends the code and records the delivery and the cool-down.
func (s *Service) deliver(ctx context.Context, c Challenge, code string) (Challenge, error) {
	const op = "twofactor.deliver"
	text := fmt.Sprintf("Your confirmation code is %s. It expires at %s UTC. If you did not ask for it, do not share it and contact support.",
		code, c.ExpiresAt.UTC().Format("15:04"))
	var err error
	switch c.Recipient.Method {
	case Email:
		if s.d.Mailer == nil {
			err = errs.E(errs.Unavailable, op, "no mailer configured")
		} else {
			subject := "Your confirmation code"
			if c.Template != "" {
				subject += " (" + c.Template + ")"
			}
			err = s.d.Mailer.Send(ctx, mail.Message{To: c.Recipient.Email, Subject: subject, Text: text})
		}
	case SMS:
		if s.d.SMS == nil {
			err = errs.E(errs.Unavailable, op, "no SMS sender configured")
		} else {
			err = s.d.SMS.SendSMS(ctx, c.Recipient.Phone, text)
		}
	}
	if err != nil {
		// Not sent: the caller shows sent 0 and the user may resend at once.
		return c, nil
	}
	now := s.d.Clock.Now()
	c.Sent, c.ResendAfter = true, now.Add(s.cfg.ResendCooldown)
	if _, err := s.d.DB.Exec(ctx, `UPDATE twofactor_challenges SET sent = 1, resend_after = ? WHERE id = ?`,
		sqlstore.Micros(c.ResendAfter), c.ID); err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	return c, nil
}

func recipientAddress(r Recipient) string {
	switch r.Method {
	case Email:
		return r.Email
	case SMS:
		return r.Phone
	}
	return ""
}

// Challenge returns the challenge for (user, purpose, ref). It returns
// errs.NotFound when there is none.
func (s *Service) Challenge(ctx context.Context, userID, purpose, ref string) (Challenge, error) {
	const op = "twofactor.Challenge"
	c, err := s.challenge(ctx, s.d.DB.QueryRow, userID, purpose, ref, "")
	if errors.Is(err, sql.ErrNoRows) {
		return Challenge{}, errs.E(errs.NotFound, op, "no such challenge")
	}
	if err != nil {
		return Challenge{}, errs.Wrap(op, err)
	}
	return c, nil
}

func (s *Service) challenge(ctx context.Context, row rowFunc, userID, purpose, ref, suffix string) (Challenge, error) {
	var (
		c                                         Challenge
		method, addr                              string
		sent                                      int
		sentAt, expiresAt, resendAfter, createdAt int64
	)
	err := row(ctx, `SELECT id, method, recipient, sent, sent_at, expires_at, resend_after, attempts_left, state, created_at
		FROM twofactor_challenges WHERE user_id = ? AND purpose = ? AND ref = ?`+suffix, userID, purpose, ref).
		Scan(&c.ID, &method, &addr, &sent, &sentAt, &expiresAt, &resendAfter, &c.AttemptsLeft, &c.State, &createdAt)
	if err != nil {
		return Challenge{}, err
	}
	c.UserID, c.Purpose, c.Ref = userID, purpose, ref
	c.Recipient.Method = Method(method)
	switch c.Recipient.Method {
	case Email:
		c.Recipient.Email = addr
	case SMS:
		c.Recipient.Phone = addr
	}
	c.Sent = sent == 1
	c.SentAt, c.ExpiresAt = sqlstore.FromMicros(sentAt), sqlstore.FromMicros(expiresAt)
	c.ResendAfter, c.CreatedAt = sqlstore.FromMicros(resendAfter), sqlstore.FromMicros(createdAt)
	return c, nil
}

// Verify checks a code for the pending challenge (user, purpose, ref): the
// e-mailed or texted code, or for Google the authenticator's current code,
// which is accepted once only. Each wrong code uses one attempt, recorded in
// the database before the error is returned.
//
// It returns errs.NotFound for an unknown challenge; errs.Conflict when it
// was already verified; errs.Expired once the code's lifetime is over;
// errs.Invalid for a wrong (or replayed) code while attempts remain, its
// message saying how many; errs.RateLimited when the attempts are used up.
func (s *Service) Verify(ctx context.Context, userID, purpose, ref, code string) (Challenge, error) {
	const op = "twofactor.Verify"
	code = normalizeCode(code)
	var (
		c       Challenge
		outcome error
	)
	err := s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		outcome = nil
		got, err := s.challenge(ctx, tx.QueryRow, userID, purpose, ref, tx.ForUpdate())
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, op, "no such challenge")
		}
		if err != nil {
			return err
		}
		c = got
		now := s.d.Clock.Now()
		switch c.State {
		case StateVerified:
			return errs.E(errs.Conflict, op, "the code was already accepted")
		case StateExpired:
			return errs.E(errs.Expired, op, "the code has expired")
		case StateExhausted:
			return errs.E(errs.RateLimited, op, "too many wrong codes")
		}
		if !now.Before(c.ExpiresAt) {
			c.State = StateExpired
			outcome = errs.E(errs.Expired, op, "the code has expired")
			_, err := tx.Exec(ctx, `UPDATE twofactor_challenges SET state = ? WHERE id = ?`, c.State, c.ID)
			return err
		}
		ok, replay, err := s.checkCode(ctx, tx, c, code, now)
		if err != nil {
			return err
		}
		if ok {
			c.State = StateVerified
			_, err := tx.Exec(ctx, `UPDATE twofactor_challenges SET state = ? WHERE id = ?`, c.State, c.ID)
			return err
		}
		c.AttemptsLeft--
		if c.AttemptsLeft <= 0 {
			c.AttemptsLeft, c.State = 0, StateExhausted
			outcome = errs.E(errs.RateLimited, op, "too many wrong codes")
		} else {
			what := "the code is not right"
			if replay {
				what = "this code was already used; wait for the next one"
			}
			outcome = errs.Ef(errs.Invalid, op, "%s; %d attempts left", what, c.AttemptsLeft)
		}
		_, err = tx.Exec(ctx, `UPDATE twofactor_challenges SET attempts_left = ?, state = ? WHERE id = ?`,
			c.AttemptsLeft, c.State, c.ID)
		return err
	})
	if err != nil {
		return c, errs.Wrap(op, err)
	}
	return c, outcome
}

// checkCode compares code with the challenge's. For Google it checks the
// TOTP code and moves the replay guard forward in tx; replay is true when the
// code was right but already used.
func (s *Service) checkCode(ctx context.Context, tx *sqlstore.Tx, c Challenge, code string, now time.Time) (ok, replay bool, err error) {
	if c.Recipient.Method != Google {
		var hash string
		if err := tx.QueryRow(ctx, `SELECT code_hash FROM twofactor_challenges WHERE id = ?`, c.ID).Scan(&hash); err != nil {
			return false, false, err
		}
		return hash != "" && sameHash(hash, hashCode(c.ID, code)), false, nil
	}
	e, err := s.load(ctx, tx.QueryRow, c.UserID, tx.ForUpdate())
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (e.Method != Google || !e.TOTPConfirmed)) {
		return false, false, errs.E(errs.Conflict, "twofactor.checkCode", "google is no longer the user's method")
	}
	if err != nil {
		return false, false, err
	}
	return s.acceptTOTP(ctx, tx, c.UserID, e.secret, e.lastStep, code, now)
}
