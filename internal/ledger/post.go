package ledger

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const transferColumns = "id, action, debit_account_id, credit_account_id, amount, currency, code, metadata, pending_id, expires_at, status, posted_at"

// Post posts the transfers as one linked batch: all of them or none. It
// returns the transfers as stored (with Status and PostedAt). A batch whose
// transfers all exist already with the same fields returns the originals.
//
// Errors: errs.Invalid for a malformed transfer; errs.NotFound for an
// unknown account or hold; errs.Conflict when an id was used with other
// fields, or a hold is already settled; errs.Expired when a hold has
// expired; errs.Insufficient when a transfer would take an account past a
// bound (the message names the account).
func (l *Ledger) Post(ctx context.Context, transfers ...Transfer) ([]Transfer, error) {
	var out []Transfer
	err := l.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		out, err = l.PostTx(ctx, tx, transfers...)
		return err
	})
	return out, err
}

// PostTx is Post inside the caller's transaction, so that booking money and
// enqueueing what follows from it commit together. It locks the bounded
// accounts it books on until the transaction ends, and the unbounded ones
// only when the accounts' sums are written: by a function it registers with
// tx.BeforeCommit (sqlstore.StageLedger), which fails the commit with
// errs.Invalid in the unlikely case that a sum would overflow. It returns
// the errors of Post.
func (l *Ledger) PostTx(ctx context.Context, tx *sqlstore.Tx, transfers ...Transfer) ([]Transfer, error) {
	const op = "ledger.Post"
	if len(transfers) == 0 {
		return nil, nil
	}
	now := l.clock.Now()
	ids := make([]string, len(transfers))
	seen := make(map[string]bool, len(transfers))
	settles := make(map[string]bool)
	for i := range transfers {
		t := &transfers[i]
		if t.Action == "" {
			t.Action = Post
		}
		if err := validateTransfer(*t); err != nil {
			return nil, err
		}
		if seen[t.ID] {
			return nil, errs.Ef(errs.Invalid, op, "transfer id %s appears twice in the batch", t.ID)
		}
		seen[t.ID] = true
		if t.PendingID != "" {
			if settles[t.PendingID] {
				return nil, errs.Ef(errs.Invalid, op, "hold %s is settled twice in the batch", t.PendingID)
			}
			settles[t.PendingID] = true
		}
		ids[i] = t.ID
	}

	existing, err := loadTransfers(ctx, tx, ids)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	if len(existing) > 0 {
		return replay(transfers, existing)
	}

	// Resolve holds for PostPending and VoidPending.
	holds := map[string]*Transfer{}
	var holdIDs []string
	for _, t := range transfers {
		if t.Action == PostPending || t.Action == VoidPending {
			holdIDs = append(holdIDs, t.PendingID)
		}
	}
	if len(holdIDs) > 0 {
		found, err := loadTransfers(ctx, tx, holdIDs, true)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		for _, h := range found {
			holds[h.ID] = &h // #nosec G601 -- Go 1.22+: h is a new variable in each iteration
		}
	}
	for i := range transfers {
		t := &transfers[i]
		if t.Action != PostPending && t.Action != VoidPending {
			continue
		}
		h := holds[t.PendingID]
		if err := resolveHold(t, h, now); err != nil {
			return nil, err
		}
	}

	if err := l.book(ctx, tx, transfers, holds, now); err != nil {
		return nil, err
	}
	return transfers, nil
}

