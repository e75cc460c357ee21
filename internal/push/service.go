package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// JobKind is the kind of the job that delivers and resolves pushes.
const JobKind = "platform.push"

// Owner is told when one of its pushes settles. PushSettled runs inside the
// transaction that records the final state; if it fails, the transition is
// rolled back and retried later. p.State.WasApplied() tells the outcome.
type Owner interface {
	PushSettled(ctx context.Context, tx *sqlstore.Tx, p Push) error
}

// OwnerFunc adapts a function to Owner.
type OwnerFunc func(ctx context.Context, tx *sqlstore.Tx, p Push) error

// PushSettled calls f.
func (f OwnerFunc) PushSettled(ctx context.Context, tx *sqlstore.Tx, p Push) error {
	return f(ctx, tx, p)
}

// Options configures a Service.
type Options struct {
	Clock clock.Clock
	// SendTimeout bounds one call to the platform (default 10 s).
	SendTimeout time.Duration
	// LookupMargin is added to SendTimeout before an in-doubt push is looked
	// up, so that a request still travelling cannot land after a look-up
	// found nothing (default 30 s).
	LookupMargin time.Duration
	// RetryAfter is the delay before a push proved not applied is sent
	// again the first time — after a refusal that applied nothing and may
	// pass later, or after a look-up that found nothing once an ambiguous
	// answer could no longer land. Each later resend of the push waits twice
	// as long as the one before, up to RetryMaxDelay (default 30 s).
	RetryAfter time.Duration
	// RetryMaxDelay caps the delay between two sends of a push (default
	// 10 min).
	RetryMaxDelay time.Duration
	// MaxSends bounds the calls made to the platform for one push; 1 never
	// sends a push again (default 10).
	MaxSends int
	// ResendWindow bounds how long after its first send a push may still be
	// sent again (default 1 h). A push proved not applied with no send left
	// within MaxSends and ResendWindow ends: rejected after a refusal,
	// resolved_not_applied after a look-up.
	ResendWindow time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Service creates, delivers and resolves pushes.
type Service struct {
	db      *sqlstore.DB
	conn    platform.Connector
	opts    Options
	log     *slog.Logger
	mu      sync.RWMutex
	owners  map[string]Owner
	metrics *metrics
}

// New returns a Service that delivers through conn.
func New(db *sqlstore.DB, conn platform.Connector, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 10 * time.Second
	}
	if opts.LookupMargin <= 0 {
		opts.LookupMargin = 30 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 30 * time.Second
	}
	if opts.RetryMaxDelay <= 0 {
		opts.RetryMaxDelay = 10 * time.Minute
	}
	if opts.MaxSends <= 0 {
		opts.MaxSends = 10
	}
	if opts.ResendWindow <= 0 {
		opts.ResendWindow = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{db: db, conn: conn, opts: opts, log: opts.Logger, owners: map[string]Owner{}, metrics: newMetrics(opts.Registerer)}
}

// RegisterOwner sets the hook for pushes whose Owner is name.
func (s *Service) RegisterOwner(name string, o Owner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owners[name] = o
}

// Register adds the push job handler to a runner.
func (s *Service) Register(r *jobs.Runner) { r.Handle(JobKind, s.handle) }

type jobPayload struct {
	PushID string `json:"pushId"`
}

// EnqueueTx creates a push and its delivery job inside the caller's
// transaction (the one that books the money). A second call with the same
// id and the same change returns the existing push; with another change it
// fails with errs.Conflict. An invalid change fails with errs.Invalid.
func (s *Service) EnqueueTx(ctx context.Context, tx *sqlstore.Tx, req Request) (Push, error) {
	const op = "push.Enqueue"
	req.Change.ExternalID = req.ID
	if err := req.Change.Validate(); err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	if req.ID == "" || len(req.ID) > 64 || req.Owner == "" {
		return Push{}, errs.E(errs.Invalid, op, "a push needs an id of at most 64 bytes and an owner")
	}
	if existing, err := getPush(ctx, tx, req.ID, false); err == nil {
		if existing.Owner != req.Owner || existing.OwnerID != req.OwnerID || existing.Change != req.Change {
			return Push{}, errs.Ef(errs.Conflict, op, "push %s exists with another change", req.ID)
		}
		return existing, nil
	} else if !errs.Is(err, errs.NotFound) {
		return Push{}, errs.Wrap(op, err)
	}
	now := s.opts.Clock.Now()
	c := req.Change
	if _, err := tx.Exec(ctx, `INSERT INTO pushes (id, owner, owner_id, login, change_type, amount, currency, comment, external_note, source, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		req.ID, req.Owner, req.OwnerID, c.Login, string(c.Type), c.Amount.Minor(), c.Amount.Currency().Code, c.Comment, c.ExternalNote, c.Source,
		string(Queued), sqlstore.Micros(now), sqlstore.Micros(now)); err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	if err := addEvent(ctx, tx, req.ID, now, "", Queued, fmt.Sprintf("%s %s to login %d", c.Type, c.Amount, c.Login)); err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	if _, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: JobKind, Payload: jobPayload{PushID: req.ID}, DedupKey: req.ID, MaxAttempts: 1000}); err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	s.metrics.transition("", Queued)
	return getPush(ctx, tx, req.ID, false)
}

// handle is the job handler: it moves one push as far as it can go now.
func (s *Service) handle(ctx context.Context, j jobs.Job) error {
	var pl jobPayload
	if err := decodePayload(j.Payload, &pl); err != nil {
		return jobs.Permanent(err)
	}
	p, err := s.Get(ctx, pl.PushID)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return jobs.Permanent(err)
		}
		return err
	}
	switch p.State {
	case Queued:
		if wait := p.SendAfter.Sub(s.opts.Clock.Now()); wait > 0 {
			return jobs.Retry(wait, errs.Ef(errs.Unavailable, "push.send", "push %s is sent again after %s", p.ID, p.SendAfter.Format(time.RFC3339)))
		}
		return s.send(ctx, p)
	case Sending:
		// A worker stopped (crash, lost lease, shutdown) between committing
		// sending and recording the answer: the call may have landed.
		p, err = s.markInDoubt(ctx, p, fmt.Sprintf("the worker stopped while sending (send %d began %s); the platform may or may not have applied it",
			p.Sends, p.SendingAt.Format(time.RFC3339Nano)))
		if err != nil {
			return err
		}
		return s.resolveByLookup(ctx, p)
	case InDoubt:
		return s.resolveByLookup(ctx, p)
	default:
		return nil // final: nothing to do
	}
}

func (s *Service) send(ctx context.Context, p Push) error {
	const op = "push.send"
	now := s.opts.Clock.Now()
	// Commit sending before the call: from here on a crash means in doubt.
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE pushes SET state = ?, sends = sends + 1, sending_at = ?, first_sending_at = COALESCE(first_sending_at, ?),
			send_after = NULL, updated_at = ? WHERE id = ? AND state = ?`,
			string(Sending), sqlstore.Micros(now), sqlstore.Micros(now), sqlstore.Micros(now), p.ID, string(Queued))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.Ef(errs.Conflict, op, "push %s left state queued", p.ID)
		}
		return addEvent(ctx, tx, p.ID, now, Queued, Sending, fmt.Sprintf("send %d of at most %d", p.Sends+1, s.opts.MaxSends))
	})
	if err != nil {
		return errs.Wrap(op, err)
	}
	s.metrics.transition(Queued, Sending)
	p.Sends++
	p.SendingAt = now
	if p.FirstSendingAt.IsZero() {
		p.FirstSendingAt = now
	}

	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.SendTimeout)
	started := time.Now()
	receipt, callErr := s.conn.ChangeBalance(callCtx, p.Change)
	cancel()
	elapsed := time.Since(started)
	// Record the answer even if our own context ended meanwhile.
	rec := context.WithoutCancel(ctx)

	var rejected *platform.RejectedError
	switch {
	case callErr == nil:
		return s.settle(rec, p, Sending, Applied, receipt.BalanceHistoryID, "lookup",
			fmt.Sprintf("applied: balanceHistoryId %d after %s", receipt.BalanceHistoryID, elapsed.Round(time.Millisecond)))
	case errors.As(callErr, &rejected) && rejected.Retryable:
		detail := fmt.Sprintf("refused, nothing applied, may succeed later: %v", callErr)
		if delay, ok := s.resendDelay(p); ok {
			return s.sendAgain(rec, p, Sending, delay, detail, callErr)
		}
		return s.settle(rec, p, Sending, Rejected, 0, "platform", detail+"; "+s.noSendLeft(p))
	case errors.As(callErr, &rejected):
		return s.settle(rec, p, Sending, Rejected, 0, "platform", fmt.Sprintf("rejected, nothing applied: %v", callErr))
	default:
		evidence := fmt.Sprintf("send %d at %s: no definite answer after %s: %v", p.Sends, now.Format(time.RFC3339Nano), elapsed.Round(time.Millisecond), callErr)
		var amb *platform.AmbiguousError
		if errors.As(callErr, &amb) && amb.Evidence != "" {
			evidence += " (" + amb.Evidence + ")"
		}
		p, err := s.markInDoubt(rec, p, evidence)
		if err != nil {
			return err
		}
		return s.resolveByLookup(rec, p)
	}
}

