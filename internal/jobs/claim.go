package jobs

import (
	"context"
	"crypto/rand"
	"strings"
	"sync/atomic"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// expiredAtLimit is true for a job whose lease ended during its last
// allowed attempt: the claim turns it dead instead of running it again.
const expiredAtLimit = `state = 'running' AND attempt >= max_attempts`

// claimSQL claims up to a limit of due jobs of the given kinds in one
// statement. Due means queued with due_at reached, or running with an
// expired lease (a runner died or hung). Each claimed job becomes running
// under a new lease and token with its attempt counted; an expired job
// whose attempts are used up becomes dead instead. The claim's SELECT locks
// rows with FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent claims pass
// each other by; SQLite runs the statement under BEGIN IMMEDIATE, which
// serializes writers.
func claimSQL(d sqlstore.Dialect, kinds int) string {
	lock := ""
	if d == sqlstore.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return `UPDATE jobs SET
		state = CASE WHEN ` + expiredAtLimit + ` THEN 'dead' ELSE 'running' END,
		last_error = CASE WHEN state = 'running'
			THEN 'lease of worker ' || COALESCE(worker_id, '') || ' ended before attempt ' || CAST(attempt AS TEXT) || ' finished'
			ELSE last_error END,
		finished_at = CASE WHEN ` + expiredAtLimit + ` THEN CAST(? AS BIGINT) ELSE NULL END,
		claim_token = CASE WHEN ` + expiredAtLimit + ` THEN NULL ELSE CAST(? AS TEXT) END,
		worker_id = CASE WHEN ` + expiredAtLimit + ` THEN worker_id ELSE CAST(? AS TEXT) END,
		claimed_at = CASE WHEN ` + expiredAtLimit + ` THEN claimed_at ELSE CAST(? AS BIGINT) END,
		due_at = CASE WHEN ` + expiredAtLimit + ` THEN due_at ELSE CAST(? AS BIGINT) END,
		attempt = CASE WHEN ` + expiredAtLimit + ` THEN attempt ELSE attempt + 1 END
	WHERE id IN (
		SELECT id FROM jobs
		WHERE state IN ('queued', 'running') AND due_at <= ? AND kind IN (` + placeholders(kinds) + `)
		ORDER BY due_at, id
		LIMIT ?` + lock + `)
	RETURNING ` + jobColumns
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// claim takes up to limit due jobs and returns those to run, and how many
// rows the claim took in all (run plus turned dead), so a caller can tell
// whether more may be due. A claim that only turned jobs dead is repeated.
func (r *Runner) claim(ctx context.Context, limit int) ([]claimedJob, int, error) {
	const op = "jobs.claim"
	kinds := r.kinds()
	if len(kinds) == 0 {
		return nil, 0, nil
	}
	for {
		var (
			run  []claimedJob
			dead []Job
		)
		token := rand.Text()
		now := r.clock.Now()
		r.txCount.claims.Add(1)
		err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			run, dead = run[:0], dead[:0]
			if tx.Dialect() == sqlstore.Postgres {
				// Read jobs_due in due order and stop at the limit. With
				// stale statistics (say, analysed while the queue was
				// empty) the planner otherwise may fetch every due job and
				// sort them, which makes each claim cost the whole backlog.
				if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
					return err
				}
			}
			args := []any{sqlstore.Micros(now), token, r.opts.WorkerID, sqlstore.Micros(now),
				sqlstore.Micros(now.Add(r.opts.Lease)), sqlstore.Micros(now)}
			for _, k := range kinds {
				args = append(args, k)
			}
			args = append(args, limit)
			rows, err := tx.Query(ctx, claimSQL(tx.Dialect(), len(kinds)), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				j, err := scanJob(rows)
				if err != nil {
					return err
				}
				if j.State == Dead {
					dead = append(dead, j)
					continue
				}
				run = append(run, claimedJob{Job: j, token: token})
			}
			return rows.Err()
		})
		if err != nil {
			return nil, 0, errs.Wrap(op, err)
		}
		for _, j := range dead {
			r.m.deadTotal.WithLabelValues(j.Kind).Inc()
			r.log.Error("job is dead: its last attempt's lease ended", "job", j.ID, "kind", j.Kind, "attempt", j.Attempt, "err", j.LastError)
		}
		taken := len(run) + len(dead)
		if len(run) > 0 || taken < limit {
			return run, taken, nil
		}
	}
}

// finish applies an outcome statement guarded by the claim: it changes the
// job only while the claim's token still holds it. It reports whether it
// did. count is the transaction counter it adds one to.
func (r *Runner) finish(ctx context.Context, cj claimedJob, count *atomic.Int64, set string, args ...any) (bool, error) {
	var n int64
	count.Add(1)
	err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE jobs SET `+set+` WHERE id = ? AND claim_token = ? AND state = 'running'`,
			append(args, cj.ID, cj.token)...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, errs.Wrap("jobs.finish", err)
	}
	return n == 1, nil
}

// complete marks the job done, together with other jobs of this runner
// finishing at the same time (see completer).
func (r *Runner) complete(ctx context.Context, cj claimedJob) (bool, error) {
	return r.completer.complete(ctx, cj, r.clock.Now())
}

// release puts the job back in the queue, due at once, without counting the
// interrupted attempt.
func (r *Runner) release(ctx context.Context, cj claimedJob) (bool, error) {
	return r.finish(ctx, cj, &r.txCount.others, `state = 'queued', claim_token = NULL, due_at = 0, attempt = attempt - 1`)
}

// fail records a failed attempt: dead if permanent or out of attempts,
// otherwise queued again after the backoff (or the delay Retry asked for).
// It returns the outcome ("retry" or "dead").
func (r *Runner) fail(ctx context.Context, cj claimedJob, cause error) (string, bool, error) {
	now := r.clock.Now()
	msg := truncateError(cause.Error())
	if IsPermanent(cause) || cj.Attempt >= cj.MaxAttempts {
		kept, err := r.finish(ctx, cj, &r.txCount.others, `state = 'dead', claim_token = NULL, last_error = ?, finished_at = ?`,
			msg, sqlstore.Micros(now))
		return "dead", kept, err
	}
	delay, asked := retryAfter(cause)
	if !asked {
		delay = r.backoff(cj.Attempt)
	}
	kept, err := r.finish(ctx, cj, &r.txCount.others, `state = 'queued', claim_token = NULL, last_error = ?, due_at = ?`,
		msg, sqlstore.Micros(now.Add(delay)))
	return "retry", kept, err
}

// renew extends the job's lease to now+Lease while the claim holds it.
func (r *Runner) renew(ctx context.Context, cj claimedJob) (bool, error) {
	return r.finish(ctx, cj, &r.txCount.others, `due_at = ?`, sqlstore.Micros(r.clock.Now().Add(r.opts.Lease)))
}
