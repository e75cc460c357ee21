package reports

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// MaxDashboardDays bounds the period of a dashboard.
const MaxDashboardDays = 366

// DashboardQuery chooses the period of a dashboard, From ≤ t < To, and
// optionally one currency.
type DashboardQuery struct {
	From, To time.Time
	// Currency, when set (ISO 4217), keeps only trading accounts in that
	// currency: the daily figures, the approvals, the declines (by the
	// payment's account currency) and the funnel (screens opened for an
	// account in it, deposits into such accounts).
	Currency string
}

// Dashboard is the back office's overview of a period.
type Dashboard struct {
	From, To time.Time
	// Currencies are the account currencies of the daily figures, sorted:
	// the query's currency, or every currency with a completed deposit or
	// withdrawal in the period.
	Currencies []string
	// Days has one entry per UTC day that overlaps the period, oldest
	// first, even days without activity.
	Days      []Day
	Approvals ApprovalTimes
	// Declines counts declined and failed payments by decision code, most
	// frequent first.
	Declines []DeclineCount
	Funnel   Funnel
}

// Day is one UTC day's completed deposits and withdrawals, one entry per
// Dashboard.Currencies in that order.
type Day struct {
	Date   time.Time // midnight UTC
	Totals []DayTotals
}

// DayTotals are one day's figures in one account currency. A deposit
// counts on the day it completed with what it credited to the trading
// account; a withdrawal on the day it completed with what left the trading
// account.
type DayTotals struct {
	Currency    string
	Deposits    Tally
	Withdrawals Tally
}

// Tally is a count and an exact sum.
type Tally struct {
	Count int64
	Sum   money.Amount
}

// ApprovalTimes measure how long withdrawals waited for an operator: from
// entering awaiting_approval to the decision (approved or rejected), for
// the decisions taken in the period. Median and P90 are nearest-rank
// percentiles; both are zero when nothing was decided.
type ApprovalTimes struct {
	Decided, Approved, Rejected int64
	Median, P90                 time.Duration
}

// DeclineCount is how many payments of one direction ("deposit" or
// "withdrawal") ended declined or failed with one code in the period (by
// the instant they ended). Code is the provider's decline code as
// payments recorded it, "unspecified" when there was none.
type DeclineCount struct {
	Direction string
	Code      string
	Count     int64
}

// The steps of the deposit funnel.
const (
	StepScreenOpened = "screen opened"
	StepMethodChosen = "method chosen"
	StepPaid         = "paid"
	StepCredited     = "credited"
)

// Funnel follows deposits from the cashier screen to the trading account.
// Steps are, in order: StepScreenOpened (cashier sessions opened in the
// period), StepMethodChosen (deposits started in the period, bank-rail
// settlements excluded), StepPaid (of those, the ones whose payment
// succeeded, whenever it did) and StepCredited (of those, the ones
// completed). Sessions are not linked to deposits one by one, so the
// second step may exceed the first (a deposit started through the client
// API needs no screen).
type Funnel struct {
	Steps []FunnelStep
}

// FunnelStep is one step with its conversions in basis points (1 % = 100):
// FromPreviousBps against the step before, FromFirstBps against the first
// step (the first step is 10000 of itself when it has any; a step after an
// empty one is 0).
type FunnelStep struct {
	Name            string
	Count           int64
	FromPreviousBps int64
	FromFirstBps    int64
}