// markInDoubt moves a sending push to in_doubt with evidence, and sets when
// it may be looked up.
func (s *Service) markInDoubt(ctx context.Context, p Push, evidence string) (Push, error) {
	lookupAfter := p.SendingAt.Add(s.opts.SendTimeout + s.opts.LookupMargin)
	if err := s.transition(ctx, p.ID, Sending, InDoubt, evidence, func(tx *sqlstore.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE pushes SET evidence = evidence || ?, lookup_after = ? WHERE id = ?", evidence+"\n", sqlstore.Micros(lookupAfter), p.ID)
		return err
	}); err != nil {
		return Push{}, err
	}
	s.log.WarnContext(ctx, "push in doubt", "push", p.ID, "login", p.Change.Login, "evidence", evidence)
	return s.Get(ctx, p.ID)
}

// resolveByLookup settles an in-doubt push by asking the platform for our
// id, once the original request can no longer land. Without a look-up the
// push waits for an operator.
func (s *Service) resolveByLookup(ctx context.Context, p Push) error {
	lookup, ok := s.conn.(platform.ChangeLookup)
	if !ok {
		return nil // an operator decides
	}
	if wait := p.LookupAfter.Sub(s.opts.Clock.Now()); wait > 0 {
		return jobs.Retry(wait, errs.Ef(errs.Unavailable, "push.lookup", "push %s is looked up after %s", p.ID, p.LookupAfter.Format(time.RFC3339)))
	}
	callCtx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	receipt, found, err := lookup.FindChange(callCtx, p.Change.Login, p.ID)
	cancel()
	switch {
	case errors.Is(err, platform.ErrLookupUnsupported):
		s.log.WarnContext(ctx, "push in doubt needs an operator: the platform has no look-up", "push", p.ID)
		return nil
	case err != nil:
		return err // the job retries with backoff
	case found:
		return s.settle(ctx, p, InDoubt, ResolvedApplied, receipt.BalanceHistoryID, "lookup",
			fmt.Sprintf("look-up found externalId %s: balanceHistoryId %d", p.ID, receipt.BalanceHistoryID))
	default:
		detail := fmt.Sprintf("look-up after %s found no change with externalId %s: not applied", p.LookupAfter.Format(time.RFC3339), p.ID)
		if delay, ok := s.resendDelay(p); ok {
			return s.sendAgain(ctx, p, InDoubt, delay, detail, nil)
		}
		return s.settle(ctx, p, InDoubt, ResolvedNotApplied, 0, "lookup", detail+"; "+s.noSendLeft(p))
	}
}

