package twofactor

import (
	"context"
	"database/sql"
	"errors"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// PurposeLogin is the purpose of login challenges.
const PurposeLogin = "login"

// LoginFactor adapts the service to a login flow that asks only whether a
// user must give a code and whether a code is right (clientauth's
// SecondFactor). For e-mail and SMS, Enrolled sends the code when no login
// code is pending, so the client's first login attempt (without a code)
// triggers the delivery and the second one carries the code.
type LoginFactor struct {
	Service *Service
	// Template names the login code message; "Login_Confirm" when empty.
	Template string
}

// Enrolled reports whether the user has a second factor and, for e-mail or
// SMS, makes sure a login code is on its way. It returns errors of the
// database only; a failed delivery shows as a code that never arrives (the
// next login attempt after the cool-down sends another).
func (l LoginFactor) Enrolled(ctx context.Context, userID string) (bool, error) {
	const op = "twofactor.LoginFactor.Enrolled"
	e, ok, err := l.Service.Enrolment(ctx, userID)
	if err != nil || !ok {
		return false, errs.Wrap(op, err)
	}
	if e.Method == Google {
		return true, nil
	}
	c, found, err := l.Service.pendingLogin(ctx, userID)
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	switch {
	case !found:
		if _, err := l.start(ctx, userID); err != nil {
			return false, errs.Wrap(op, err)
		}
	case !c.Sent:
		// The last delivery failed: try again (no cool-down applies).
		if _, err := l.Service.Resend(ctx, userID, PurposeLogin, c.Ref, l.template()); err != nil && errs.CodeOf(err) != errs.RateLimited {
			return false, errs.Wrap(op, err)
		}
	}
	return true, nil
}

// Verify checks a login code. It returns nil for a right code,
// errs.Unauthorized for a wrong or already used one (or when no code is
// pending), errs.Expired for an expired one and errs.RateLimited when too
// many attempts failed.
func (l LoginFactor) Verify(ctx context.Context, userID, code string) error {
	const op = "twofactor.LoginFactor.Verify"
	c, found, err := l.Service.pendingLogin(ctx, userID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if !found {
		e, ok, err := l.Service.Enrolment(ctx, userID)
		if err != nil {
			return errs.Wrap(op, err)
		}
		if !ok || e.Method != Google {
			return errs.E(errs.Unauthorized, op, "no login code is pending; log in without a code to get one")
		}
		if c, err = l.start(ctx, userID); err != nil {
			return errs.Wrap(op, err)
		}
	}
	_, err = l.Service.Verify(ctx, userID, PurposeLogin, c.Ref, code)
	switch errs.CodeOf(err) {
	case "":
		return nil
	case errs.Invalid, errs.Conflict, errs.NotFound:
		return errs.E(errs.Unauthorized, op, errs.MessageOf(err))
	default:
		return errs.Wrap(op, err)
	}
}

func (l LoginFactor) template() string {
	if l.Template == "" {
		return "Login_Confirm"
	}
	return l.Template
}

func (l LoginFactor) start(ctx context.Context, userID string) (Challenge, error) {
	return l.Service.Start(ctx, ChallengeRequest{UserID: userID, Purpose: PurposeLogin,
		Ref: uuid.Must(uuid.NewV7()).String(), Template: l.template()})
}

// pendingLogin returns the newest login challenge of the user that is
// pending and not expired.
func (s *Service) pendingLogin(ctx context.Context, userID string) (Challenge, bool, error) {
	var ref string
	err := s.d.DB.QueryRow(ctx, `SELECT ref FROM twofactor_challenges WHERE user_id = ? AND purpose = ? AND state = ?
		AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1`,
		userID, PurposeLogin, StatePending, sqlstore.Micros(s.d.Clock.Now())).Scan(&ref)
	if errors.Is(err, sql.ErrNoRows) {
		return Challenge{}, false, nil
	}
	if err != nil {
		return Challenge{}, false, err
	}
	c, err := s.Challenge(ctx, userID, PurposeLogin, ref)
	return c, err == nil, err
}