// book books transfers whose holds (for PostPending, VoidPending and
// ExpirePending) are resolved and locked: it reads and locks the bounded
// accounts in id order, applies and checks the transfers, writes them,
// settles their holds and leaves the changes to the accounts' sums to be
// written before the commit (see deferred.go), then tells the observer.
func (l *Ledger) book(ctx context.Context, tx *sqlstore.Tx, transfers []Transfer, holds map[string]*Transfer, now time.Time) error {
	const op = "ledger.Post"
	var accIDs []string
	for _, t := range transfers {
		accIDs = append(accIDs, t.Debit, t.Credit)
	}
	slices.Sort(accIDs)
	accIDs = slices.Compact(accIDs)
	accs, deferred, err := l.bookingAccounts(ctx, tx, accIDs)
	if err != nil {
		return errs.Wrap(op, err)
	}
	before := make(map[string]sums, len(accs))
	for id, a := range accs {
		before[id] = a.sums
	}

	for i := range transfers {
		t := &transfers[i]
		d, c := accs[t.Debit], accs[t.Credit]
		if d.Currency != t.Amount.Currency() || c.Currency != t.Amount.Currency() {
			return errs.Ef(errs.Invalid, op, "transfer %s is in %s but account %s is in %s and %s in %s",
				t.ID, t.Amount.Currency().Code, d.ID, d.Currency.Code, c.ID, c.Currency.Code)
		}
		if err := apply(t, d, c, holds[t.PendingID]); err != nil {
			return err
		}
		t.PostedAt = now
	}
	deltas := make(map[string]sums, len(accs))
	for id, a := range accs {
		d, ok := minus(a.sums, before[id])
		if !ok {
			return errs.Ef(errs.Invalid, op, "the transfers would overflow account %s's totals", id)
		}
		deltas[id] = d
	}
	pending := pendingOf(tx)
	if err := pending.check(deltas); err != nil {
		return err
	}

	if err := insertTransfers(ctx, tx, transfers); err != nil {
		return errs.Wrap(op, err)
	}
	// The sums are written just before the commit (see deferred.go).
	pending.record(tx, deltas, deferred)
	for _, t := range transfers {
		if t.Action == PostPending || t.Action == VoidPending || t.Action == ExpirePending {
			settled := map[Action]Status{PostPending: StatusPosted, VoidPending: StatusVoided, ExpirePending: StatusExpired}[t.Action]
			if _, err := tx.Exec(ctx, "UPDATE ledger_transfers SET status = ? WHERE id = ? AND status = ?", string(settled), t.PendingID, string(StatusPending)); err != nil {
				return errs.Wrap(op, err)
			}
		}
	}
	if l.observer != nil {
		if err := l.observer(ctx, tx, transfers); err != nil {
			return errs.Wrap(op, err)
		}
	}
	return nil
}

func validateTransfer(t Transfer) error {
	const op = "ledger.Post"
	switch {
	case t.ID == "" || len(t.ID) > 128:
		return errs.E(errs.Invalid, op, "transfer id must be 1 to 128 bytes")
	case t.Action != Post && t.Action != Hold && t.Action != PostPending && t.Action != VoidPending:
		return errs.Ef(errs.Invalid, op, "transfer %s has unknown action %q", t.ID, t.Action)
	case t.Action == Post || t.Action == Hold:
		if t.Debit == "" || t.Credit == "" {
			return errs.Ef(errs.Invalid, op, "transfer %s needs a debit and a credit account", t.ID)
		}
		if t.Debit == t.Credit {
			return errs.Ef(errs.Invalid, op, "transfer %s debits and credits the same account", t.ID)
		}
		if t.Amount.Minor() <= 0 {
			return errs.Ef(errs.Invalid, op, "transfer %s amount must be positive", t.ID)
		}
		if t.PendingID != "" {
			return errs.Ef(errs.Invalid, op, "transfer %s: only post_pending and void_pending name a hold", t.ID)
		}
		if t.Action == Post && !t.ExpiresAt.IsZero() {
			return errs.Ef(errs.Invalid, op, "transfer %s: only a hold can expire", t.ID)
		}
	default: // PostPending, VoidPending
		if t.PendingID == "" {
			return errs.Ef(errs.Invalid, op, "transfer %s must name the hold it settles", t.ID)
		}
		if t.Amount.Minor() < 0 || (t.Action == VoidPending && t.Amount.Minor() != 0) {
			return errs.Ef(errs.Invalid, op, "transfer %s has an amount that does not fit its action", t.ID)
		}
		if !t.ExpiresAt.IsZero() {
			return errs.Ef(errs.Invalid, op, "transfer %s: only a hold can expire", t.ID)
		}
	}
	return nil
}

