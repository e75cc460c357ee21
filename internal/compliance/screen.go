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
	if err := flushActivity(ctx, tx); err != nil {
		return funding.Verdict{}, errs.Wrap(op, err)
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
	recordCheck(tx, c, sqlstore.Micros(now))
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
// run one after the other and cannot both fit under the same limit: one
// upsert that creates the row or, when it exists, updates it to itself,
// which locks it until the transaction ends (on SQLite the transaction
// holds the database's write lock anyway).
func lockUser(ctx context.Context, tx *sqlstore.Tx, userID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO compliance_users (user_id, created_at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET created_at = compliance_users.created_at`, userID, sqlstore.Micros(now))
	return err
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
