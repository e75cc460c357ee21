package compliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Screen implements funding.Screener. It runs in funding's transaction
// and records the check in the user's activity.
//
// At funding.StageRequest (a deposit started, a withdrawal requested) it
// applies, in order, the KYC gate (checkKYC), the limits of the user's KYC
// level (counted in c.Amount's currency: a deposit's payment currency, a
// withdrawal's account currency) and then the fraud rules that apply at
// that stage. At funding.StagePaid (a deposit's money arrived) it applies
// only fraud rules: the money is there, so nothing is refused.
//
// The user's level and country are the stored profile's (or the
// defaults), not c.Customer's. A rule that holds the transaction is
// recorded in the holds (see Holds) and named in the verdict; when
// several hold it, the verdict names the first and explains all.
//
// It returns errs.Forbidden when the user's KYC level does not allow the
// transaction, errs.Insufficient when it would exceed a limit (both with a
// message the customer can read), errs.Invalid for a check without a kind,
// stage, user, id or positive amount, and a wrapped database error.
func (s *Service) Screen(ctx context.Context, tx *sqlstore.Tx, c funding.Check) (funding.Verdict, error) {
	const op = "compliance.Screen"
	switch {
	case c.Kind != funding.KindDeposit && c.Kind != funding.KindWithdrawal:
		return funding.Verdict{}, errs.Ef(errs.Invalid, op, "unknown kind %q", c.Kind)
	case c.Stage != funding.StageRequest && c.Stage != funding.StagePaid:
		return funding.Verdict{}, errs.Ef(errs.Invalid, op, "unknown stage %q", c.Stage)
	case c.Stage == funding.StagePaid && c.Kind != funding.KindDeposit:
		return funding.Verdict{}, errs.E(errs.Invalid, op, "only deposits are screened when paid")
	case c.ID == "" || c.Customer.UserID == "":
		return funding.Verdict{}, errs.E(errs.Invalid, op, "a check needs the transaction's id and the user")
	case c.Amount.Currency().Code == "" || c.Amount.Sign() <= 0:
		return funding.Verdict{}, errs.E(errs.Invalid, op, "a check needs a positive amount")
	}
	now := c.At.UTC()
	if c.At.IsZero() {
		now = s.now()
	}
	if err := lockUser(ctx, tx, c.Customer.UserID, now); err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
	}
	p, err := s.profileFrom(ctx, tx, c.Customer.UserID)
	if err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
	}
	if c.Stage == funding.StageRequest {
		if err := s.checkKYC(ctx, tx, c, p.Level); err != nil {
			return funding.Verdict{}, err
		}
		if err := s.checkLimits(ctx, tx, c, p.Level, now); err != nil {
			return funding.Verdict{}, err
		}
	}
	if err := recordCheck(ctx, tx, c, now); err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
	}
	rs, err := loadRules(ctx, tx, "")
	if err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
	}
	var held []finding
	for _, r := range rs {
		if !r.Enabled || !applies(r.Name, c) {
			continue
		}
		f, err := s.evaluate(ctx, tx, r, c, p, now)
		if err != nil {
			return funding.Verdict{}, errs.Wrap(op, err)
		}
		if f.explanation != "" {
			held = append(held, f)
		}
	}
	if len(held) == 0 {
		return funding.Verdict{}, nil
	}
	v, err := s.recordHold(ctx, tx, c, held, now)
	if err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
	}
	return v, nil
}

