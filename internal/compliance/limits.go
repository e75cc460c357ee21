package compliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// AnyMethod in a limit's Method makes it count every payment method
// together.
const AnyMethod = "*"

// LimitKey names a limit: the direction (funding.KindDeposit or
// funding.KindWithdrawal), a payment method id or AnyMethod, a currency
// code and the KYC level it applies from.
type LimitKey struct {
	Direction string
	Method    string
	Currency  string
	KYCLevel  int
}

// String names the key as the audit trail's subject does:
// "deposit/card/USD/level 1".
func (k LimitKey) String() string {
	return fmt.Sprintf("%s/%s/%s/level %d", k.Direction, k.Method, k.Currency, k.KYCLevel)
}

// Limit caps what one user moves per calendar day and per calendar month
// in one direction and currency. The limits of a level apply to users at
// that level and above, up to the next level that has limits of its own
// for the same direction and currency (which then replace them all). A
// limit with Method AnyMethod counts every method together; one with a
// method id counts only that method (a user may be bound by both).
//
// A zero amount or count means no cap of that kind.
type Limit struct {
	LimitKey
	PerDay, PerMonth           money.Amount
	CountPerDay, CountPerMonth int
	UpdatedBy                  string
	UpdatedAt                  time.Time
}

func (s *Service) checkKey(op string, k LimitKey) (money.Currency, error) {
	if k.Direction != funding.KindDeposit && k.Direction != funding.KindWithdrawal {
		return money.Currency{}, errs.Ef(errs.Invalid, op, "direction %q must be %q or %q", k.Direction, funding.KindDeposit, funding.KindWithdrawal)
	}
	if k.Method == "" {
		return money.Currency{}, errs.Ef(errs.Invalid, op, "method must be a payment method id or %q for any", AnyMethod)
	}
	if k.Method != AnyMethod && s.opt.Methods != nil {
		if _, err := s.opt.Methods.Method(k.Method); err != nil {
			return money.Currency{}, errs.Ef(errs.Invalid, op, "payment method %q is not configured", k.Method)
		}
	}
	if !validLevel(k.KYCLevel) {
		return money.Currency{}, errs.Ef(errs.Invalid, op, "the KYC level must be between 0 and %d", MaxLevel)
	}
	cur, err := money.LookupCurrency(k.Currency)
	if err != nil {
		return money.Currency{}, errs.Wrap(op, err)
	}
	return cur, nil
}

