package compliance

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The states of a hold.
const (
	// HoldPending: a rule held the transaction but there is nothing to
	// review yet (a deposit not yet paid, a withdrawal not yet taken from
	// the trading account).
	HoldPending = "pending"
	// HoldOpen: the transaction waits for an operator (a paid deposit, a
	// withdrawal awaiting approval).
	HoldOpen = "open"
	// HoldResolved: the transaction moved on (released, approved, rejected,
	// failed); Resolution is the status it moved to.
	HoldResolved = "resolved"
)

// Hold is a transaction a fraud rule held for review.
type Hold struct {
	TxnID  string // "dep_…" or "wd_…"
	UserID string
	Kind   string // funding.KindDeposit or funding.KindWithdrawal
	Stage  string // the stage of the last check that held it
	// Rule is the first rule that held it; Rules are all of them, and
	// Explanation says why, with the facts, for the operator's screen.
	Rule        string
	Rules       []string
	Explanation string
	Login       int64
	MethodID    string
	Amount      money.Amount
	Destination string
	CardCountry string
	State       string // HoldPending, HoldOpen or HoldResolved
	CreatedAt   time.Time
	OpenedAt    time.Time // zero until open
	ResolvedAt  time.Time // zero until resolved
	Resolution  string    // the status the transaction moved to
	ResolvedBy  string    // the actor of that change
}

// holdState is the state of a hold on a transaction of kind in status.
func holdState(kind, status string) string {
	switch kind {
	case funding.KindDeposit:
		switch status {
		case "", "created", "awaiting_payment", "expired":
			return HoldPending
		case "paid":
			return HoldOpen
		}
	case funding.KindWithdrawal:
		switch status {
		case "", "requested", "awaiting_2fa", "debiting", "held":
			return HoldPending
		case "awaiting_approval":
			return HoldOpen
		}
	}
	return HoldResolved
}

