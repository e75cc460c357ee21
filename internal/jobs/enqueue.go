package jobs

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// DefaultMaxAttempts is the number of attempts a job gets when NewJob leaves
// MaxAttempts at zero.
const DefaultMaxAttempts = 10

// Limits on what Enqueue accepts.
const (
	maxKindLen     = 100
	maxDedupKeyLen = 200
)

// NewJob is a job to enqueue.
type NewJob struct {
	// Kind selects the handler (Runner.Handle). Required, at most 100 bytes.
	Kind string
	// Payload is marshalled to JSON; a json.RawMessage is stored as is
	// (it must be valid JSON). Nil is stored as JSON null.
	Payload any
	// DedupKey is optional. While a job with the same Kind and DedupKey
	// exists (in any state, until Purge removes it), a second Enqueue
	// returns the first job's id and enqueues nothing.
	DedupKey string
	// RunAt is the earliest time the job may run. Zero means as soon as
	// possible: such a job is due whatever a runner's clock says, and is
	// claimed before jobs scheduled for a time.
	RunAt time.Time
	// MaxAttempts bounds the attempts, counting the first; zero means
	// DefaultMaxAttempts.
	MaxAttempts int
}

// Enqueue inserts a job inside the caller's transaction, so the job exists
// if and only if the transaction commits (the outbox pattern). Call
// tx.AfterCommit(runner.Notify) to wake a local runner at once; other
// runners find the job at their next poll.
//
// The id is "job_" followed by a UUIDv7, so ids sort by creation time. With
// a DedupKey that is already taken for the kind, Enqueue returns the existing
// job's id and inserts nothing. It returns errs.Invalid for an empty or
// over-long kind or dedup key, a negative MaxAttempts or a payload that is
// not JSON, and a wrapped database error otherwise.
func Enqueue(ctx context.Context, tx *sqlstore.Tx, j NewJob) (string, error) {
	const op = "jobs.Enqueue"
	if err := validate(j); err != nil {
		return "", err
	}
	payload, err := marshalPayload(j.Payload)
	if err != nil {
		return "", err
	}
	maxAttempts := j.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = DefaultMaxAttempts
	}
	var dueAt int64 // as soon as possible
	if !j.RunAt.IsZero() {
		dueAt = sqlstore.Micros(j.RunAt)
	}
	u, err := uuid.NewV7()
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	id := "job_" + u.String()
	var dedup any
	if j.DedupKey != "" {
		dedup = j.DedupKey
	}
	res, err := tx.Exec(ctx, `INSERT INTO jobs (id, kind, payload, dedup_key, state, attempt, max_attempts, due_at, created_at)
		VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?)
		ON CONFLICT (kind, dedup_key) DO NOTHING`,
		id, j.Kind, payload, dedup, maxAttempts, dueAt, sqlstore.Micros(time.Now()))
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", errs.Wrap(op, err)
	} else if n == 1 {
		return id, nil
	}
	// The dedup key is taken: return the job that holds it.
	var existing string
	if err := tx.QueryRow(ctx, `SELECT id FROM jobs WHERE kind = ? AND dedup_key = ?`, j.Kind, j.DedupKey).Scan(&existing); err != nil {
		return "", errs.Wrap(op+": dedup lookup", err)
	}
	return existing, nil
}

func validate(j NewJob) error {
	const op = "jobs.Enqueue"
	switch {
	case j.Kind == "":
		return errs.E(errs.Invalid, op, "job kind is empty")
	case len(j.Kind) > maxKindLen || !utf8.ValidString(j.Kind):
		return errs.Ef(errs.Invalid, op, "job kind must be valid UTF-8 of at most %d bytes", maxKindLen)
	case len(j.DedupKey) > maxDedupKeyLen || !utf8.ValidString(j.DedupKey):
		return errs.Ef(errs.Invalid, op, "dedup key must be valid UTF-8 of at most %d bytes", maxDedupKeyLen)
	case j.MaxAttempts < 0:
		return errs.E(errs.Invalid, op, "max attempts must not be negative")
	}
	return nil
}

func marshalPayload(p any) (string, error) {
	const op = "jobs.Enqueue"
	if raw, ok := p.(json.RawMessage); ok {
		if raw == nil {
			return "null", nil
		}
		if !json.Valid(raw) {
			return "", errs.E(errs.Invalid, op, "payload is not valid JSON")
		}
		return string(raw), nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", &errs.Error{Code: errs.Invalid, Op: op, Message: "payload cannot be marshalled to JSON", Err: err}
	}
	return string(b), nil
}
