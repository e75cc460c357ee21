package loadtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Inspection is the state of the cashier's money operations and its job
// queue, read from its database after a run: what is still moving, what
// waits for an operator, and what can never finish on its own.
//
// It reads funding's, push's and jobs' tables directly (a proof tool's
// view, not an API): deposits, withdrawals, balance pushes and jobs.
type Inspection struct {
	// Deposits and Withdrawals count the operations by status, with the
	// flag when one is set ("paid/review_hold").
	Deposits, Withdrawals map[string]int
	// Pushes counts the balance pushes by state.
	Pushes map[string]int
	// Jobs counts the jobs by state.
	Jobs map[string]int
	// Moving lists what is still on its way: operations in an intermediate
	// status, pushes queued, being sent or in doubt, jobs overdue or
	// running. A settled cashier has none.
	Moving []string
	// Review lists the operations that wait for an operator (awaiting
	// approval, flagged for review, money in suspense).
	Review []string
	// Retrying lists jobs that failed and wait for their next attempt
	// (a mail server that is not configured, say): they are not lost, and
	// the operations they serve are counted on their own.
	Retrying []string
	// Lost lists jobs whose lease ended long ago without another claim,
	// and queued jobs long overdue: work no worker is doing.
	Lost []string
	// Dead are the dead letters: jobs that failed for good.
	Dead []jobs.Job
}

// Settled reports whether nothing is moving any more.
func (i Inspection) Settled() bool { return len(i.Moving) == 0 }

// Final deposit and withdrawal statuses: nothing more happens to them.
var (
	finalDeposit    = []string{"completed", "declined", "expired", "failed", "reversed"}
	finalWithdrawal = []string{"completed", "returned", "failed", "rejected"}
)