// resolveHold fills t from its hold h and checks that the hold can be settled.
func resolveHold(t *Transfer, h *Transfer, now time.Time) error {
	const op = "ledger.Post"
	if h == nil || h.Action != Hold {
		return errs.Ef(errs.NotFound, op, "hold %s not found", t.PendingID)
	}
	switch h.Status {
	case StatusPending:
	case StatusExpired:
		return errs.Ef(errs.Expired, op, "hold %s has expired", h.ID)
	default:
		return errs.Ef(errs.Conflict, op, "hold %s is already %s", h.ID, h.Status)
	}
	if !h.ExpiresAt.IsZero() && !now.Before(h.ExpiresAt) {
		return errs.Ef(errs.Expired, op, "hold %s has expired", h.ID)
	}
	if (t.Debit != "" && t.Debit != h.Debit) || (t.Credit != "" && t.Credit != h.Credit) {
		return errs.Ef(errs.Invalid, op, "transfer %s names other accounts than hold %s", t.ID, h.ID)
	}
	t.Debit, t.Credit = h.Debit, h.Credit
	switch {
	case t.Action == VoidPending, t.Action == PostPending && t.Amount.Minor() == 0:
		amt := h.Amount
		if t.Action == VoidPending {
			amt = money.Zero(h.Amount.Currency())
		}
		t.Amount = amt
	case t.Amount.Currency() != h.Amount.Currency():
		return errs.Ef(errs.Invalid, op, "transfer %s is in %s but hold %s is in %s", t.ID, t.Amount.Currency().Code, h.ID, h.Amount.Currency().Code)
	case t.Amount.Minor() > h.Amount.Minor():
		return errs.Ef(errs.Invalid, op, "transfer %s posts %s, more than hold %s holds (%s)", t.ID, t.Amount.Decimal(), h.ID, h.Amount.Decimal())
	}
	return nil
}

// apply moves t's money on the in-memory accounts and checks the bounds.
func apply(t *Transfer, d, c *Account, hold *Transfer) error {
	amt := t.Amount.Minor()
	dBefore, cBefore := *d, *c
	var ok bool
	switch t.Action {
	case Post:
		t.Status = StatusPosted
		ok = add(&d.debitsPosted, amt) && add(&c.creditsPosted, amt)
	case Hold:
		t.Status = StatusPending
		ok = add(&d.debitsPending, amt) && add(&c.creditsPending, amt)
	case PostPending:
		t.Status = StatusPosted
		held := hold.Amount.Minor()
		ok = add(&d.debitsPending, -held) && add(&c.creditsPending, -held) &&
			add(&d.debitsPosted, amt) && add(&c.creditsPosted, amt)
	case VoidPending, ExpirePending:
		t.Status = map[Action]Status{VoidPending: StatusVoided, ExpirePending: StatusExpired}[t.Action]
		held := hold.Amount.Minor()
		ok = add(&d.debitsPending, -held) && add(&c.creditsPending, -held)
	}
	if !ok {
		return errs.Ef(errs.Invalid, "ledger.Post", "transfer %s would overflow an account's totals", t.ID)
	}
	for _, pair := range [][2]*Account{{d, &dBefore}, {c, &cBefore}} {
		if err := checkBounds(t, pair[0], pair[1]); err != nil {
			return err
		}
	}
	return nil
}

// checkBounds fails if the transfer moved the account past a bound in the
// direction it moved. An account already outside a bound (bounds changed)
// may still receive transfers that bring it back.
func checkBounds(t *Transfer, after, before *Account) error {
	posted, out, in := after.normalised()
	pBefore, oBefore, iBefore := before.normalised()
	if after.Lower != nil && posted-out < *after.Lower && posted-out < pBefore-oBefore {
		return errs.Ef(errs.Insufficient, "ledger.Post", "transfer %s would take account %s below its lower bound (available %s, needs %s)",
			t.ID, after.ID, money.New(pBefore-oBefore, after.Currency).Decimal(), t.Amount.Decimal())
	}
	if after.Upper != nil && posted+in > *after.Upper && posted+in > pBefore+iBefore {
		return errs.Ef(errs.Insufficient, "ledger.Post", "transfer %s would take account %s above its upper bound", t.ID, after.ID)
	}
	return nil
}

