package payments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// IDPrefix starts every payment id.
const IDPrefix = "pay_"

// NewID returns a new payment id: "pay_" and a UUIDv7, so ids sort by
// creation time.
func NewID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", errs.Wrap("payments.NewID", err)
	}
	return IDPrefix + u.String(), nil
}

// ValidID reports whether id has the form of a payment id.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok {
		return false
	}
	_, err := uuid.Parse(rest)
	return err == nil && len(rest) == 36
}

func newEventID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", errs.Wrap("payments.newEventID", err)
	}
	return "pev_" + u.String(), nil
}

const paymentColumns = `id, direction, method_id, method_kind, provider, provider_ref, customer_id, account_id, country,
	currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, account_minor,
	fx_mid_rate, fx_inverted, fx_spread_bps, status, reason, message, received_minor, received_currency,
	next_kind, redirect_url, instructions, instrument, destination, confirmations, provider_seq,
	customer_email, customer_name, return_url, lang, created_at, updated_at, final_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanPayment(row rowScanner) (Payment, error) {
	const op = "payments.scan"
	var (
		p                                        Payment
		providerRef, midRate, receivedCur        sql.NullString
		instructions, instrument, destination    sql.NullString
		curCode, accountCode                     string
		gross, fee, net, account                 int64
		received                                 sql.NullInt64
		inverted                                 int
		spread                                   int64
		created, updated                         int64
		final                                    sql.NullInt64
		direction, kind, status, paidBy, nextKnd string
	)
	if err := row.Scan(&p.ID, &direction, &p.MethodID, &kind, &p.Provider, &providerRef, &p.CustomerID, &p.AccountID, &p.Country,
		&curCode, &gross, &fee, &paidBy, &net, &accountCode, &account,
		&midRate, &inverted, &spread, &status, &p.Reason, &p.Message, &received, &receivedCur,
		&nextKnd, &p.RedirectURL, &instructions, &instrument, &destination, &p.Confirmations, &p.ProviderSeq,
		&p.CustomerEmail, &p.CustomerName, &p.ReturnURL, &p.Lang, &created, &updated, &final); err != nil {
		return Payment{}, err
	}
	p.Direction, p.Kind, p.Status, p.FeePaidBy, p.Next = Direction(direction), psp.MethodKind(kind), Status(status), Payer(paidBy), psp.NextKind(nextKnd)
	p.ProviderRef = providerRef.String
	cur, err := money.LookupCurrency(curCode)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	accountCur, err := money.LookupCurrency(accountCode)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	p.Gross, p.Fee, p.Net = money.New(gross, cur), money.New(fee, cur), money.New(net, cur)
	p.AccountAmount = money.New(account, accountCur)
	if midRate.Valid {
		fx := &FXRecord{Inverted: inverted != 0, SpreadBps: spread}
		if fx.MidRate, err = money.ParseRate(midRate.String); err != nil {
			return Payment{}, errs.Wrap(op, err)
		}
		// The applied rate is derived from the mid rate and the spread,
		// exactly; fx_rate holds it for people reading the table.
		if fx.Rate, err = fx.MidRate.WithSpread(spread); err != nil {
			return Payment{}, errs.Wrap(op, err)
		}
		p.FX = fx
	}
	if received.Valid {
		rc, err := money.LookupCurrency(receivedCur.String)
		if err != nil {
			return Payment{}, errs.Wrap(op, err)
		}
		p.Received = money.New(received.Int64, rc)
	}
	if instructions.Valid {
		p.Instructions = new(psp.Instructions)
		if err := json.Unmarshal([]byte(instructions.String), p.Instructions); err != nil {
			return Payment{}, errs.Wrap(op+": instructions", err)
		}
	}
	if instrument.Valid {
		if err := json.Unmarshal([]byte(instrument.String), &p.Instrument); err != nil {
			return Payment{}, errs.Wrap(op+": instrument", err)
		}
	}
	if destination.Valid {
		p.Destination = new(psp.Destination)
		if err := json.Unmarshal([]byte(destination.String), p.Destination); err != nil {
			return Payment{}, errs.Wrap(op+": destination", err)
		}
	}
	p.CreatedAt, p.UpdatedAt, p.FinalAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated), sqlstore.FromNullMicros(final)
	return p, nil
}

func (s *Service) getTx(ctx context.Context, tx *sqlstore.Tx, id string, lock bool) (Payment, error) {
	const op = "payments.get"
	q := `SELECT ` + paymentColumns + ` FROM payments WHERE id = ?`
	if lock {
		q += tx.ForUpdate()
	}
	p, err := scanPayment(tx.QueryRow(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, errs.Ef(errs.NotFound, op, "payment %s does not exist", id)
	}
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	return p, nil
}

func nullJSON(v any, present bool) (any, error) {
	if !present {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errs.Wrap("payments.nullJSON", err)
	}
	return string(b), nil
}

func insertPayment(ctx context.Context, tx *sqlstore.Tx, p Payment, requestHash string) (bool, error) {
	const op = "payments.insert"
	var midRate, rate any
	var inverted int
	var spread int64
	if p.FX != nil {
		midRate, rate, spread = p.FX.MidRate.String(), p.FX.Rate.String(), p.FX.SpreadBps
		if p.FX.Inverted {
			inverted = 1
		}
	}
	destination, err := nullJSON(p.Destination, p.Destination != nil)
	if err != nil {
		return false, err
	}
	res, err := tx.Exec(ctx, `INSERT INTO payments (id, direction, method_id, method_kind, provider, customer_id, account_id, country,
		currency, gross_minor, fee_minor, fee_paid_by, net_minor, account_currency, account_minor,
		fx_mid_rate, fx_inverted, fx_spread_bps, fx_rate, status, destination,
		customer_email, customer_name, return_url, lang, request_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		p.ID, string(p.Direction), p.MethodID, string(p.Kind), p.Provider, p.CustomerID, p.AccountID, p.Country,
		p.Gross.Currency().Code, p.Gross.Minor(), p.Fee.Minor(), string(p.FeePaidBy), p.Net.Minor(),
		p.AccountAmount.Currency().Code, p.AccountAmount.Minor(),
		midRate, inverted, spread, rate, string(p.Status), destination,
		p.CustomerEmail, p.CustomerName, p.ReturnURL, p.Lang, requestHash,
		sqlstore.Micros(p.CreatedAt), sqlstore.Micros(p.UpdatedAt))
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	return n == 1, nil
}