// lockUser takes the user's row lock, so that two screenings of one user
// run one after the other and cannot both fit under the same limit.
func lockUser(ctx context.Context, tx *sqlstore.Tx, userID string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO compliance_users (user_id, created_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING`,
		userID, sqlstore.Micros(now)); err != nil {
		return err
	}
	var id string
	return tx.QueryRow(ctx, `SELECT user_id FROM compliance_users WHERE user_id = ?`+tx.ForUpdate(), userID).Scan(&id)
}

// applies reports whether rule is applied to c:
//
//	rule               deposit request   deposit paid   withdrawal request
//	velocity           yes                              yes
//	new_destination                                     yes
//	method_switch                                       yes
//	card_country                         yes
//	declined_attempts  yes               yes
func applies(rule string, c funding.Check) bool {
	dep, wd := c.Kind == funding.KindDeposit, c.Kind == funding.KindWithdrawal
	req, paid := c.Stage == funding.StageRequest, c.Stage == funding.StagePaid
	switch rule {
	case RuleVelocity:
		return req
	case RuleNewDestination, RuleMethodSwitch:
		return wd
	case RuleCardCountry:
		return dep && paid
	case RuleDeclinedAttempts:
		return dep
	}
	return false
}

// finding is a rule that holds a transaction and why.
type finding struct {
	rule        string
	explanation string
}

// evaluate applies one rule to c. The finding's explanation is empty when
// the rule does not hold it.
func (s *Service) evaluate(ctx context.Context, tx *sqlstore.Tx, r Rule, c funding.Check, p Profile, now time.Time) (finding, error) {
	f := finding{rule: r.Name}
	var err error
	switch r.Name {
	case RuleVelocity:
		f.explanation, err = s.velocity(ctx, tx, r, c, now)
	case RuleNewDestination:
		f.explanation, err = newDestination(ctx, tx, c)
	case RuleMethodSwitch:
		f.explanation, err = s.methodSwitch(ctx, tx, r, c, now)
	case RuleCardCountry:
		card, home := strings.ToUpper(strings.TrimSpace(c.CardCountry)), strings.ToUpper(p.Country)
		if card != "" && home != "" && card != home {
			f.explanation = fmt.Sprintf("Card country: the card that paid %s was issued in %s, but the user's country is %s.",
				formatAmount(c.Amount), card, home)
		}
	case RuleDeclinedAttempts:
		f.explanation, err = declinedAttempts(ctx, tx, r, c, now)
	}
	return f, err
}

func (s *Service) velocity(ctx context.Context, tx *sqlstore.Tx, r Rule, c funding.Check, now time.Time) (string, error) {
	since := sqlstore.Micros(now.Add(-r.Window))
	var n, total int64
	if err := tx.QueryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN currency = ? THEN amount_minor ELSE 0 END), 0) AS BIGINT)
		FROM compliance_activity WHERE user_id = ? AND kind = ? AND confirmed = 1 AND id <> ? AND requested_at > ?`,
		c.Amount.Currency().Code, c.Customer.UserID, c.Kind, c.ID, since).Scan(&n, &total); err != nil {
		return "", err
	}
	n++
	window := formatDuration(r.Window)
	if r.Count > 0 && n > int64(r.Count) {
		return fmt.Sprintf("Velocity: this is the user's %s %s within %s; the rule allows %d.", ordinal(n), c.Kind, window, r.Count), nil
	}
	allowed, ok := r.Amounts[c.Amount.Currency().Code]
	if !ok {
		return "", nil
	}
	sum, err := money.New(total, c.Amount.Currency()).Add(c.Amount)
	if err != nil {
		return "", err
	}
	if sum.Minor() > allowed.Minor() {
		return fmt.Sprintf("Velocity: with this %s of %s the user's %ss within %s come to %s (%s); the rule allows %s.",
			c.Kind, formatAmount(c.Amount), c.Kind, window, formatAmount(sum), plural(n, c.Kind), formatAmount(allowed)), nil
	}
	return "", nil
}

func newDestination(ctx context.Context, tx *sqlstore.Tx, c funding.Check) (string, error) {
	if c.Destination == "" {
		return "", nil
	}
	var used, others int64
	if err := tx.QueryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN destination = ? THEN 1 ELSE 0 END), 0),
			COUNT(DISTINCT destination)
		FROM compliance_activity WHERE user_id = ? AND destination <> '' AND outcome = 'completed' AND confirmed = 1 AND id <> ?`,
		c.Destination, c.Customer.UserID, c.ID).Scan(&used, &others); err != nil {
		return "", err
	}
	if used > 0 {
		return "", nil
	}
	known := "the user has no other destination with a completed payment"
	if others > 0 {
		known = fmt.Sprintf("the user's completed payments used %s", plural(others, "other destination"))
	}
	return fmt.Sprintf("New destination: first withdrawal to %s (%s); no earlier completed withdrawal or deposit of the user used it.",
		maskDestination(c.Destination), known), nil
}

func (s *Service) methodSwitch(ctx context.Context, tx *sqlstore.Tx, r Rule, c funding.Check, now time.Time) (string, error) {
	var id, method, currency string
	var amount, paidAt int64
	err := tx.QueryRow(ctx, `SELECT id, method_id, currency, amount_minor, paid_at FROM compliance_activity
		WHERE user_id = ? AND kind = ? AND confirmed = 1 AND paid_at > ? AND method_id <> ? AND method_id <> ''
		ORDER BY paid_at DESC, id DESC LIMIT 1`,
		c.Customer.UserID, funding.KindDeposit, sqlstore.Micros(now.Add(-r.Window)), c.MethodID).Scan(&id, &method, &currency, &amount, &paidAt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	what := id
	if cur, err := money.LookupCurrency(currency); err == nil {
		what = formatAmount(money.New(amount, cur)) + " (" + id + ")"
	}
	since := now.Sub(sqlstore.FromMicros(paidAt)).Truncate(time.Minute)
	return fmt.Sprintf("Method switch: withdrawal by %s requested %s after a deposit of %s paid by %s; the rule holds withdrawals within %s of a deposit by another method.",
		s.methodName(c.MethodID), formatElapsed(since), what, s.methodName(method), formatDuration(r.Window)), nil
}

// formatElapsed writes a time since an event: "45 minutes", "3 hours 10
// minutes", "less than a minute".
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	h, m := int64(d/time.Hour), int64((d%time.Hour)/time.Minute)
	switch {
	case h == 0:
		return plural(m, "minute")
	case m == 0:
		return plural(h, "hour")
	}
	return plural(h, "hour") + " " + plural(m, "minute")
}

func declinedAttempts(ctx context.Context, tx *sqlstore.Tx, r Rule, c funding.Check, now time.Time) (string, error) {
	var n int64
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM compliance_activity
		WHERE user_id = ? AND kind = ? AND confirmed = 1 AND id <> ? AND declined_at > ?`,
		c.Customer.UserID, funding.KindDeposit, c.ID, sqlstore.Micros(now.Add(-r.Window))).Scan(&n); err != nil {
		return "", err
	}
	if n < int64(r.Count) {
		return "", nil
	}
	return fmt.Sprintf("Declined attempts: the user had %s declined or failed within %s before this one; the rule holds the next deposit after %d or more.",
		plural(n, "deposit"), formatDuration(r.Window), r.Count), nil
}