func add(total *int64, delta int64) bool {
	if (delta > 0 && *total > math.MaxInt64-delta) || (delta < 0 && *total < math.MinInt64-delta) {
		return false
	}
	*total += delta
	return true
}

// replay answers a batch whose ids exist already: the same batch returns the
// stored transfers; anything else is a conflict.
func replay(transfers []Transfer, existing []Transfer) ([]Transfer, error) {
	const op = "ledger.Post"
	byID := make(map[string]Transfer, len(existing))
	for _, e := range existing {
		byID[e.ID] = e
	}
	out := make([]Transfer, len(transfers))
	for i, t := range transfers {
		e, ok := byID[t.ID]
		if !ok {
			return nil, errs.Ef(errs.Conflict, op, "batch reuses transfer id %s of an earlier batch but is not that batch", existing[0].ID)
		}
		if !sameRequest(t, e) {
			return nil, errs.Ef(errs.Conflict, op, "transfer %s exists with other fields", t.ID)
		}
		out[i] = e
	}
	return out, nil
}

// sameRequest compares what a caller asked for with what is stored, with the
// blanks a caller may leave for the ledger to fill.
func sameRequest(req, stored Transfer) bool {
	if req.Action != stored.Action || req.Code != stored.Code || req.Metadata != stored.Metadata ||
		req.PendingID != stored.PendingID || !req.ExpiresAt.Equal(stored.ExpiresAt) {
		return false
	}
	if (req.Debit != "" || stored.PendingID == "") && req.Debit != stored.Debit {
		return false
	}
	if (req.Credit != "" || stored.PendingID == "") && req.Credit != stored.Credit {
		return false
	}
	if req.Action == VoidPending || (req.Action == PostPending && req.Amount.Minor() == 0) {
		return true
	}
	return req.Amount == stored.Amount
}

// insertColumns are the columns insertTransfers writes, in order.
const insertColumns = "id, action, debit_account_id, credit_account_id, amount, currency, code, metadata, pending_id, expires_at, status, moves_balance, posted_at"

func transferArgs(t Transfer) []any {
	var pending any
	if t.PendingID != "" {
		pending = t.PendingID
	}
	moves := 0
	if t.Action == Post || t.Action == PostPending {
		moves = 1
	}
	return []any{t.ID, string(t.Action), t.Debit, t.Credit, t.Amount.Minor(), t.Amount.Currency().Code,
		t.Code, t.Metadata, pending, sqlstore.NullMicros(t.ExpiresAt), string(t.Status), moves, sqlstore.Micros(t.PostedAt)}
}

// insertTransfers writes the transfers. On SQLite, in process, one prepared
// single-row statement is cheapest (parsing a statement of hundreds of rows
// costs more than stepping a prepared one); on PostgreSQL, where each
// statement is a round trip, multi-row statements of up to 400 rows are.
func insertTransfers(ctx context.Context, tx *sqlstore.Tx, ts []Transfer) error {
	const cols = 13
	if tx.Dialect() == sqlstore.SQLite && len(ts) > 1 {
		stmt, err := tx.Prepare(ctx, "INSERT INTO ledger_transfers ("+insertColumns+") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, t := range ts {
			if _, err := stmt.ExecContext(ctx, transferArgs(t)...); err != nil {
				return err
			}
		}
		return nil
	}
	for start := 0; start < len(ts); start += 400 {
		chunk := ts[start:min(start+400, len(ts))]
		args := make([]any, 0, len(chunk)*cols)
		q := make([]byte, 0, 64+len(chunk)*32)
		q = append(q, "INSERT INTO ledger_transfers ("+insertColumns+") VALUES "...)
		for i, t := range chunk {
			if i > 0 {
				q = append(q, ',')
			}
			q = append(q, "(?,?,?,?,?,?,?,?,?,?,?,?,?)"...)
			args = append(args, transferArgs(t)...)
		}
		if _, err := tx.Exec(ctx, string(q), args...); err != nil {
			return err
		}
	}
	return nil
}