// resendDelay returns how long to wait before sending p again after its
// send number p.Sends was proved not applied: RetryAfter doubled per earlier
// resend, at most RetryMaxDelay. It returns false when MaxSends sends were
// made or the next send would begin after ResendWindow from the first.
func (s *Service) resendDelay(p Push) (time.Duration, bool) {
	if p.Sends >= s.opts.MaxSends {
		return 0, false
	}
	delay := s.opts.RetryAfter
	for i := 1; i < p.Sends && delay < s.opts.RetryMaxDelay; i++ {
		delay *= 2
	}
	delay = min(delay, s.opts.RetryMaxDelay)
	first := p.FirstSendingAt
	if first.IsZero() {
		first = p.CreatedAt
	}
	if s.opts.Clock.Now().Add(delay).After(first.Add(s.opts.ResendWindow)) {
		return 0, false
	}
	return delay, true
}

// noSendLeft says why a push proved not applied is not sent again.
func (s *Service) noSendLeft(p Push) string {
	return fmt.Sprintf("no send left: %d of at most %d made, the first at %s (resends within %s of it)",
		p.Sends, s.opts.MaxSends, p.FirstSendingAt.Format(time.RFC3339), s.opts.ResendWindow)
}

// sendAgain moves a push proved not applied (from sending after a refusal,
// or from in_doubt after a look-up) back to queued, to be sent again with
// the same id after delay. cause, if not nil, is the refusal.
func (s *Service) sendAgain(ctx context.Context, p Push, from State, delay time.Duration, detail string, cause error) error {
	sendAfter := s.opts.Clock.Now().Add(delay)
	detail += fmt.Sprintf("; send %d of at most %d after %s", p.Sends+1, s.opts.MaxSends, delay)
	if err := s.transition(ctx, p.ID, from, Queued, detail, func(tx *sqlstore.Tx) error {
		q, args := "UPDATE pushes SET send_after = ? WHERE id = ?", []any{sqlstore.Micros(sendAfter), p.ID}
		if from == InDoubt {
			q, args = "UPDATE pushes SET send_after = ?, evidence = evidence || ? WHERE id = ?", []any{sqlstore.Micros(sendAfter), detail + "\n", p.ID}
		}
		_, err := tx.Exec(ctx, q, args...)
		return err
	}); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "push proved not applied; sending it again", "push", p.ID, "sends", p.Sends, "after", delay, "detail", detail)
	if cause == nil {
		cause = errs.Ef(errs.Unavailable, "push.send", "push %s proved not applied; sent again after %s", p.ID, delay)
	}
	return jobs.Retry(delay, cause)
}