// SetLimit creates or replaces a limit and writes an audit record
// ("limit.changed", subject "limit:<direction>/<method>/<currency>/level
// <n>") with the new and the previous values, in one transaction.
//
// It returns errs.Invalid for an empty actor, an unknown direction,
// currency or (with Options.Methods) method, a level outside 0..MaxLevel,
// an amount in another currency or negative, a negative count, a monthly
// cap below the daily one, or a limit without any cap; and the audit
// recorder's errors.
func (s *Service) SetLimit(ctx context.Context, actor string, l Limit) error {
	const op = "compliance.SetLimit"
	if actor == "" {
		return errs.E(errs.Invalid, op, "an actor is required")
	}
	cur, err := s.checkKey(op, l.LimitKey)
	if err != nil {
		return err
	}
	var minor [2]int64
	for i, a := range []money.Amount{l.PerDay, l.PerMonth} {
		switch {
		case a.IsZero():
		case a.Currency() != cur:
			return errs.Ef(errs.Invalid, op, "the limit's amounts must be in %s, not %s", cur.Code, a.Currency().Code)
		case a.IsNegative():
			return errs.E(errs.Invalid, op, "the limit's amounts must not be negative")
		}
		minor[i] = a.Minor()
	}
	switch {
	case l.CountPerDay < 0 || l.CountPerMonth < 0:
		return errs.E(errs.Invalid, op, "the limit's counts must not be negative")
	case minor[0] > 0 && minor[1] > 0 && minor[1] < minor[0]:
		return errs.E(errs.Invalid, op, "the monthly amount must not be below the daily amount")
	case l.CountPerDay > 0 && l.CountPerMonth > 0 && l.CountPerMonth < l.CountPerDay:
		return errs.E(errs.Invalid, op, "the monthly count must not be below the daily count")
	case minor[0] == 0 && minor[1] == 0 && l.CountPerDay == 0 && l.CountPerMonth == 0:
		return errs.E(errs.Invalid, op, "a limit needs at least one cap; delete it to remove all")
	}
	now := s.now()
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		old, err := s.limit(ctx, tx, l.LimitKey, tx.ForUpdate())
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		had := err == nil
		if _, err := tx.Exec(ctx, `INSERT INTO compliance_limits (direction, method, currency, kyc_level, per_day_minor, per_month_minor,
			count_per_day, count_per_month, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (direction, method, currency, kyc_level) DO UPDATE SET per_day_minor = excluded.per_day_minor,
				per_month_minor = excluded.per_month_minor, count_per_day = excluded.count_per_day,
				count_per_month = excluded.count_per_month, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			l.Direction, l.Method, l.Currency, l.KYCLevel, minor[0], minor[1], l.CountPerDay, l.CountPerMonth, actor, sqlstore.Micros(now)); err != nil {
			return err
		}
		l.PerDay, l.PerMonth = money.New(minor[0], cur), money.New(minor[1], cur)
		detail := limitDetail("", l)
		if had {
			for k, v := range limitDetail("previous_", old) {
				detail[k] = v
			}
		}
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "limit.changed", Subject: "limit:" + l.LimitKey.String(), Detail: detail})
	})
	return errs.Wrap(op, err)
}

func limitDetail(prefix string, l Limit) map[string]string {
	return map[string]string{
		prefix + "per_day":         l.PerDay.Decimal(),
		prefix + "per_month":       l.PerMonth.Decimal(),
		prefix + "count_per_day":   strconv.Itoa(l.CountPerDay),
		prefix + "count_per_month": strconv.Itoa(l.CountPerMonth),
	}
}

// DeleteLimit removes a limit and writes an audit record ("limit.changed"
// with deleted=true and the removed values). It returns errs.Invalid for
// an empty actor or a malformed key, errs.NotFound when there is no such
// limit, and the audit recorder's errors.
func (s *Service) DeleteLimit(ctx context.Context, actor string, k LimitKey) error {
	const op = "compliance.DeleteLimit"
	if actor == "" {
		return errs.E(errs.Invalid, op, "an actor is required")
	}
	if _, err := s.checkKey(op, k); err != nil {
		return err
	}
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		old, err := s.limit(ctx, tx, k, tx.ForUpdate())
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM compliance_limits WHERE direction = ? AND method = ? AND currency = ? AND kyc_level = ?`,
			k.Direction, k.Method, k.Currency, k.KYCLevel); err != nil {
			return err
		}
		detail := limitDetail("previous_", old)
		detail["deleted"] = "true"
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "limit.changed", Subject: "limit:" + k.String(), Detail: detail})
	})
	return errs.Wrap(op, err)
}

const limitColumns = `direction, method, currency, kyc_level, per_day_minor, per_month_minor, count_per_day, count_per_month, updated_by, updated_at`

func scanLimit(scan func(...any) error) (Limit, error) {
	var l Limit
	var day, month, at int64
	if err := scan(&l.Direction, &l.Method, &l.Currency, &l.KYCLevel, &day, &month, &l.CountPerDay, &l.CountPerMonth, &l.UpdatedBy, &at); err != nil {
		return Limit{}, err
	}
	cur, err := money.LookupCurrency(l.Currency)
	if err != nil {
		return Limit{}, err
	}
	if l.PerDay, err = money.FromMinor(day, cur); err != nil {
		return Limit{}, err
	}
	if l.PerMonth, err = money.FromMinor(month, cur); err != nil {
		return Limit{}, err
	}
	l.UpdatedAt = sqlstore.FromMicros(at)
	return l, nil
}