// Inspect reads the state at now. A running job whose lease ended more
// than grace before now, or a queued job due more than grace before now, is
// lost (no worker took it up).
func Inspect(ctx context.Context, db *sqlstore.DB, now time.Time, grace time.Duration) (Inspection, error) {
	const op = "loadtest.Inspect"
	in := Inspection{Deposits: map[string]int{}, Withdrawals: map[string]int{}, Pushes: map[string]int{}, Jobs: map[string]int{}}
	rows, err := db.Query(ctx, `SELECT id, status, flag FROM funding_deposits`)
	if err != nil {
		return in, errs.Wrap(op, err)
	}
	for rows.Next() {
		var id, status, flag string
		if err := rows.Scan(&id, &status, &flag); err != nil {
			_ = rows.Close()
			return in, errs.Wrap(op, err)
		}
		in.Deposits[label(status, flag)]++
		switch {
		case flag != "":
			in.Review = append(in.Review, fmt.Sprintf("deposit %s: %s, flagged %s", id, status, flag))
		case !slices.Contains(finalDeposit, status):
			in.Moving = append(in.Moving, fmt.Sprintf("deposit %s: %s", id, status))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return in, errs.Wrap(op, err)
	}

	rows, err = db.Query(ctx, `SELECT id, status, flag, return_push_id FROM funding_withdrawals`)
	if err != nil {
		return in, errs.Wrap(op, err)
	}
	for rows.Next() {
		var id, status, flag, ret string
		if err := rows.Scan(&id, &status, &flag, &ret); err != nil {
			_ = rows.Close()
			return in, errs.Wrap(op, err)
		}
		in.Withdrawals[label(status, flag)]++
		switch {
		case flag != "":
			in.Review = append(in.Review, fmt.Sprintf("withdrawal %s: %s, flagged %s", id, status, flag))
		case status == "awaiting_approval":
			in.Review = append(in.Review, fmt.Sprintf("withdrawal %s: awaiting approval", id))
		case (status == "failed" || status == "rejected") && ret != "":
			in.Moving = append(in.Moving, fmt.Sprintf("withdrawal %s: %s, money on its way back", id, status))
		case !slices.Contains(finalWithdrawal, status):
			in.Moving = append(in.Moving, fmt.Sprintf("withdrawal %s: %s", id, status))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return in, errs.Wrap(op, err)
	}

	rows, err = db.Query(ctx, `SELECT id, state FROM pushes`)
	if err != nil {
		return in, errs.Wrap(op, err)
	}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			_ = rows.Close()
			return in, errs.Wrap(op, err)
		}
		in.Pushes[state]++
		if state == "queued" || state == "sending" || state == "in_doubt" {
			in.Moving = append(in.Moving, fmt.Sprintf("push %s: %s", id, state))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return in, errs.Wrap(op, err)
	}

	stats, err := jobs.Stats(ctx, db)
	if err != nil {
		return in, errs.Wrap(op, err)
	}
	for st, n := range stats {
		in.Jobs[string(st)] = n
	}
	nowMicros, graceMicros := sqlstore.Micros(now), grace.Microseconds()
	rows, err = db.Query(ctx, `SELECT id, kind, state, due_at, attempt, COALESCE(last_error, '') FROM jobs
		WHERE state = 'running' OR (state = 'queued' AND (due_at <= ? OR attempt > 0))`, nowMicros)
	if err != nil {
		return in, errs.Wrap(op, err)
	}
	for rows.Next() {
		var id, kind, state, lastErr string
		var due int64
		var attempt int
		if err := rows.Scan(&id, &kind, &state, &due, &attempt, &lastErr); err != nil {
			_ = rows.Close()
			return in, errs.Wrap(op, err)
		}
		late := time.Duration(nowMicros-due) * time.Microsecond
		what := fmt.Sprintf("job %s (%s): %s, attempt %d", id, kind, state, attempt)
		switch {
		case state == "running" && nowMicros-due > graceMicros:
			in.Lost = append(in.Lost, fmt.Sprintf("%s, its lease ended %s ago", what, late.Round(time.Second)))
		case state == "queued" && due != 0 && nowMicros-due > graceMicros:
			in.Lost = append(in.Lost, fmt.Sprintf("%s, due %s ago", what, late.Round(time.Second)))
		case state == "queued" && attempt > 0:
			in.Retrying = append(in.Retrying, fmt.Sprintf("%s failed (%s), next attempt in %s", what, lastErr, (-late).Round(time.Second)))
		default: // running within its lease, or due (0: as soon as possible)
			in.Moving = append(in.Moving, what)
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return in, errs.Wrap(op, err)
	}
	if in.Dead, err = jobs.List(ctx, db, jobs.Filter{State: jobs.Dead, Limit: 1000}); err != nil {
		return in, errs.Wrap(op, err)
	}
	return in, nil
}

func label(status, flag string) string {
	if flag == "" {
		return status
	}
	return status + "/" + flag
}

// Counts renders a map of counts as "a 3, b 1", largest first.
func Counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Backlog counts the jobs that are due at now or running: work a previous
// run left behind, which would compete with the next one. It returns a
// wrapped database error if the jobs cannot be counted.
func Backlog(ctx context.Context, db *sqlstore.DB, now time.Time) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE state = 'running' OR (state = 'queued' AND due_at <= ?)`,
		sqlstore.Micros(now)).Scan(&n)
	if err != nil {
		return 0, errs.Wrap("loadtest.Backlog", err)
	}
	return n, nil
}

// WaitForQuiet waits until Backlog is zero, reading it every interval, for
// at most limit, and returns the last count and how long it waited (a
// count above zero means limit passed first). It returns ctx's error if ctx
// ends first and a wrapped database error if a count fails.
func WaitForQuiet(ctx context.Context, db *sqlstore.DB, interval, limit time.Duration) (int, time.Duration, error) {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := Backlog(ctx, db, time.Now())
		if err != nil || n == 0 || time.Since(start) >= limit {
			return n, time.Since(start), err
		}
		select {
		case <-ctx.Done():
			return n, time.Since(start), errs.Wrap("loadtest.WaitForQuiet", ctx.Err())
		case <-t.C:
		}
	}
}
