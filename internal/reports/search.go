package reports

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Kind says whether a row is a deposit or a withdrawal.
type Kind string

// The kinds of rows, and the filter value for both.
const (
	KindAny        Kind = "" // filter only: deposits and withdrawals ("any" is accepted too)
	KindDeposit    Kind = "deposit"
	KindWithdrawal Kind = "withdrawal"
)

// Paging limits of Search.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// DepositStatuses and WithdrawalStatuses are the stored states a Filter
// may name, in the order of their life cycles. "processing" is not among
// them: the trader sees it while a push is in doubt, but it is never
// stored.
var (
	DepositStatuses = []string{
		string(funding.DepositCreated), string(funding.DepositAwaitingPayment), string(funding.DepositPaid),
		string(funding.DepositCrediting), string(funding.DepositCompleted), string(funding.DepositDeclined),
		string(funding.DepositExpired), string(funding.DepositFailed), string(funding.DepositReversed),
	}
	WithdrawalStatuses = []string{
		string(funding.WithdrawalRequested), string(funding.WithdrawalAwaiting2FA), string(funding.WithdrawalDebiting),
		string(funding.WithdrawalHeld), string(funding.WithdrawalAwaitingApproval), string(funding.WithdrawalApproved),
		string(funding.WithdrawalPayoutSent), string(funding.WithdrawalCompleted), string(funding.WithdrawalRejected),
		string(funding.WithdrawalFailed), string(funding.WithdrawalReturned),
	}
)

// Filter selects deposits and withdrawals. Zero fields do not filter; all
// set fields must hold.
type Filter struct {
	UserID string
	// Email matches the user's e-mail address exactly, ignoring case and
	// surrounding spaces (as identity compares addresses).
	Email string
	Login int64 // trading account number
	Kind  Kind  // KindDeposit, KindWithdrawal, or KindAny ("" or "any")
	// Status keeps rows whose stored state is one of these (see
	// DepositStatuses and WithdrawalStatuses); a status of only one kind
	// selects nothing of the other.
	Status   []string
	MethodID string
	// From and To bound the creation instant: From ≤ created < To.
	From, To time.Time
	// MinAmount and MaxAmount bound Row.Amount exactly, inclusive. Their
	// currency must be Currency's when that is set, and each other's; a
	// bound also keeps only rows in its currency.
	MinAmount, MaxAmount money.Amount
	// Currency keeps rows whose Amount is in this ISO 4217 code (for a
	// deposit the currency paid, which may differ from the account's).
	Currency string
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor is Page.Next of the previous page; empty for the first.
	Cursor string

	id string // Timeline's look-up of one row
}

// Row is one deposit or withdrawal.
type Row struct {
	ID     string // dep_… or wd_…
	Kind   Kind
	UserID string
	Email  string // the user's e-mail address ("" if identity does not know the user)
	Login  int64
	// MethodID is the payment method; Provider the payment provider.
	MethodID, Provider string
	// State is the stored status; Flag is non-empty while an operator must
	// look at the transaction (payment_review, platform_refused, …).
	State, Flag string
	// Amount is what the customer paid (deposit, in the currency paid) or
	// what left the trading account (withdrawal, in its currency). Fee is
	// the method's fee in the same currency. Credit is what the other side
	// receives: for a deposit the credit to the trading account in the
	// account's currency (after fee and conversion), for a withdrawal the
	// net paid out to the customer.
	Amount, Fee, Credit money.Amount
	// CreatedAt and UpdatedAt are UTC.
	CreatedAt, UpdatedAt time.Time
}

// Page is one page of Search. Next is the cursor of the following page,
// empty on the last one.
type Page struct {
	Rows []Row
	Next string
}

// Search returns the deposits and withdrawals that match f, newest first
// (by creation, then id). Pages are cut by a keyset cursor, so paging is
// stable while new transactions arrive: a row is never repeated or skipped.
//
// It returns errs.Invalid, with a message naming the filter, for an
// unknown kind, status or currency, a status of the wrong kind, To not
// after From, amount bounds in another currency or reversed, a limit out of
// range or a malformed cursor.
func (s *Service) Search(ctx context.Context, f Filter) (Page, error) {
	const op = "reports.Search"
	q, err := compile(op, f)
	if err != nil {
		return Page{}, err
	}
	rows, err := s.query(ctx, op, q, q.limit+1)
	if err != nil {
		return Page{}, err
	}
	p := Page{Rows: rows}
	if len(rows) > q.limit {
		p.Rows = rows[:q.limit]
		p.Next = encodeCursor(p.Rows[q.limit-1])
	}
	return p, nil
}

// query is a validated Filter.
type query struct {
	f        Filter
	kinds    []Kind
	statuses map[Kind][]string
	email    string
	currency string
	min, max *int64
	after    *cursor
	limit    int
}