func (s *Service) limit(ctx context.Context, q querier, k LimitKey, lock string) (Limit, error) {
	row := q.QueryRow(ctx, `SELECT `+limitColumns+` FROM compliance_limits
		WHERE direction = ? AND method = ? AND currency = ? AND kyc_level = ?`+lock, k.Direction, k.Method, k.Currency, k.KYCLevel)
	l, err := scanLimit(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Limit{}, errs.Ef(errs.NotFound, "compliance.limit", "there is no limit %s", k)
	}
	return l, errs.Wrap("compliance.limit", err)
}

// Limits returns every configured limit, by direction, currency, method
// and level. It returns a wrapped database error if they cannot be read.
func (s *Service) Limits(ctx context.Context) ([]Limit, error) {
	const op = "compliance.Limits"
	out, err := s.limitsWhere(ctx, s.db, "1 = 1")
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	slices.SortFunc(out, func(a, b Limit) int {
		return strings.Compare(fmt.Sprintf("%s %s %s %d", a.Direction, a.Currency, a.Method, a.KYCLevel),
			fmt.Sprintf("%s %s %s %d", b.Direction, b.Currency, b.Method, b.KYCLevel))
	})
	return out, nil
}

func (s *Service) limitsWhere(ctx context.Context, q querier, where string, args ...any) ([]Limit, error) {
	rows, err := q.Query(ctx, `SELECT `+limitColumns+` FROM compliance_limits WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Limit
	for rows.Next() {
		l, err := scanLimit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// applicableLimits are the limits that bind a user at level for a
// transaction of kind by method in currency: of the highest level not above
// the user's that has limits for kind and currency, the method's own limit
// and the AnyMethod one (method first).
func (s *Service) applicableLimits(ctx context.Context, tx *sqlstore.Tx, kind, method, currency string, level int) ([]Limit, error) {
	all, err := s.limitsWhere(ctx, tx, `direction = ? AND currency = ? AND kyc_level <= ?`, kind, currency, level)
	if err != nil {
		return nil, err
	}
	top := -1
	for _, l := range all {
		top = max(top, l.KYCLevel)
	}
	var out []Limit
	for _, m := range []string{method, AnyMethod} {
		for _, l := range all {
			if l.KYCLevel == top && l.Method == m {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// usage is what a user has moved in a period: the transactions of one kind
// and currency (and method, unless AnyMethod) requested since a time that
// are completed or still in flight, without the one being screened.
type usage struct {
	count int64
	total money.Amount
}

func usageSince(ctx context.Context, tx *sqlstore.Tx, c funding.Check, method string, since time.Time) (usage, error) {
	q := `SELECT COUNT(*), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM compliance_activity
		WHERE user_id = ? AND kind = ? AND currency = ? AND confirmed = 1 AND outcome IN ('open', 'completed')
		AND id <> ? AND requested_at >= ?`
	args := []any{c.Customer.UserID, c.Kind, c.Amount.Currency().Code, c.ID, sqlstore.Micros(since)}
	if method != AnyMethod {
		q += ` AND method_id = ?`
		args = append(args, method)
	}
	var u usage
	var total int64
	if err := tx.QueryRow(ctx, q, args...).Scan(&u.count, &total); err != nil {
		return usage{}, errs.Wrap("compliance.usage", err)
	}
	a, err := money.FromMinor(total, c.Amount.Currency())
	if err != nil {
		return usage{}, errs.Wrap("compliance.usage", err)
	}
	u.total = a
	return u, nil
}

// checkLimits refuses c with errs.Insufficient when it would take the user
// above a daily or monthly limit. The checks run in order: the method's
// own limit before the any-method one, the day before the month, the
// amount before the count.
func (s *Service) checkLimits(ctx context.Context, tx *sqlstore.Tx, c funding.Check, level int, now time.Time) error {
	const op = "compliance.Screen"
	limits, err := s.applicableLimits(ctx, tx, c.Kind, c.MethodID, c.Amount.Currency().Code, level)
	if err != nil {
		return errs.Wrap(op, err)
	}
	for _, l := range limits {
		scope := ""
		if l.Method != AnyMethod {
			scope = " for " + s.methodName(l.Method)
		}
		for _, p := range []struct {
			name, left, again string
			since             time.Time
			cap               money.Amount
			count             int
		}{
			{"daily", "today", "tomorrow", s.dayStart(now), l.PerDay, l.CountPerDay},
			{"monthly", "this month", "next month", s.monthStart(now), l.PerMonth, l.CountPerMonth},
		} {
			if p.cap.IsZero() && p.count == 0 {
				continue
			}
			u, err := usageSince(ctx, tx, c, l.Method, p.since)
			if err != nil {
				return errs.Wrap(op, err)
			}
			if !p.cap.IsZero() {
				after, err := u.total.Add(c.Amount)
				if err != nil {
					return errs.Wrap(op, err)
				}
				if after.Minor() > p.cap.Minor() {
					left := money.Zero(p.cap.Currency())
					if u.total.Minor() < p.cap.Minor() {
						left = money.New(p.cap.Minor()-u.total.Minor(), p.cap.Currency())
					}
					return errs.Ef(errs.Insufficient, op, "This %s would exceed your %s limit%s of %s; %s left %s.",
						c.Kind, p.name, scope, formatAmount(p.cap), formatAmount(left), p.left)
				}
			}
			if p.count > 0 && u.count+1 > int64(p.count) {
				return errs.Ef(errs.Insufficient, op, "This %s would exceed your %s limit%s of %s; try again %s.",
					c.Kind, p.name, scope, plural(int64(p.count), c.Kind), p.again)
			}
		}
	}
	return nil
}

// checkKYC refuses c with errs.Forbidden when the user's KYC level does not
// allow it: a withdrawal below Options.WithdrawalKYCLevel, or a deposit of
// an unverified user above the lifetime allowance.
func (s *Service) checkKYC(ctx context.Context, tx *sqlstore.Tx, c funding.Check, level int) error {
	const op = "compliance.Screen"
	switch c.Kind {
	case funding.KindWithdrawal:
		if level < s.opt.WithdrawalKYCLevel {
			return errs.Ef(errs.Forbidden, op, "Verify your identity to withdraw: withdrawals need verification level %d and your account is at level %d.",
				s.opt.WithdrawalKYCLevel, level)
		}
	case funding.KindDeposit:
		if level >= s.opt.VerifiedLevel || len(s.opt.UnverifiedDepositAllowance) == 0 {
			return nil
		}
		cur := c.Amount.Currency()
		allowance, ok := s.opt.UnverifiedDepositAllowance[cur.Code]
		if !ok || allowance.IsZero() {
			return errs.Ef(errs.Forbidden, op, "Verify your identity to deposit in %s.", cur.Code)
		}
		u, err := usageSince(ctx, tx, c, AnyMethod, time.Unix(0, 0))
		if err != nil {
			return errs.Wrap(op, err)
		}
		after, err := u.total.Add(c.Amount)
		if err != nil {
			return errs.Wrap(op, err)
		}
		if after.Minor() > allowance.Minor() {
			left := "nothing is left"
			if u.total.Minor() < allowance.Minor() {
				left = formatAmount(money.New(allowance.Minor()-u.total.Minor(), cur)) + " is left"
			}
			return errs.Ef(errs.Forbidden, op, "Verify your identity to deposit more: until you are verified you can deposit up to %s in total, and %s.",
				formatAmount(allowance), left)
		}
	}
	return nil
}
