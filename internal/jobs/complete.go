package jobs

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// completeChunk bounds how many jobs one completion statement marks done
// (five parameters each: well under SQLite's and PostgreSQL's limits).
const completeChunk = 200

// completer records the "done" outcomes of a runner's jobs, group-commit
// style: the first completion is written at once, in its own transaction;
// completions that arrive while that write is in flight wait and are all
// written by the next transaction, and so on. Nothing waits for a timer,
// so a lone completion costs what it did before and a burst costs one
// transaction per write in flight rather than one per job.
//
// There is no writer goroutine: the caller whose completion finds no write
// in flight writes it (the leader); when its write ends, it wakes the
// first waiting caller to write everything queued meanwhile. Every caller
// returns only once its own completion is written (or the write failed),
// so RunOnce and Run, which wait for their workers, never return with a
// completion unrecorded.
type completer struct {
	r *Runner

	mu sync.Mutex
	// pending holds the completions waiting for the next write.
	pending []*completion
	// writing is true while a leader is writing; it stays true while a
	// leader hands over to the next.
	writing bool
}

// completion is one job's "done" outcome on its way to the database.
type completion struct {
	cj claimedJob
	at time.Time // finished_at
	// wake receives once: when the completion is written (kept and err
	// are set), or when its caller must lead the next write (lead is set).
	wake chan struct{}
	lead bool
	kept bool
	err  error
}

// complete records that cj's handler succeeded at time at, and reports
// whether the claim still held the job (only then is the job done). It
// returns the database error, wrapped, if the write failed; the job then
// stays running and is claimed again when its lease ends.
func (c *completer) complete(ctx context.Context, cj claimedJob, at time.Time) (bool, error) {
	me := &completion{cj: cj, at: at, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	var batch []*completion
	if c.writing {
		c.pending = append(c.pending, me)
	} else {
		c.writing = true
		batch = []*completion{me}
	}
	c.mu.Unlock()

	if batch == nil {
		if c.r.afterCompletionQueued != nil {
			c.r.afterCompletionQueued()
		}
		<-me.wake
		if !me.lead {
			return me.kept, me.err
		}
		c.mu.Lock()
		batch, c.pending = c.pending, nil
		c.mu.Unlock()
	}

	c.write(ctx, batch)

	c.mu.Lock()
	var next *completion
	if len(c.pending) > 0 {
		next = c.pending[0]
	} else {
		c.writing = false
	}
	c.mu.Unlock()
	for _, w := range batch {
		if w != me {
			w.wake <- struct{}{}
		}
	}
	if next != nil {
		next.lead = true
		next.wake <- struct{}{}
	}
	return me.kept, me.err
}

// write marks the batch's jobs done in one transaction, each only while
// its claim's token holds it, and sets each completion's kept and err.
func (c *completer) write(ctx context.Context, batch []*completion) {
	r := c.r
	if r.beforeCompletionWrite != nil {
		r.beforeCompletionWrite(len(batch))
	}
	r.txCount.completions.Add(1)
	stmts := completeStatements(batch)
	// A fresh bound: the leader's own may have run down while it waited.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		for _, w := range batch {
			w.kept = false
		}
		for _, st := range stmts {
			if err := st.exec(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = errs.Wrap("jobs.complete", err)
		for _, w := range batch {
			w.kept, w.err = false, err
		}
	}
}

// completeStatement marks up to completeChunk jobs done, no job twice.
type completeStatement struct {
	byID map[string]*completion
	sql  string
	args []any
}

// completeStatements splits a batch into statements of at most
// completeChunk jobs. A job id appears at most once per statement, so the
// ids a statement returns name their completions unambiguously (one runner
// may hold a job under two claims when a lease it lost passed back to it).
func completeStatements(batch []*completion) []completeStatement {
	var (
		stmts []completeStatement
		cur   []*completion
		ids   = map[string]*completion{}
	)
	flush := func() {
		if len(cur) > 0 {
			stmts = append(stmts, newCompleteStatement(cur, ids))
		}
		cur, ids = nil, map[string]*completion{}
	}
	for _, w := range batch {
		if _, dup := ids[w.cj.ID]; dup || len(cur) == completeChunk {
			flush()
		}
		cur = append(cur, w)
		ids[w.cj.ID] = w
	}
	flush()
	return stmts
}

// newCompleteStatement builds
//
//	UPDATE jobs SET state = 'done', claim_token = NULL,
//		finished_at = CASE id WHEN ? THEN ? … END
//	WHERE id IN (?, …) AND state = 'running'
//		AND claim_token = CASE id WHEN ? THEN ? … END
//	RETURNING id
//
// which finds the jobs by primary key on both engines and changes only
// those their claims still hold.
func newCompleteStatement(ws []*completion, byID map[string]*completion) completeStatement {
	var finished, tokens strings.Builder
	args := make([]any, 0, 5*len(ws))
	for _, w := range ws {
		finished.WriteString(" WHEN ? THEN CAST(? AS BIGINT)")
		args = append(args, w.cj.ID, sqlstore.Micros(w.at))
	}
	for _, w := range ws {
		args = append(args, w.cj.ID)
	}
	for _, w := range ws {
		tokens.WriteString(" WHEN ? THEN CAST(? AS TEXT)")
		args = append(args, w.cj.ID, w.cj.token)
	}
	q := `UPDATE jobs SET state = 'done', claim_token = NULL, finished_at = CASE id` + finished.String() + ` END
	WHERE id IN (` + placeholders(len(ws)) + `) AND state = 'running' AND claim_token = CASE id` + tokens.String() + ` END
	RETURNING id`
	return completeStatement{byID: byID, sql: q, args: args}
}

// exec runs the statement and marks the completions whose jobs it changed
// as kept.
func (st completeStatement) exec(ctx context.Context, tx *sqlstore.Tx) error {
	rows, err := tx.Query(ctx, st.sql, st.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if w := st.byID[id]; w != nil {
			w.kept = true
		}
	}
	return rows.Err()
}