// updatePayment writes the fields that change after creation.
func updatePayment(ctx context.Context, tx *sqlstore.Tx, p Payment) error {
	_, err := writePayment(ctx, tx, p, "")
	return err
}

// updatePaymentIf is updatePayment for a payment still as read: its stored
// updated_at is readAt. It reports false, writing nothing, when another
// change came first.
func updatePaymentIf(ctx context.Context, tx *sqlstore.Tx, p Payment, readAt time.Time) (bool, error) {
	return writePayment(ctx, tx, p, ` AND updated_at = ?`, sqlstore.Micros(readAt))
}

// writePayment updates p's row with cond (and its arguments) added to its
// WHERE clause and reports whether it did.
func writePayment(ctx context.Context, tx *sqlstore.Tx, p Payment, cond string, condArgs ...any) (bool, error) {
	const op = "payments.update"
	instructions, err := nullJSON(p.Instructions, p.Instructions != nil)
	if err != nil {
		return false, err
	}
	instrument, err := nullJSON(p.Instrument, p.Instrument != psp.Instrument{})
	if err != nil {
		return false, err
	}
	var providerRef, received, receivedCur any
	if p.ProviderRef != "" {
		providerRef = p.ProviderRef
	}
	if p.Received.Currency().Code != "" {
		received, receivedCur = p.Received.Minor(), p.Received.Currency().Code
	}
	res, err := tx.Exec(ctx, `UPDATE payments SET provider_ref = ?, status = ?, reason = ?, message = ?,
		received_minor = ?, received_currency = ?, next_kind = ?, redirect_url = ?, instructions = ?, instrument = ?,
		confirmations = ?, provider_seq = ?, updated_at = ?, final_at = ? WHERE id = ?`+cond,
		append([]any{providerRef, string(p.Status), p.Reason, p.Message, received, receivedCur, string(p.Next), p.RedirectURL,
			instructions, instrument, p.Confirmations, p.ProviderSeq, sqlstore.Micros(p.UpdatedAt), sqlstore.NullMicros(p.FinalAt), p.ID},
			condArgs...)...)
	if sqlstore.IsUniqueViolation(err) {
		return false, errs.Ef(errs.Conflict, op, "provider reference %s of %s already belongs to another payment", p.ProviderRef, p.ID)
	}
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	return n == 1, errs.Wrap(op, err)
}

func insertHistory(ctx context.Context, tx *sqlstore.Tx, id string, c StatusChange) error {
	const op = "payments.history"
	var eventID any
	if c.EventID != "" {
		eventID = c.EventID
	}
	_, err := tx.Exec(ctx, `INSERT INTO payment_status_history (payment_id, seq, from_status, to_status, reason, source, event_id, actor, at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM payment_status_history WHERE payment_id = ?), ?, ?, ?, ?, ?, ?, ?)`,
		id, id, string(c.From), string(c.To), c.Reason, c.Source, eventID, c.Actor, sqlstore.Micros(c.At))
	return errs.Wrap(op, err)
}