// Resolve lets an operator settle an in-doubt push: applied says whether the
// platform holds the change. It fails with errs.Conflict unless the push is
// in doubt, errs.NotFound for an unknown push, errs.Invalid without an
// operator name.
func (s *Service) Resolve(ctx context.Context, id string, applied bool, operator, note string) (Push, error) {
	const op = "push.Resolve"
	if strings.TrimSpace(operator) == "" {
		return Push{}, errs.E(errs.Invalid, op, "an operator name is required")
	}
	p, err := s.Get(ctx, id)
	if err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	if p.State != InDoubt {
		return Push{}, errs.Ef(errs.Conflict, op, "push %s is %s, not in doubt", id, p.State)
	}
	to, detail := ResolvedNotApplied, "operator "+operator+" confirmed not applied"
	if applied {
		to, detail = ResolvedApplied, "operator "+operator+" confirmed applied"
	}
	if note != "" {
		detail += ": " + note
	}
	if err := s.settle(ctx, p, InDoubt, to, 0, "operator:"+operator, detail); err != nil {
		return Push{}, errs.Wrap(op, err)
	}
	return s.Get(ctx, id)
}

// settle records a final state and calls the owner in the same transaction.
func (s *Service) settle(ctx context.Context, p Push, from, to State, historyID int64, by, detail string) error {
	err := s.transition(ctx, p.ID, from, to, detail, func(tx *sqlstore.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE pushes SET balance_history_id = ?, resolved_by = ? WHERE id = ?", nullZero(historyID), by, p.ID); err != nil {
			return err
		}
		settled, err := getPush(ctx, tx, p.ID, false)
		if err != nil {
			return err
		}
		s.mu.RLock()
		owner := s.owners[p.Owner]
		s.mu.RUnlock()
		if owner == nil {
			return errs.Ef(errs.Internal, "push.settle", "no owner hook registered for %q", p.Owner)
		}
		return owner.PushSettled(ctx, tx, settled)
	})
	if err == nil {
		s.log.InfoContext(ctx, "push settled", "push", p.ID, "state", to, "detail", detail)
	}
	return err
}

