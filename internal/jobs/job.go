package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// State is where a job is in its life (see the package documentation).
type State string

// The states of a job.
const (
	Queued  State = "queued"  // waiting until it is due, then claimed by a runner
	Running State = "running" // claimed by a runner, under a lease
	Done    State = "done"    // its handler succeeded
	Dead    State = "dead"    // no attempts left, or failed permanently; kept for an operator
)

// States lists every state in life order.
var States = []State{Queued, Running, Done, Dead}

// Job is a job as stored. Handlers receive it with State Running and
// Attempt counting the current attempt (1 for the first).
type Job struct {
	ID          string
	Kind        string
	Payload     json.RawMessage
	Attempt     int // attempts started so far, including the current one
	MaxAttempts int
	DedupKey    string
	CreatedAt   time.Time // wall-clock time of Enqueue

	State State
	// RunAt is when a queued job becomes due; zero means as soon as
	// possible. It is zero in other states.
	RunAt time.Time
	// LeaseUntil is when a running job's lease ends (by the runner's
	// clock); zero in other states.
	LeaseUntil time.Time
	// LastError is the text of the latest failure, kept after a later
	// success so the history stays visible.
	LastError string
	// WorkerID names the runner that claimed the job last.
	WorkerID string
	// ClaimedAt is when the job was claimed last; FinishedAt is when it
	// became done or dead (both by the runner's clock).
	ClaimedAt  time.Time
	FinishedAt time.Time
}

const jobColumns = `id, kind, payload, attempt, max_attempts, dedup_key, created_at,
	state, due_at, last_error, worker_id, claimed_at, finished_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(row rowScanner) (Job, error) {
	var (
		j                      Job
		payload                string
		dedup, lastErr, worker sql.NullString
		created, due           int64
		claimed, finished      sql.NullInt64
	)
	if err := row.Scan(&j.ID, &j.Kind, &payload, &j.Attempt, &j.MaxAttempts, &dedup, &created,
		&j.State, &due, &lastErr, &worker, &claimed, &finished); err != nil {
		return Job{}, err
	}
	j.Payload = json.RawMessage(payload)
	j.DedupKey = dedup.String
	j.CreatedAt = sqlstore.FromMicros(created)
	j.LastError = lastErr.String
	j.WorkerID = worker.String
	j.ClaimedAt = sqlstore.FromNullMicros(claimed)
	j.FinishedAt = sqlstore.FromNullMicros(finished)
	switch {
	case j.State == Queued && due != 0:
		j.RunAt = sqlstore.FromMicros(due)
	case j.State == Running:
		j.LeaseUntil = sqlstore.FromMicros(due)
	}
	return j, nil
}

// Get returns the job with the given id. It returns errs.NotFound if there
// is none.
func Get(ctx context.Context, db *sqlstore.DB, id string) (Job, error) {
	const op = "jobs.Get"
	j, err := scanJob(db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, errs.Ef(errs.NotFound, op, "no job %q", id)
	}
	if err != nil {
		return Job{}, errs.Wrap(op, err)
	}
	return j, nil
}

// Filter selects jobs for List. Empty fields match everything.
type Filter struct {
	Kind     string
	State    State
	DedupKey string
	// BeforeID pages backwards: only jobs with a smaller (older) id.
	BeforeID string
	// Limit caps the result; zero means 50, and at most 1000 are returned.
	Limit int
}

// List returns the jobs that match f, newest first. It returns errs.Invalid
// for an unknown state or a negative limit.
func List(ctx context.Context, db *sqlstore.DB, f Filter) ([]Job, error) {
	const op = "jobs.List"
	var (
		where []string
		args  []any
	)
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.State != "" {
		if !f.State.valid() {
			return nil, errs.Ef(errs.Invalid, op, "unknown job state %q", f.State)
		}
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.DedupKey != "" {
		where, args = append(where, "dedup_key = ?"), append(args, f.DedupKey)
	}
	if f.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, errs.E(errs.Invalid, op, "limit must not be negative")
	case limit == 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	q := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := db.Query(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	return out, nil
}

// Stats counts the jobs in each state; every state is present in the map.
// It returns a wrapped database error if the query fails.
func Stats(ctx context.Context, db *sqlstore.DB) (map[State]int, error) {
	const op = "jobs.Stats"
	rows, err := db.Query(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	out := make(map[State]int, len(States))
	for _, s := range States {
		out[s] = 0
	}
	for rows.Next() {
		var (
			s State
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	return out, nil
}

// Requeue gives a dead job a fresh set of attempts: it becomes queued, due as
// soon as possible, with its attempt count reset to zero and its last error
// kept. It is the operator's "try again" after fixing the cause. It returns
// errs.NotFound for an unknown id and errs.Conflict if the job is not dead.
func Requeue(ctx context.Context, db *sqlstore.DB, id string) error {
	const op = "jobs.Requeue"
	res, err := db.Exec(ctx, `UPDATE jobs SET state = 'queued', attempt = 0, due_at = 0,
		claim_token = NULL, finished_at = NULL WHERE id = ? AND state = 'dead'`, id)
	if err != nil {
		return errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n == 1 {
		return nil
	}
	j, err := Get(ctx, db, id)
	if err != nil {
		return errs.Wrap(op, err)
	}
	return errs.Ef(errs.Conflict, op, "job %s is %s, only dead jobs can be requeued", id, j.State)
}

// Purge deletes up to limit done jobs that finished before the given time
// (by the runners' clock) and returns how many it deleted. Dead jobs are
// never purged. A purged job's dedup key is free again. It returns
// errs.Invalid for a limit below 1 and a wrapped database error otherwise.
func Purge(ctx context.Context, db *sqlstore.DB, finishedBefore time.Time, limit int) (int, error) {
	const op = "jobs.Purge"
	if limit < 1 {
		return 0, errs.E(errs.Invalid, op, "limit must be at least 1")
	}
	res, err := db.Exec(ctx, `DELETE FROM jobs WHERE id IN (
		SELECT id FROM jobs WHERE state = 'done' AND finished_at < ? ORDER BY finished_at LIMIT ?)`,
		sqlstore.Micros(finishedBefore), limit)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	return int(n), nil
}

func (s State) valid() bool {
	switch s {
	case Queued, Running, Done, Dead:
		return true
	}
	return false
}