// execer runs a statement in a transaction or on its own.
type execer interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertEvent stores an event verbatim, with its outcome. With a provider
// event id already stored for the provider it stores nothing and reports
// false.
func insertEvent(ctx context.Context, q execer, e StoredEvent) (bool, error) {
	const op = "payments.insertEvent"
	var providerEventID, paymentID any
	if e.ProviderEventID != "" {
		providerEventID = e.ProviderEventID
	}
	if e.PaymentID != "" {
		paymentID = e.PaymentID
	}
	body := e.Body
	if body == nil {
		body = []byte{}
	}
	res, err := q.Exec(ctx, `INSERT INTO payment_events (id, provider, provider_event_id, payment_id, source, body, outcome, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, provider_event_id) DO NOTHING`,
		e.ID, e.Provider, providerEventID, paymentID, e.Source, body, string(e.Outcome), sqlstore.Micros(e.ReceivedAt))
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	return n == 1, nil
}

// Get returns the payment with the given id. It returns an errs.NotFound
// error if there is none.
func (s *Service) Get(ctx context.Context, id string) (Payment, error) {
	const op = "payments.Service.Get"
	p, err := scanPayment(s.db.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, errs.Ef(errs.NotFound, op, "payment %s does not exist", id)
	}
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	s.seen.put(p)
	return p, nil
}

// ListFilter selects payments for List. Empty fields match everything.
type ListFilter struct {
	CustomerID string
	AccountID  string
	Status     Status
	Direction  Direction
	// BeforeID pages backwards: only payments with a smaller (older) id.
	BeforeID string
	// Limit caps the result; zero means 50, at most 500.
	Limit int
}

// List returns the payments that match f, newest first. It returns an
// errs.Invalid error for a negative limit and a wrapped database error
// otherwise.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Payment, error) {
	const op = "payments.Service.List"
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if f.CustomerID != "" {
		add("customer_id = ?", f.CustomerID)
	}
	if f.AccountID != "" {
		add("account_id = ?", f.AccountID)
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.Direction != "" {
		add("direction = ?", string(f.Direction))
	}
	if f.BeforeID != "" {
		add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, errs.E(errs.Invalid, op, "limit must not be negative")
	case limit == 0:
		limit = 50
	case limit > 500:
		limit = 500
	}
	q := `SELECT ` + paymentColumns + ` FROM payments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, p)
	}
	return out, errs.Wrap(op, rows.Err())
}

// History returns a payment's status changes, oldest first. It returns a
// wrapped database error if the query fails; an unknown id has no history.
func (s *Service) History(ctx context.Context, id string) ([]StatusChange, error) {
	const op = "payments.Service.History"
	rows, err := s.db.Query(ctx, `SELECT seq, from_status, to_status, reason, source, event_id, actor, at
		FROM payment_status_history WHERE payment_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []StatusChange
	for rows.Next() {
		var (
			c        StatusChange
			from, to string
			eventID  sql.NullString
			at       int64
		)
		if err := rows.Scan(&c.Seq, &from, &to, &c.Reason, &c.Source, &eventID, &c.Actor, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		c.From, c.To, c.EventID, c.At = Status(from), Status(to), eventID.String, sqlstore.FromMicros(at)
		out = append(out, c)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Events returns the provider events and status answers stored for a
// payment, oldest first, with their bodies exactly as received. It returns
// a wrapped database error if the query fails.
func (s *Service) Events(ctx context.Context, paymentID string) ([]StoredEvent, error) {
	const op = "payments.Service.Events"
	rows, err := s.db.Query(ctx, `SELECT id, provider, provider_event_id, payment_id, source, body, outcome, received_at
		FROM payment_events WHERE payment_id = ? ORDER BY id`, paymentID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var (
			e                StoredEvent
			providerEventID  sql.NullString
			pid              sql.NullString
			outcome          string
			receivedAtMicros int64
		)
		if err := rows.Scan(&e.ID, &e.Provider, &providerEventID, &pid, &e.Source, &e.Body, &outcome, &receivedAtMicros); err != nil {
			return nil, errs.Wrap(op, err)
		}
		e.ProviderEventID, e.PaymentID, e.Outcome, e.ReceivedAt = providerEventID.String, pid.String, Outcome(outcome), sqlstore.FromMicros(receivedAtMicros)
		out = append(out, e)
	}
	return out, errs.Wrap(op, rows.Err())
}