// Dashboard computes the dashboard of q's period. It returns errs.Invalid
// when From or To is missing, To is not after From, the period is longer
// than MaxDashboardDays or the currency is unknown.
func (s *Service) Dashboard(ctx context.Context, q DashboardQuery) (Dashboard, error) {
	const op = "reports.Dashboard"
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return Dashboard{}, errs.E(errs.Invalid, op, "the period needs a start and an end")
	case !q.To.After(q.From):
		return Dashboard{}, errs.Ef(errs.Invalid, op, "the end of the period (%s) must be after its start (%s)",
			q.To.UTC().Format(time.RFC3339), q.From.UTC().Format(time.RFC3339))
	case q.To.Sub(q.From) > MaxDashboardDays*24*time.Hour:
		return Dashboard{}, errs.Ef(errs.Invalid, op, "the period is longer than %d days", MaxDashboardDays)
	}
	if q.Currency != "" {
		cur, err := money.LookupCurrency(strings.ToUpper(strings.TrimSpace(q.Currency)))
		if err != nil {
			return Dashboard{}, errs.Ef(errs.Invalid, op, "currency %q is not known", q.Currency)
		}
		q.Currency = cur.Code
	}
	d := Dashboard{From: q.From.UTC(), To: q.To.UTC()}
	var err error
	if err = s.days(ctx, op, q, &d); err != nil {
		return Dashboard{}, err
	}
	if d.Approvals, err = s.approvals(ctx, op, q); err != nil {
		return Dashboard{}, err
	}
	if d.Declines, err = s.declines(ctx, op, q); err != nil {
		return Dashboard{}, err
	}
	if d.Funnel, err = s.funnel(ctx, op, q); err != nil {
		return Dashboard{}, err
	}
	return d, nil
}

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// days fills the daily figures.
func (s *Service) days(ctx context.Context, op string, q DashboardQuery, d *Dashboard) error {
	type key struct {
		day int64
		cur string
	}
	sums := map[key]*DayTotals{}
	currencies := map[string]bool{}
	if q.Currency != "" {
		currencies[q.Currency] = true
	}
	for _, part := range []struct {
		table, currency, amount string
		deposit                 bool
	}{
		{"funding_deposits", "account_currency", "credit_minor", true},
		{"funding_withdrawals", "currency", "amount_minor", false},
	} {
		sql := `SELECT COALESCE(final_at, updated_at) / ? AS day, ` + part.currency + `, COUNT(*), CAST(SUM(` + part.amount + `) AS BIGINT)
			FROM ` + part.table + ` WHERE status = 'completed' AND COALESCE(final_at, updated_at) >= ? AND COALESCE(final_at, updated_at) < ?`
		args := []any{microsPerDay, sqlstore.Micros(q.From), sqlstore.Micros(q.To)}
		if q.Currency != "" {
			sql += ` AND ` + part.currency + ` = ?`
			args = append(args, q.Currency)
		}
		rows, err := s.db.Query(ctx, sql+` GROUP BY 1, 2`, args...)
		if err != nil {
			return errs.Wrap(op, err)
		}
		for rows.Next() {
			var day, count, sum int64
			var cur string
			if err := rows.Scan(&day, &cur, &count, &sum); err != nil {
				_ = rows.Close()
				return errs.Wrap(op, err)
			}
			a, err := amount(op, sum, cur)
			if err != nil {
				_ = rows.Close()
				return err
			}
			currencies[cur] = true
			t := sums[key{day, cur}]
			if t == nil {
				t = &DayTotals{Currency: cur}
				sums[key{day, cur}] = t
			}
			if part.deposit {
				t.Deposits = Tally{Count: count, Sum: a}
			} else {
				t.Withdrawals = Tally{Count: count, Sum: a}
			}
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return errs.Wrap(op, err)
		}
	}
	for c := range currencies {
		d.Currencies = append(d.Currencies, c)
	}
	slices.Sort(d.Currencies)
	for day := utcDay(q.From); day.Before(q.To); day = day.AddDate(0, 0, 1) {
		n := day.UnixMicro() / microsPerDay
		entry := Day{Date: day}
		for _, c := range d.Currencies {
			if t := sums[key{n, c}]; t != nil {
				if t.Deposits.Sum.Currency().Code == "" {
					t.Deposits.Sum = zeroOf(c)
				}
				if t.Withdrawals.Sum.Currency().Code == "" {
					t.Withdrawals.Sum = zeroOf(c)
				}
				entry.Totals = append(entry.Totals, *t)
				continue
			}
			entry.Totals = append(entry.Totals, DayTotals{Currency: c, Deposits: Tally{Sum: zeroOf(c)}, Withdrawals: Tally{Sum: zeroOf(c)}})
		}
		d.Days = append(d.Days, entry)
	}
	return nil
}

// zeroOf is a zero amount of a currency already read from the database
// (and so known).
func zeroOf(code string) money.Amount {
	cur, err := money.LookupCurrency(code)
	if err != nil {
		return money.Amount{}
	}
	return money.Zero(cur)
}