// transition moves a push from one state to another (only if it is still in
// from), records the event and runs extra in the same transaction.
func (s *Service) transition(ctx context.Context, id string, from, to State, detail string, extra func(tx *sqlstore.Tx) error) error {
	const op = "push.transition"
	now := s.opts.Clock.Now()
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE pushes SET state = ?, updated_at = ? WHERE id = ? AND state = ?", string(to), sqlstore.Micros(now), id, string(from))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.Ef(errs.Conflict, op, "push %s is no longer %s", id, from)
		}
		if err := addEvent(ctx, tx, id, now, from, to, detail); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		return errs.Wrap(op, err)
	}
	s.metrics.transition(from, to)
	return nil
}

func addEvent(ctx context.Context, tx *sqlstore.Tx, id string, at time.Time, from, to State, detail string) error {
	_, err := tx.Exec(ctx, "INSERT INTO push_events (push_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
		id, sqlstore.Micros(at), string(from), string(to), detail)
	return err
}

func nullZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

const pushColumns = "id, owner, owner_id, login, change_type, amount, currency, comment, external_note, source, state, sends, balance_history_id, evidence, sending_at, lookup_after, first_sending_at, send_after, resolved_by, created_at, updated_at"

type rowQuerier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type scanner interface{ Scan(dest ...any) error }

func scanPush(row scanner) (Push, error) {
	var (
		p                Push
		changeType, cur  string
		amount           int64
		state            string
		history          sql.NullInt64
		sending, lookup  sql.NullInt64
		first, after     sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&p.ID, &p.Owner, &p.OwnerID, &p.Change.Login, &changeType, &amount, &cur, &p.Change.Comment, &p.Change.ExternalNote,
		&p.Change.Source, &state, &p.Sends, &history, &p.Evidence, &sending, &lookup, &first, &after, &p.ResolvedBy, &created, &updated); err != nil {
		return Push{}, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return Push{}, err
	}
	p.Change.Type, p.Change.Amount, p.Change.ExternalID = platform.ChangeType(changeType), money.New(amount, c), p.ID
	p.State, p.BalanceHistoryID = State(state), history.Int64
	p.SendingAt, p.LookupAfter = sqlstore.FromNullMicros(sending), sqlstore.FromNullMicros(lookup)
	p.FirstSendingAt, p.SendAfter = sqlstore.FromNullMicros(first), sqlstore.FromNullMicros(after)
	p.CreatedAt, p.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
	return p, nil
}

func getPush(ctx context.Context, q rowQuerier, id string, _ bool) (Push, error) {
	p, err := scanPush(q.QueryRow(ctx, "SELECT "+pushColumns+" FROM pushes WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Push{}, errs.Ef(errs.NotFound, "push.Get", "push %s not found", id)
	}
	return p, err
}

// Get returns a push, or errs.NotFound.
func (s *Service) Get(ctx context.Context, id string) (Push, error) {
	p, err := getPush(ctx, s.db, id, false)
	return p, errs.Wrap("push.Get", err)
}

// List returns pushes, newest first, optionally only those in state (all
// when empty), at most limit.
func (s *Service) List(ctx context.Context, state State, limit int) ([]Push, error) {
	const op = "push.List"
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + pushColumns + " FROM pushes"
	args := []any{}
	if state != "" {
		q += " WHERE state = ?"
		args = append(args, string(state))
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	rows, err := s.db.Query(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Push
	for rows.Next() {
		p, err := scanPush(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, p)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Events returns the recorded transitions of a push, oldest first.
func (s *Service) Events(ctx context.Context, id string) ([]Event, error) {
	const op = "push.Events"
	rows, err := s.db.Query(ctx, "SELECT at, from_state, to_state, detail FROM push_events WHERE push_id = ? ORDER BY at", id)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var from, to string
		if err := rows.Scan(&at, &from, &to, &e.Detail); err != nil {
			return nil, errs.Wrap(op, err)
		}
		e.At, e.From, e.To = sqlstore.FromMicros(at), State(from), State(to)
		out = append(out, e)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Counts returns how many pushes are in each state.
func (s *Service) Counts(ctx context.Context) (map[State]int, error) {
	rows, err := s.db.Query(ctx, "SELECT state, COUNT(*) FROM pushes GROUP BY state")
	if err != nil {
		return nil, errs.Wrap("push.Counts", err)
	}
	defer rows.Close()
	out := map[State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, errs.Wrap("push.Counts", err)
		}
		out[State(st)] = n
	}
	return out, errs.Wrap("push.Counts", rows.Err())
}