func loadTransfers(ctx context.Context, tx *sqlstore.Tx, ids []string, forUpdate ...bool) ([]Transfer, error) {
	var out []Transfer
	lock := ""
	if len(forUpdate) > 0 && forUpdate[0] {
		lock = tx.ForUpdate()
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		rows, err := tx.Query(ctx, "SELECT "+transferColumns+" FROM ledger_transfers WHERE id IN ("+placeholders(len(chunk))+") ORDER BY id"+lock, anySlice(chunk)...)
		if err != nil {
			return nil, err
		}
		ts, err := scanTransfers(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func scanTransfers(rows *sql.Rows) ([]Transfer, error) {
	defer rows.Close()
	var out []Transfer
	for rows.Next() {
		var (
			t              Transfer
			action, status string
			amount         int64
			cur            string
			pending        sql.NullString
			expires        sql.NullInt64
			posted         int64
		)
		if err := rows.Scan(&t.ID, &action, &t.Debit, &t.Credit, &amount, &cur, &t.Code, &t.Metadata, &pending, &expires, &status, &posted); err != nil {
			return nil, err
		}
		c, err := money.LookupCurrency(cur)
		if err != nil {
			return nil, err
		}
		t.Action, t.Status, t.Amount = Action(action), Status(status), money.New(amount, c)
		t.PendingID, t.ExpiresAt, t.PostedAt = pending.String, sqlstore.FromNullMicros(expires), sqlstore.FromMicros(posted)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Transfer returns one transfer by id, or errs.NotFound.
func (l *Ledger) Transfer(ctx context.Context, id string) (Transfer, error) {
	rows, err := l.db.Query(ctx, "SELECT "+transferColumns+" FROM ledger_transfers WHERE id = ?", id)
	if err != nil {
		return Transfer{}, errs.Wrap("ledger.Transfer", err)
	}
	ts, err := scanTransfers(rows)
	if err != nil {
		return Transfer{}, errs.Wrap("ledger.Transfer", err)
	}
	if len(ts) == 0 {
		return Transfer{}, errs.Ef(errs.NotFound, "ledger.Transfer", "transfer %s not found", id)
	}
	return ts[0], nil
}

// ExpireDue releases holds whose expiry has passed, at most limit of them,
// and returns how many it released. Each release is an ExpirePending
// transfer with id "expire:" + the hold's id, so running it twice is safe.
func (l *Ledger) ExpireDue(ctx context.Context, limit int) (int, error) {
	const op = "ledger.ExpireDue"
	now := l.clock.Now()
	rows, err := l.db.Query(ctx, "SELECT "+transferColumns+" FROM ledger_transfers WHERE status = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?",
		string(StatusPending), sqlstore.Micros(now), limit)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	due, err := scanTransfers(rows)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	n := 0
	for _, h := range due {
		expired := false
		err := l.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			expired = false
			found, err := loadTransfers(ctx, tx, []string{h.ID}, true)
			if err != nil || len(found) == 0 || found[0].Status != StatusPending {
				return err
			}
			t := Transfer{ID: "expire:" + h.ID, Action: ExpirePending, PendingID: h.ID, Debit: h.Debit, Credit: h.Credit,
				Amount: money.Zero(h.Amount.Currency()), Code: "hold.expired"}
			if err := l.book(ctx, tx, []Transfer{t}, map[string]*Transfer{h.ID: &found[0]}, now); err != nil {
				return err
			}
			expired = true
			return nil
		})
		if err != nil {
			return n, errs.Wrap(op, err)
		}
		if expired {
			n++
		}
	}
	return n, nil
}