// approvals measures the decisions on withdrawals taken in the period.
func (s *Service) approvals(ctx context.Context, op string, q DashboardQuery) (ApprovalTimes, error) {
	awaiting, approved, rejected := string(funding.WithdrawalAwaitingApproval), string(funding.WithdrawalApproved), string(funding.WithdrawalRejected)
	sql := `SELECT h.owner_id, h.from_status, h.to_status, h.at FROM funding_history h
		WHERE h.to_status IN (?, ?, ?) AND h.owner_id IN (
			SELECT owner_id FROM funding_history WHERE from_status = ? AND to_status IN (?, ?) AND at >= ? AND at < ?)`
	args := []any{awaiting, approved, rejected, awaiting, approved, rejected, sqlstore.Micros(q.From), sqlstore.Micros(q.To)}
	if q.Currency != "" {
		sql += ` AND h.owner_id IN (SELECT id FROM funding_withdrawals WHERE currency = ?)`
		args = append(args, q.Currency)
	}
	rows, err := s.db.Query(ctx, sql+` ORDER BY h.owner_id, h.seq`, args...)
	if err != nil {
		return ApprovalTimes{}, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out ApprovalTimes
	var waits []time.Duration
	owner := ""
	var since int64 = -1
	decided := false
	for rows.Next() {
		var id, from, to string
		var at int64
		if err := rows.Scan(&id, &from, &to, &at); err != nil {
			return ApprovalTimes{}, errs.Wrap(op, err)
		}
		if id != owner {
			owner, since, decided = id, -1, false
		}
		switch {
		case decided:
		case to == awaiting && since < 0:
			since = at
		case from == awaiting && (to == approved || to == rejected) && since >= 0:
			// Only the decision inside the period was selected by owner;
			// a withdrawal is decided once.
			if at < sqlstore.Micros(q.From) || at >= sqlstore.Micros(q.To) {
				continue
			}
			decided = true
			waits = append(waits, time.Duration(at-since)*time.Microsecond)
			out.Decided++
			if to == approved {
				out.Approved++
			} else {
				out.Rejected++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return ApprovalTimes{}, errs.Wrap(op, err)
	}
	out.Median, out.P90 = percentile(waits, 50), percentile(waits, 90)
	return out, nil
}

// percentile is the nearest-rank percentile p (1–100) of ds, 0 for none.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}

// declines counts the payments that ended declined or failed in the period.
func (s *Service) declines(ctx context.Context, op string, q DashboardQuery) ([]DeclineCount, error) {
	sql := `SELECT direction, reason, COUNT(*) FROM payments WHERE status IN ('declined', 'failed')
		AND COALESCE(final_at, updated_at) >= ? AND COALESCE(final_at, updated_at) < ?`
	args := []any{sqlstore.Micros(q.From), sqlstore.Micros(q.To)}
	if q.Currency != "" {
		sql += ` AND account_currency = ?`
		args = append(args, q.Currency)
	}
	rows, err := s.db.Query(ctx, sql+` GROUP BY direction, reason`, args...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	counts := map[[2]string]int64{}
	for rows.Next() {
		var c DeclineCount
		if err := rows.Scan(&c.Direction, &c.Code, &c.Count); err != nil {
			return nil, errs.Wrap(op, err)
		}
		if c.Code == "" {
			c.Code = "unspecified"
		}
		counts[[2]string{c.Direction, c.Code}] += c.Count
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out := make([]DeclineCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, DeclineCount{Direction: k[0], Code: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b DeclineCount) int {
		switch {
		case a.Count != b.Count:
			return int(b.Count - a.Count)
		case a.Direction != b.Direction:
			return strings.Compare(a.Direction, b.Direction)
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out, nil
}

// funnel counts the deposit funnel of the period.
func (s *Service) funnel(ctx context.Context, op string, q DashboardQuery) (Funnel, error) {
	from, to := sqlstore.Micros(q.From), sqlstore.Micros(q.To)
	sessions := `SELECT COUNT(*) FROM identity_tokens WHERE kind = 'cashier' AND created_at >= ? AND created_at < ?`
	args := []any{from, to}
	if q.Currency != "" {
		sessions += ` AND account_login IN (SELECT login FROM identity_accounts WHERE currency = ?)`
		args = append(args, q.Currency)
	}
	var opened int64
	if err := s.db.QueryRow(ctx, sessions, args...).Scan(&opened); err != nil {
		return Funnel{}, errs.Wrap(op, err)
	}
	deposits := `SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN p.status = 'succeeded' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN d.status = ? THEN 1 ELSE 0 END), 0)
		FROM funding_deposits d LEFT JOIN payments p ON p.id = d.payment_id
		WHERE d.created_at >= ? AND d.created_at < ? AND d.provider <> ?`
	args = []any{string(funding.DepositCompleted), from, to, funding.BankRailProvider}
	if q.Currency != "" {
		deposits += ` AND d.account_currency = ?`
		args = append(args, q.Currency)
	}
	var chosen, paid, credited int64
	if err := s.db.QueryRow(ctx, deposits, args...).Scan(&chosen, &paid, &credited); err != nil {
		return Funnel{}, errs.Wrap(op, err)
	}
	return newFunnel([]string{StepScreenOpened, StepMethodChosen, StepPaid, StepCredited}, []int64{opened, chosen, paid, credited}), nil
}

// newFunnel computes the conversions of counts in basis points.
func newFunnel(names []string, counts []int64) Funnel {
	var f Funnel
	for i, n := range counts {
		step := FunnelStep{Name: names[i], Count: n}
		if i == 0 {
			if n > 0 {
				step.FromPreviousBps, step.FromFirstBps = 10000, 10000
			}
		} else {
			step.FromPreviousBps = bps(n, counts[i-1])
			step.FromFirstBps = bps(n, counts[0])
		}
		f.Steps = append(f.Steps, step)
	}
	return f
}

// bps is n/of in basis points, rounded down; 0 when of is 0.
func bps(n, of int64) int64 {
	if of <= 0 {
		return 0
	}
	return n * 10000 / of
}

// FormatBps renders basis points as a percentage with two decimals:
// 1234 is "12.34 %".
func FormatBps(b int64) string {
	sign := ""
	if b < 0 {
		sign, b = "-", -b
	}
	frac := b % 100
	s := sign + strconv.FormatInt(b/100, 10) + "."
	if frac < 10 {
		s += "0"
	}
	return s + strconv.FormatInt(frac, 10) + " %"
}