// recordCheck writes what the check tells about the transaction to the
// activity: a new row is not counted until funding's event confirms it
// (a request that loses a race to an identical one never is).
func recordCheck(ctx context.Context, tx *sqlstore.Tx, c funding.Check, now time.Time) error {
	var paidAt sql.NullInt64
	if c.Stage == funding.StagePaid {
		paidAt = sql.NullInt64{Int64: sqlstore.Micros(now), Valid: true}
	}
	_, err := tx.Exec(ctx, `INSERT INTO compliance_activity (id, user_id, kind, method_id, method_kind, currency, amount_minor, login,
		destination, card_country, requested_at, paid_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			method_kind = CASE WHEN excluded.method_kind = '' THEN compliance_activity.method_kind ELSE excluded.method_kind END,
			destination = CASE WHEN excluded.destination = '' THEN compliance_activity.destination ELSE excluded.destination END,
			card_country = CASE WHEN excluded.card_country = '' THEN compliance_activity.card_country ELSE excluded.card_country END,
			paid_at = COALESCE(compliance_activity.paid_at, excluded.paid_at),
			updated_at = excluded.updated_at`,
		c.ID, c.Customer.UserID, c.Kind, c.MethodID, c.MethodKind, c.Amount.Currency().Code, c.Amount.Minor(), c.Login,
		c.Destination, strings.ToUpper(c.CardCountry), sqlstore.Micros(now), paidAt, sqlstore.Micros(now))
	return err
}

// outcome is how a status counts for the limits: completed, failed (the
// money did not move or came back) or open (still in flight, counted).
func outcome(status string) string {
	switch status {
	case "completed":
		return "completed"
	case "declined", "failed", "expired", "reversed", "rejected", "returned", "refunded", "cancelled":
		return "failed"
	}
	return "open"
}

// OnFundingEvent is a funding.Hook: it records every status change of a
// deposit or withdrawal in the user's activity (requests, payments,
// completions, declines) and moves the transaction's hold, if any, along
// the review queue (see Holds). Events of other kinds or without a user
// are ignored. It returns a wrapped database error, which rolls funding's
// change back.
func (s *Service) OnFundingEvent(ctx context.Context, tx *sqlstore.Tx, e funding.Event) error {
	const op = "compliance.OnFundingEvent"
	if (e.Kind != funding.KindDeposit && e.Kind != funding.KindWithdrawal) || e.ID == "" || e.UserID == "" {
		return nil
	}
	at := e.At.UTC()
	if e.At.IsZero() {
		at = s.now()
	}
	ts := sqlstore.Micros(at)
	var paidAt, completedAt, declinedAt sql.NullInt64
	switch {
	case e.Kind == funding.KindDeposit && (e.To == "paid" || e.To == "crediting" || e.To == "completed"):
		paidAt = sql.NullInt64{Int64: ts, Valid: true}
	}
	if e.To == "completed" {
		completedAt = sql.NullInt64{Int64: ts, Valid: true}
	}
	if e.Kind == funding.KindDeposit && (e.To == "declined" || e.To == "failed") {
		declinedAt = sql.NullInt64{Int64: ts, Valid: true}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO compliance_activity (id, user_id, kind, method_id, currency, amount_minor, login, status, outcome,
		confirmed, requested_at, paid_at, completed_at, declined_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			method_id = CASE WHEN excluded.method_id = '' THEN compliance_activity.method_id ELSE excluded.method_id END,
			currency = CASE WHEN excluded.currency = '' THEN compliance_activity.currency ELSE excluded.currency END,
			amount_minor = CASE WHEN excluded.currency = '' THEN compliance_activity.amount_minor ELSE excluded.amount_minor END,
			status = excluded.status, outcome = excluded.outcome, confirmed = 1,
			paid_at = COALESCE(compliance_activity.paid_at, excluded.paid_at),
			completed_at = COALESCE(compliance_activity.completed_at, excluded.completed_at),
			declined_at = COALESCE(compliance_activity.declined_at, excluded.declined_at),
			updated_at = excluded.updated_at`,
		e.ID, e.UserID, e.Kind, e.MethodID, e.Amount.Currency().Code, e.Amount.Minor(), e.Login, e.To, outcome(e.To),
		ts, paidAt, completedAt, declinedAt, ts); err != nil {
		return errs.Wrap(op, err)
	}
	return errs.Wrap(op, moveHold(ctx, tx, e, ts))
}