// recordHold records the findings as the transaction's hold (adding to an
// existing hold the rules it does not name yet) and returns the verdict.
func (s *Service) recordHold(ctx context.Context, tx *sqlstore.Tx, c funding.Check, found []finding, now time.Time) (funding.Verdict, error) {
	var explanations []string
	for _, f := range found {
		explanations = append(explanations, f.explanation)
	}
	v := funding.Verdict{Hold: true, Rule: found[0].rule, Explanation: strings.Join(explanations, " ")}
	markHeld(tx, c.ID)

	state := HoldOpen
	if c.Stage == funding.StageRequest {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM compliance_activity WHERE id = ?`, c.ID).Scan(&status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return funding.Verdict{}, err
		}
		state = holdState(c.Kind, status)
	}
	var opened sql.NullInt64
	if state == HoldOpen {
		opened = sql.NullInt64{Int64: sqlstore.Micros(now), Valid: true}
	}

	var rules, explanation string
	err := tx.QueryRow(ctx, `SELECT rules, explanation FROM compliance_holds WHERE txn_id = ?`+tx.ForUpdate(), c.ID).Scan(&rules, &explanation)
	if errors.Is(err, sql.ErrNoRows) {
		names := make([]string, 0, len(found))
		for _, f := range found {
			names = append(names, f.rule)
		}
		_, err = tx.Exec(ctx, `INSERT INTO compliance_holds (txn_id, user_id, kind, stage, rule, rules, explanation, login, method_id,
			currency, amount_minor, destination, card_country, state, created_at, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Customer.UserID, c.Kind, c.Stage, v.Rule, strings.Join(names, ","), v.Explanation, c.Login, c.MethodID,
			c.Amount.Currency().Code, c.Amount.Minor(), c.Destination, strings.ToUpper(c.CardCountry), state, sqlstore.Micros(now), opened)
		return v, err
	}
	if err != nil {
		return funding.Verdict{}, err
	}
	names := strings.Split(rules, ",")
	for _, f := range found {
		if !slices.Contains(names, f.rule) {
			names = append(names, f.rule)
			explanation += " " + f.explanation
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE compliance_holds SET stage = ?, rules = ?, explanation = ?, currency = ?, amount_minor = ?
		WHERE txn_id = ?`, c.Stage, strings.Join(names, ","), explanation, c.Amount.Currency().Code, c.Amount.Minor(), c.ID); err != nil {
		return funding.Verdict{}, err
	}
	if c.CardCountry != "" {
		if _, err := tx.Exec(ctx, `UPDATE compliance_holds SET card_country = ? WHERE txn_id = ?`, strings.ToUpper(c.CardCountry), c.ID); err != nil {
			return funding.Verdict{}, err
		}
	}
	if state == HoldOpen {
		_, err = tx.Exec(ctx, `UPDATE compliance_holds SET state = ?, opened_at = COALESCE(opened_at, ?) WHERE txn_id = ? AND state = ?`,
			HoldOpen, opened, c.ID, HoldPending)
	}
	return v, err
}

// moveHold follows a held transaction's status change: pending until
// there is something to review, open while an operator must decide,
// resolved once it moved on.
func moveHold(ctx context.Context, tx *sqlstore.Tx, e funding.Event, ts int64) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM compliance_holds WHERE txn_id = ?`+tx.ForUpdate(), e.ID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	next := holdState(e.Kind, e.To)
	switch {
	case next == state:
		return nil
	case next == HoldResolved:
		_, err = tx.Exec(ctx, `UPDATE compliance_holds SET state = ?, resolved_at = ?, resolution = ?, resolved_by = ? WHERE txn_id = ?`,
			next, ts, e.To, e.Actor, e.ID)
	case next == HoldOpen:
		_, err = tx.Exec(ctx, `UPDATE compliance_holds SET state = ?, opened_at = COALESCE(opened_at, ?),
			resolved_at = NULL, resolution = '', resolved_by = '' WHERE txn_id = ?`, next, ts, e.ID)
	default:
		_, err = tx.Exec(ctx, `UPDATE compliance_holds SET state = ?, resolved_at = NULL, resolution = '', resolved_by = '' WHERE txn_id = ?`, next, e.ID)
	}
	return err
}

const holdColumns = `h.txn_id, h.user_id, h.kind, h.stage, h.rule, h.rules, h.explanation, h.login, h.method_id, h.currency, h.amount_minor,
	h.destination, h.card_country, h.state, h.created_at, h.opened_at, h.resolved_at, h.resolution, h.resolved_by`

func scanHold(scan func(...any) error) (Hold, error) {
	var h Hold
	var rules, currency string
	var amount, created int64
	var opened, resolved sql.NullInt64
	if err := scan(&h.TxnID, &h.UserID, &h.Kind, &h.Stage, &h.Rule, &rules, &h.Explanation, &h.Login, &h.MethodID, &currency, &amount,
		&h.Destination, &h.CardCountry, &h.State, &created, &opened, &resolved, &h.Resolution, &h.ResolvedBy); err != nil {
		return Hold{}, err
	}
	h.Rules = strings.Split(rules, ",")
	if cur, err := money.LookupCurrency(currency); err == nil {
		if h.Amount, err = money.FromMinor(amount, cur); err != nil {
			return Hold{}, err
		}
	}
	h.CreatedAt = sqlstore.FromMicros(created)
	if opened.Valid {
		h.OpenedAt = sqlstore.FromMicros(opened.Int64)
	}
	if resolved.Valid {
		h.ResolvedAt = sqlstore.FromMicros(resolved.Int64)
	}
	return h, nil
}

// MaxHolds bounds the list Holds returns when open is false.
const MaxHolds = 500

// Holds lists the review queue. With open true it returns the holds that
// wait for an operator (HoldOpen), oldest first; with open false, every
// hold in any state, newest first, at most MaxHolds. A hold whose
// transaction funding never confirmed (a request that lost a race to an
// identical one) is not listed. It returns a wrapped database error if
// they cannot be read.
func (s *Service) Holds(ctx context.Context, open bool) ([]Hold, error) {
	const op = "compliance.Holds"
	q := `SELECT ` + holdColumns + ` FROM compliance_holds h JOIN compliance_activity a ON a.id = h.txn_id AND a.confirmed = 1`
	var args []any
	if open {
		q += ` WHERE h.state = ? ORDER BY h.created_at, h.txn_id`
		args = append(args, HoldOpen)
	} else {
		q += ` ORDER BY h.created_at DESC, h.txn_id DESC LIMIT ?`
		args = append(args, MaxHolds)
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		h, err := scanHold(rows.Scan)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, h)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Hold returns the hold of one transaction. It returns errs.NotFound when
// no rule held it and a wrapped database error if it cannot be read.
func (s *Service) Hold(ctx context.Context, txnID string) (Hold, error) {
	const op = "compliance.Hold"
	h, err := scanHold(s.db.QueryRow(ctx, `SELECT `+holdColumns+` FROM compliance_holds h
		JOIN compliance_activity a ON a.id = h.txn_id AND a.confirmed = 1 WHERE h.txn_id = ?`, txnID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Hold{}, errs.Ef(errs.NotFound, op, "no rule held %s", txnID)
	}
	return h, errs.Wrap(op, err)
}