func compile(op string, f Filter) (query, error) {
	q := query{f: f, statuses: map[Kind][]string{}}
	switch f.Kind {
	case KindAny, "any":
		q.kinds = []Kind{KindDeposit, KindWithdrawal}
	case KindDeposit, KindWithdrawal:
		q.kinds = []Kind{f.Kind}
	default:
		return query{}, errs.Ef(errs.Invalid, op, "kind %q is not deposit, withdrawal or any", f.Kind)
	}
	if len(f.Status) > 0 {
		for _, st := range f.Status {
			st = strings.TrimSpace(st)
			inDep, inWd := slices.Contains(DepositStatuses, st), slices.Contains(WithdrawalStatuses, st)
			switch {
			case st == "processing":
				return query{}, errs.E(errs.Invalid, op, `status "processing" is only shown to traders; filter by a stored status`)
			case !inDep && !inWd:
				return query{}, errs.Ef(errs.Invalid, op, "status %q is not a deposit or withdrawal status", st)
			case f.Kind == KindDeposit && !inDep:
				return query{}, errs.Ef(errs.Invalid, op, "status %q is not a deposit status", st)
			case f.Kind == KindWithdrawal && !inWd:
				return query{}, errs.Ef(errs.Invalid, op, "status %q is not a withdrawal status", st)
			}
			if inDep {
				q.statuses[KindDeposit] = append(q.statuses[KindDeposit], st)
			}
			if inWd {
				q.statuses[KindWithdrawal] = append(q.statuses[KindWithdrawal], st)
			}
		}
		kept := q.kinds[:0]
		for _, k := range q.kinds {
			if len(q.statuses[k]) > 0 {
				kept = append(kept, k)
			}
		}
		q.kinds = kept
	}
	if f.Login < 0 {
		return query{}, errs.Ef(errs.Invalid, op, "login %d is not a trading account number", f.Login)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return query{}, errs.Ef(errs.Invalid, op, "the end of the period (%s) must be after its start (%s)",
			f.To.UTC().Format(time.RFC3339), f.From.UTC().Format(time.RFC3339))
	}
	q.email = strings.ToLower(strings.TrimSpace(f.Email))
	if f.Currency != "" {
		cur, err := money.LookupCurrency(strings.ToUpper(strings.TrimSpace(f.Currency)))
		if err != nil {
			return query{}, errs.Ef(errs.Invalid, op, "currency %q is not known", f.Currency)
		}
		q.currency = cur.Code
	}
	for _, b := range []struct {
		name string
		a    money.Amount
		dst  **int64
	}{{"minimum amount", f.MinAmount, &q.min}, {"maximum amount", f.MaxAmount, &q.max}} {
		code := b.a.Currency().Code
		if code == "" {
			continue
		}
		if b.a.IsNegative() {
			return query{}, errs.Ef(errs.Invalid, op, "the %s %s is negative", b.name, b.a)
		}
		if q.currency != "" && code != q.currency {
			return query{}, errs.Ef(errs.Invalid, op, "the %s is in %s but the currency filter is %s; amounts are compared exactly, in one currency",
				b.name, code, q.currency)
		}
		q.currency = code
		minor := b.a.Minor()
		*b.dst = &minor
	}
	if q.min != nil && q.max != nil && *q.min > *q.max {
		return query{}, errs.Ef(errs.Invalid, op, "the minimum amount %s is above the maximum %s", f.MinAmount, f.MaxAmount)
	}
	switch {
	case f.Limit == 0:
		q.limit = DefaultLimit
	case f.Limit < 0 || f.Limit > MaxLimit:
		return query{}, errs.Ef(errs.Invalid, op, "limit %d is out of range: a page holds 1 to %d rows", f.Limit, MaxLimit)
	default:
		q.limit = f.Limit
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return query{}, errs.E(errs.Invalid, op, "cursor is malformed: pass Next of the previous page unchanged")
		}
		q.after = &c
	}
	return q, nil
}

// The columns of both kinds, in Row order. Email comes from identity; a
// withdrawal also recorded the address it was requested with.
const (
	depositColumns = `'deposit' AS kind, d.id AS id, d.user_id AS user_id, COALESCE(u.email, '') AS email, d.login AS login,
		d.method_id AS method_id, d.provider AS provider, d.status AS state, d.flag AS flag,
		d.currency AS currency, d.gross_minor AS amount_minor, d.fee_minor AS fee_minor,
		d.account_currency AS credit_currency, d.credit_minor AS credit_minor, d.created_at AS created_at, d.updated_at AS updated_at`
	withdrawalColumns = `'withdrawal' AS kind, w.id AS id, w.user_id AS user_id, COALESCE(u.email, w.email) AS email, w.login AS login,
		w.method_id AS method_id, w.provider AS provider, w.status AS state, w.flag AS flag,
		w.currency AS currency, w.amount_minor AS amount_minor, w.fee_minor AS fee_minor,
		w.currency AS credit_currency, w.net_minor AS credit_minor, w.created_at AS created_at, w.updated_at AS updated_at`
)

// The columns the page is cut with (a sort carries only these).
const (
	depositNeeded = `d.id, d.user_id, d.login, d.method_id, d.provider, d.status, d.flag, d.currency, d.gross_minor, d.fee_minor,
		d.account_currency, d.credit_minor, d.created_at, d.updated_at`
	withdrawalNeeded = `w.id, w.user_id, w.email, w.login, w.method_id, w.provider, w.status, w.flag, w.currency, w.amount_minor,
		w.fee_minor, w.net_minor, w.created_at, w.updated_at`
)

