package compliance

import (
	"context"
	"database/sql"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The activity record (compliance_activity) gets at most one write per
// transaction and row. What funding reports in a transaction — the check of
// a screening, one or more status changes — is collected in the
// transaction (Tx.Local) and written once, just before the commit
// (Tx.BeforeCommit), by one upsert that leaves the row exactly as the
// reports written one after the other would have (see activityWrite). A
// screening writes what is collected first, so that the rules read an
// up-to-date record.
//
// A status change that changes nothing the rules read is not written at
// all (see matters); the row's status is then the last one that did.

// activityKey keys a transaction's collected activity in Tx.Local.
type activityKey struct{}

// pendingActivity is the activity a transaction has collected, by row, in
// the order the rows were first touched.
type pendingActivity struct {
	order []string
	rows  map[string]*activityWrite
}

// activityRow is a row of compliance_activity.
type activityRow struct {
	userID, kind, methodID, methodKind, currency string
	amount, login                                int64
	destination, cardCountry, status, outcome    string
	confirmed                                    bool
	requestedAt                                  int64
	paidAt, completedAt, declinedAt              sql.NullInt64
	updatedAt                                    int64
}

// activityWrite is one transaction's write to one activity row: the row to
// insert when there is none, and what to change in one that exists. Each
// report is applied to both sides by the rule of the statement that used
// to write it on its own:
//
//	column                       a check                 a status change
//	method_id, currency          (insert only)           the report's, unless empty
//	amount_minor                 (insert only)           the report's, when it has a currency
//	method_kind, destination,    the report's, unless    (insert only)
//	card_country                 empty
//	status, outcome, confirmed   (insert only)           the report's; confirmed
//	paid_at, completed_at,       the first one set       the first one set
//	declined_at
//	updated_at                   the report's            the report's
//	user_id, kind, login,        (insert only)           (insert only)
//	requested_at
type activityWrite struct {
	id      string
	started bool        // a report was applied: ins holds the row
	ins     activityRow // the row when none existed before
	// What the write changes in an existing row: an empty string keeps
	// the stored value.
	methodID, methodKind, currency, destination, cardCountry string
	hasAmount                                                bool
	amount                                                   int64
	event                                                    bool // a status change: status and outcome below, confirmed
	status, outcome                                          string
	paidAt, completedAt, declinedAt                          sql.NullInt64 // kept when the stored row has one
	updatedAt                                                int64
	held                                                     bool
	// events are the status changes, in order, for the hold.
	events []timedEvent
}

type timedEvent struct {
	e  funding.Event
	ts int64
}

// nz is v unless it is empty, then old.
func nz(v, old string) string {
	if v == "" {
		return old
	}
	return v
}

// first is old if set, else v.
func first(old, v sql.NullInt64) sql.NullInt64 {
	if old.Valid {
		return old
	}
	return v
}

func micros(ts int64) sql.NullInt64 { return sql.NullInt64{Int64: ts, Valid: true} }

// addCheck applies a screening's check, at now (micros).
func (w *activityWrite) addCheck(c funding.Check, now int64) {
	var paidAt sql.NullInt64
	if c.Stage == funding.StagePaid {
		paidAt = micros(now)
	}
	country := strings.ToUpper(c.CardCountry)
	if !w.started {
		w.started = true
		w.ins = activityRow{userID: c.Customer.UserID, kind: c.Kind, methodID: c.MethodID, methodKind: c.MethodKind,
			currency: c.Amount.Currency().Code, amount: c.Amount.Minor(), login: c.Login, destination: c.Destination,
			cardCountry: country, outcome: "open", requestedAt: now, paidAt: paidAt, updatedAt: now}
	} else {
		r := &w.ins
		r.methodKind, r.destination, r.cardCountry = nz(c.MethodKind, r.methodKind), nz(c.Destination, r.destination), nz(country, r.cardCountry)
		r.paidAt, r.updatedAt = first(r.paidAt, paidAt), now
	}
	w.methodKind, w.destination, w.cardCountry = nz(c.MethodKind, w.methodKind), nz(c.Destination, w.destination), nz(country, w.cardCountry)
	w.paidAt, w.updatedAt = first(w.paidAt, paidAt), now
}

// eventTimes are the instants a status change sets: when a deposit's money
// arrived, when the transaction completed, when a deposit was declined.
func eventTimes(e funding.Event, ts int64) (paidAt, completedAt, declinedAt sql.NullInt64) {
	if e.Kind == funding.KindDeposit && paidStatus(e.To) {
		paidAt = micros(ts)
	}
	if e.To == "completed" {
		completedAt = micros(ts)
	}
	if e.Kind == funding.KindDeposit && (e.To == "declined" || e.To == "failed") {
		declinedAt = micros(ts)
	}
	return paidAt, completedAt, declinedAt
}

// paidStatus reports whether a deposit in status has its money.
func paidStatus(status string) bool {
	return status == "paid" || status == "crediting" || status == "completed"
}

// addEvent applies a status change, at ts (micros).
func (w *activityWrite) addEvent(e funding.Event, ts int64) {
	paidAt, completedAt, declinedAt := eventTimes(e, ts)
	cur := e.Amount.Currency().Code
	if !w.started {
		w.started = true
		w.ins = activityRow{userID: e.UserID, kind: e.Kind, methodID: e.MethodID, currency: cur, amount: e.Amount.Minor(),
			login: e.Login, status: e.To, outcome: outcome(e.To), confirmed: true, requestedAt: ts,
			paidAt: paidAt, completedAt: completedAt, declinedAt: declinedAt, updatedAt: ts}
	} else {
		r := &w.ins
		r.methodID, r.currency = nz(e.MethodID, r.methodID), nz(cur, r.currency)
		if cur != "" {
			r.amount = e.Amount.Minor()
		}
		r.status, r.outcome, r.confirmed = e.To, outcome(e.To), true
		r.paidAt, r.completedAt, r.declinedAt = first(r.paidAt, paidAt), first(r.completedAt, completedAt), first(r.declinedAt, declinedAt)
		r.updatedAt = ts
	}
	w.methodID, w.currency = nz(e.MethodID, w.methodID), nz(cur, w.currency)
	if cur != "" {
		w.hasAmount, w.amount = true, e.Amount.Minor()
	}
	w.event, w.status, w.outcome = true, e.To, outcome(e.To)
	w.paidAt, w.completedAt, w.declinedAt = first(w.paidAt, paidAt), first(w.completedAt, completedAt), first(w.declinedAt, declinedAt)
	w.updatedAt = ts
	w.events = append(w.events, timedEvent{e: e, ts: ts})
}

// matters reports whether a status change changes what the rules read in
// a row written before: the first report of a transaction confirms it; a
// change of outcome ('open', 'completed', 'failed') changes what the
// limits count; a deposit's money arriving sets paid_at; a move between
// pending, open and resolved changes the hold's state (see holdState).
// Anything else (a deposit's awaiting_payment after created; a
// withdrawal's debiting or held after requested, payout_sent after
// approved; a flag set or cleared) only renames the status.
func matters(e funding.Event) bool {
	switch {
	case e.From == "":
		return true
	case outcome(e.From) != outcome(e.To):
		return true
	case holdState(e.Kind, e.From) != holdState(e.Kind, e.To):
		return true
	case e.Kind == funding.KindDeposit && paidStatus(e.To) && !paidStatus(e.From):
		return true
	}
	return false
}

// activity returns the transaction's collected activity, making it (and
// registering its write before the commit) on first use.
func activity(tx *sqlstore.Tx) *pendingActivity {
	return tx.Local(activityKey{}, func() any {
		p := &pendingActivity{rows: map[string]*activityWrite{}}
		tx.BeforeCommit(sqlstore.StageDefault, p.flush)
		return p
	}).(*pendingActivity)
}

// row returns the write of row id, making it if create is set; nil when
// there is none and create is not set.
func (p *pendingActivity) row(id string, create bool) *activityWrite {
	w := p.rows[id]
	if w == nil && create {
		w = &activityWrite{id: id}
		p.rows[id] = w
		p.order = append(p.order, id)
	}
	return w
}

// flush writes every collected row and follows the holds of held
// transactions through the status changes collected for them.
func (p *pendingActivity) flush(ctx context.Context, tx *sqlstore.Tx) error {
	order, rows := p.order, p.rows
	p.order, p.rows = nil, map[string]*activityWrite{}
	for _, id := range order {
		w := rows[id]
		if !w.started {
			// Only marked held: the row was written earlier in the
			// transaction.
			if _, err := tx.Exec(ctx, `UPDATE compliance_activity SET held = 1 WHERE id = ?`, id); err != nil {
				return errs.Wrap("compliance.activity", err)
			}
			continue
		}
		held, err := w.write(ctx, tx)
		if err != nil {
			return errs.Wrap("compliance.activity", err)
		}
		if !held {
			continue
		}
		for _, te := range w.events {
			if err := moveHold(ctx, tx, te.e, te.ts); err != nil {
				return errs.Wrap("compliance.activity", err)
			}
		}
	}
	return nil
}

// write upserts the row and reports whether its transaction is held.
func (w *activityWrite) write(ctx context.Context, tx *sqlstore.Tx) (bool, error) {
	r := w.ins
	var held int
	err := tx.QueryRow(ctx, `INSERT INTO compliance_activity (id, user_id, kind, method_id, method_kind, currency, amount_minor, login,
		destination, card_country, status, outcome, confirmed, requested_at, paid_at, completed_at, declined_at, updated_at, held)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			method_id = CASE WHEN ? = '' THEN compliance_activity.method_id ELSE ? END,
			method_kind = CASE WHEN ? = '' THEN compliance_activity.method_kind ELSE ? END,
			currency = CASE WHEN ? = '' THEN compliance_activity.currency ELSE ? END,
			amount_minor = CASE WHEN ? = 0 THEN compliance_activity.amount_minor ELSE ? END,
			destination = CASE WHEN ? = '' THEN compliance_activity.destination ELSE ? END,
			card_country = CASE WHEN ? = '' THEN compliance_activity.card_country ELSE ? END,
			status = CASE WHEN ? = 0 THEN compliance_activity.status ELSE ? END,
			outcome = CASE WHEN ? = 0 THEN compliance_activity.outcome ELSE ? END,
			confirmed = CASE WHEN ? = 0 THEN compliance_activity.confirmed ELSE 1 END,
			paid_at = COALESCE(compliance_activity.paid_at, ?),
			completed_at = COALESCE(compliance_activity.completed_at, ?),
			declined_at = COALESCE(compliance_activity.declined_at, ?),
			updated_at = ?,
			held = CASE WHEN ? = 0 THEN compliance_activity.held ELSE 1 END
		RETURNING held`,
		w.id, r.userID, r.kind, r.methodID, r.methodKind, r.currency, r.amount, r.login,
		r.destination, r.cardCountry, r.status, r.outcome, boolInt(r.confirmed), r.requestedAt, r.paidAt, r.completedAt, r.declinedAt, r.updatedAt, boolInt(w.held),
		w.methodID, w.methodID, w.methodKind, w.methodKind, w.currency, w.currency, boolInt(w.hasAmount), w.amount,
		w.destination, w.destination, w.cardCountry, w.cardCountry, boolInt(w.event), w.status, boolInt(w.event), w.outcome,
		boolInt(w.event), w.paidAt, w.completedAt, w.declinedAt, w.updatedAt, boolInt(w.held)).Scan(&held)
	return held != 0, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// recordCheck collects what a screening's check tells about the
// transaction, written before the commit. A new row is not counted until
// funding's event confirms it (a request that loses a race to an identical
// one never is).
func recordCheck(tx *sqlstore.Tx, c funding.Check, now int64) {
	activity(tx).row(c.ID, true).addCheck(c, now)
}

// markHeld records that a rule held the transaction.
func markHeld(tx *sqlstore.Tx, id string) {
	activity(tx).row(id, true).held = true
}

// flushActivity writes what the transaction collected so far, for a
// screening that reads the record.
func flushActivity(ctx context.Context, tx *sqlstore.Tx) error {
	return activity(tx).flush(ctx, tx)
}

// OnFundingEvent is a funding.Hook: it records every status change of a
// deposit or withdrawal that matters to the rules in the user's activity
// (requests, payments, completions, declines; see matters) and moves the
// transaction's hold, if any, along the review queue (see Holds). The
// record is written once per transaction, before it commits. Events of
// other kinds or without a user are ignored. It returns no error itself;
// the write's database error, before the commit, rolls funding's change
// back.
func (s *Service) OnFundingEvent(ctx context.Context, tx *sqlstore.Tx, e funding.Event) error {
	if (e.Kind != funding.KindDeposit && e.Kind != funding.KindWithdrawal) || e.ID == "" || e.UserID == "" {
		return nil
	}
	at := e.At.UTC()
	if e.At.IsZero() {
		at = s.now()
	}
	p := activity(tx)
	w := p.row(e.ID, false)
	if w == nil {
		if !matters(e) {
			return nil
		}
		w = p.row(e.ID, true)
	}
	w.addEvent(e, sqlstore.Micros(at))
	return nil
}