// branch returns one kind's SELECT, newest first, at most limit rows.
func (q query) branch(k Kind, limit int) (string, []any) {
	t, from, amountCol, cols, needed := "d", "funding_deposits d", "d.gross_minor", depositColumns, depositNeeded
	if k == KindWithdrawal {
		t, from, amountCol, cols, needed = "w", "funding_withdrawals w", "w.amount_minor", withdrawalColumns, withdrawalNeeded
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.f.id != "" {
		add(t+".id = ?", q.f.id)
	}
	if q.f.UserID != "" {
		add(t+".user_id = ?", q.f.UserID)
	}
	if q.email != "" {
		add(t+".user_id IN (SELECT id FROM identity_users WHERE email_key = ?)", q.email)
	}
	if q.f.Login != 0 {
		add(t+".login = ?", q.f.Login)
	}
	if sts := q.statuses[k]; len(sts) > 0 {
		a := make([]any, len(sts))
		for i, st := range sts {
			a[i] = st
		}
		add(t+".status IN ("+placeholders(len(sts))+")", a...)
	}
	if q.f.MethodID != "" {
		add(t+".method_id = ?", q.f.MethodID)
	}
	if !q.f.From.IsZero() {
		add(t+".created_at >= ?", sqlstore.Micros(q.f.From))
	}
	if !q.f.To.IsZero() {
		add(t+".created_at < ?", sqlstore.Micros(q.f.To))
	}
	if q.currency != "" {
		add(t+".currency = ?", q.currency)
	}
	if q.min != nil {
		add(amountCol+" >= ?", *q.min)
	}
	if q.max != nil {
		add(amountCol+" <= ?", *q.max)
	}
	if q.after != nil {
		add("("+t+".created_at < ? OR ("+t+".created_at = ? AND "+t+".id < ?))", q.after.micros, q.after.micros, q.after.id)
	}
	// The page is cut first and only its rows are joined with the users.
	order := " ORDER BY " + t + ".created_at DESC, " + t + ".id DESC"
	inner := "SELECT " + needed + " FROM " + from
	if len(where) > 0 {
		inner += " WHERE " + strings.Join(where, " AND ")
	}
	inner += order + " LIMIT ?"
	sql := "SELECT " + cols + " FROM (" + inner + ") " + t + " LEFT JOIN identity_users u ON u.id = " + t + ".user_id" + order
	return sql, append(args, limit)
}

// query runs q for at most limit rows, newest first.
func (s *Service) query(ctx context.Context, op string, q query, limit int) ([]Row, error) {
	var sql string
	var args []any
	switch len(q.kinds) {
	case 0:
		return nil, nil
	case 1:
		sql, args = q.branch(q.kinds[0], limit)
	default:
		var parts []string
		for i, k := range q.kinds {
			b, a := q.branch(k, limit)
			parts = append(parts, "SELECT * FROM ("+b+") b"+strconv.Itoa(i))
			args = append(args, a...)
		}
		sql = strings.Join(parts, " UNION ALL ") + " ORDER BY created_at DESC, id DESC LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var kind, cur, creditCur string
		var amt, fee, credit, created, updated int64
		if err := rows.Scan(&kind, &r.ID, &r.UserID, &r.Email, &r.Login, &r.MethodID, &r.Provider, &r.State, &r.Flag,
			&cur, &amt, &fee, &creditCur, &credit, &created, &updated); err != nil {
			return nil, errs.Wrap(op, err)
		}
		r.Kind = Kind(kind)
		if r.Amount, err = amount(op, amt, cur); err != nil {
			return nil, err
		}
		if r.Fee, err = amount(op, fee, cur); err != nil {
			return nil, err
		}
		if r.Credit, err = amount(op, credit, creditCur); err != nil {
			return nil, err
		}
		r.CreatedAt, r.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	return out, nil
}

// cursor is the position after a row: its creation instant and id.
type cursor struct {
	micros int64
	id     string
}

const cursorVersion = "1"

func encodeCursor(r Row) string {
	raw := cursorVersion + ":" + strconv.FormatInt(sqlstore.Micros(r.CreatedAt), 10) + ":" + r.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (cursor, error) {
	bad := errs.E(errs.Invalid, "reports.cursor", "malformed cursor")
	if len(s) > 200 {
		return cursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != cursorVersion {
		return cursor{}, bad
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || micros < 0 {
		return cursor{}, bad
	}
	id := parts[2]
	if !validID(id) {
		return cursor{}, bad
	}
	return cursor{micros: micros, id: id}, nil
}

// validID reports whether id has the shape of a deposit or withdrawal id.
func validID(id string) bool {
	rest, ok := strings.CutPrefix(id, "dep_")
	if !ok {
		rest, ok = strings.CutPrefix(id, "wd_")
	}
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-') {
			return false
		}
	}
	return true
}
