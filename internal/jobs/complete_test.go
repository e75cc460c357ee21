package jobs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// writeLog records the sizes of a runner's completion writes.
type writeLog struct {
	mu    sync.Mutex
	sizes []int
}

func (w *writeLog) add(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sizes = append(w.sizes, n)
}

func (w *writeLog) get() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sizes)
}

// awaitQueued waits until n completions wait behind the write in flight.
// It runs in a worker's goroutine, so it reports a timeout with t.Errorf,
// not t.Fatalf.
func awaitQueued(t *testing.T, queued <-chan struct{}, n int) {
	timeout := time.After(waitLimit)
	for i := range n {
		select {
		case <-queued:
		case <-timeout:
			t.Errorf("timed out waiting for completion %d of %d to wait behind the first write", i+1, n)
			return
		}
	}
}

// TestJobsFinishingTogetherAreCompletedInOneTransaction has 16 handlers
// return at once. The first completion is written alone; the test holds
// that write until the 15 others wait for it, and they must then all be
// written by the next transaction: 2 completion transactions for 16 jobs.
func TestJobsFinishingTogetherAreCompletedInOneTransaction(t *testing.T) {
	const jobCount = 16
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{Workers: jobCount})
		r.Handle("push", func(context.Context, Job) error { return nil })
		queued := make(chan struct{}, jobCount)
		r.afterCompletionQueued = func() { queued <- struct{}{} }
		var writes writeLog
		r.beforeCompletionWrite = func(n int) {
			if len(writes.get()) == 0 {
				awaitQueued(t, queued, jobCount-1)
			}
			writes.add(n)
		}
		var ids []string
		for range jobCount {
			ids = append(ids, enqueue(t, db, NewJob{Kind: "push"}))
		}

		if n := runOnce(t, r); n != jobCount {
			t.Fatalf("RunOnce ran %d jobs, want %d", n, jobCount)
		}
		if diff := cmp.Diff([]int{1, jobCount - 1}, writes.get()); diff != "" {
			t.Errorf("jobs per completion write (-want +got):\n%s", diff)
		}
		if got := r.txCount.completions.Load(); got != 2 {
			t.Errorf("%d completion transactions, want 2", got)
		}
		for _, id := range ids {
			if j := get(t, db, id); j.State != Done || !j.FinishedAt.Equal(fc.Now()) {
				t.Errorf("job %s = %s, finished %v; want done at %v", id, j.State, j.FinishedAt, fc.Now())
			}
		}
		if got := r.metric(t, "jobs_done_total", "push"); got != jobCount {
			t.Errorf("jobs_done_total = %v, want %d", got, jobCount)
		}
	}, Schema)
}

// TestABatchedCompletionKeepsOnlyJobsItsClaimStillHolds writes one batch
// of completions in which some jobs have moved on since this runner
// claimed them.
func TestABatchedCompletionKeepsOnlyJobsItsClaimStillHolds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("push", func(context.Context, Job) error { return nil })
		kept := enqueue(t, db, NewJob{Kind: "push"})
		taken := enqueue(t, db, NewJob{Kind: "push"})
		finished := enqueue(t, db, NewJob{Kind: "push"})
		reclaimed := enqueue(t, db, NewJob{Kind: "push"})
		claimed, _, err := r.claim(ctx, 4)
		if err != nil || len(claimed) != 4 {
			t.Fatalf("claim = %d jobs, %v; want 4", len(claimed), err)
		}
		// Another run took one job over after its lease ended; another
		// already finished one; and this runner claimed one again under a
		// new token while its first run of it was still going.
		for _, q := range []string{
			`UPDATE jobs SET claim_token = 'other-run', attempt = 2 WHERE id = '` + taken + `'`,
			`UPDATE jobs SET state = 'dead', claim_token = NULL WHERE id = '` + finished + `'`,
			`UPDATE jobs SET claim_token = 'newer-claim' WHERE id = '` + reclaimed + `'`,
		} {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		byID := map[string]claimedJob{}
		for _, cj := range claimed {
			byID[cj.ID] = cj
		}
		newer := byID[reclaimed]
		newer.token = "newer-claim"
		at := fc.Now().Add(time.Second)
		batch := []*completion{
			{cj: byID[reclaimed], at: at}, // the stale claim comes first
			{cj: byID[kept], at: at},
			{cj: byID[taken], at: at},
			{cj: byID[finished], at: at},
			{cj: newer, at: at},
		}
		r.completer.write(ctx, batch)

		var got []bool
		for i, w := range batch {
			if w.err != nil {
				t.Fatalf("completion %d: %v", i, w.err)
			}
			got = append(got, w.kept)
		}
		// stale reclaimed, kept, taken, finished, newer reclaimed
		if diff := cmp.Diff([]bool{false, true, false, false, true}, got); diff != "" {
			t.Errorf("kept, in batch order (-want +got):\n%s", diff)
		}
		if got := r.txCount.completions.Load(); got != 1 {
			t.Errorf("%d completion transactions, want 1", got)
		}
		states := map[string]string{}
		for name, id := range map[string]string{"kept": kept, "taken": taken, "finished": finished, "reclaimed": reclaimed} {
			j := get(t, db, id)
			states[name] = fmt.Sprint(j.State, " ", j.Attempt, " ", j.FinishedAt.Equal(at))
		}
		wantStates := map[string]string{
			"kept":      "done 1 true",
			"taken":     "running 2 false",
			"finished":  "dead 1 false",
			"reclaimed": "done 1 true",
		}
		if diff := cmp.Diff(wantStates, states); diff != "" {
			t.Errorf("state, attempt, finished at the completion (-want +got):\n%s", diff)
		}
	}, Schema)
}

// TestABatchLargerThanOneStatementIsOneTransaction completes more jobs at
// once than one statement takes.
func TestABatchLargerThanOneStatementIsOneTransaction(t *testing.T) {
	const jobCount = 2*completeChunk + 50
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("push", func(context.Context, Job) error { return nil })
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			for range jobCount {
				if _, err := Enqueue(ctx, tx, NewJob{Kind: "push"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		claimed, _, err := r.claim(ctx, jobCount)
		if err != nil || len(claimed) != jobCount {
			t.Fatalf("claim = %d jobs, %v; want %d", len(claimed), err, jobCount)
		}
		var batch []*completion
		for _, cj := range claimed {
			batch = append(batch, &completion{cj: cj, at: fc.Now()})
		}
		r.completer.write(ctx, batch)
		notKept := 0
		for _, w := range batch {
			if w.err != nil {
				t.Fatal(w.err)
			}
			if !w.kept {
				notKept++
			}
		}
		if notKept != 0 {
			t.Errorf("%d of %d completions not kept, want all kept", notKept, jobCount)
		}
		if got := r.txCount.completions.Load(); got != 1 {
			t.Errorf("%d completion transactions, want 1", got)
		}
		if diff := cmp.Diff(map[State]int{Queued: 0, Running: 0, Done: jobCount, Dead: 0}, stats(t, db)); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	}, Schema)
}

// TestALostLeaseIsCountedWhenCompletionsAreBatched has one of three jobs
// taken over by another run while its handler runs: the other two are
// done, it is left to the other run, and the loss is counted.
func TestALostLeaseIsCountedWhenCompletionsAreBatched(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{Workers: 3, HeartbeatInterval: -1})
		r.Handle("push", func(ctx context.Context, j Job) error {
			if string(j.Payload) == `"lose"` {
				_, err := db.Exec(ctx, `UPDATE jobs SET claim_token = 'other-run', attempt = 2 WHERE id = ?`, j.ID)
				return err
			}
			return nil
		})
		lost := enqueue(t, db, NewJob{Kind: "push", Payload: "lose"})
		done := []string{enqueue(t, db, NewJob{Kind: "push"}), enqueue(t, db, NewJob{Kind: "push"})}
		if n := runOnce(t, r); n != 3 {
			t.Fatalf("RunOnce ran %d jobs, want 3", n)
		}
		for _, id := range done {
			if got := get(t, db, id).State; got != Done {
				t.Errorf("job %s = %s, want done", id, got)
			}
		}
		if j := get(t, db, lost); j.State != Running || j.Attempt != 2 {
			t.Errorf("taken-over job = %s, attempt %d; want the other run's (running, 2)", j.State, j.Attempt)
		}
		if got := r.metric(t, "jobs_lease_lost_total", "push"); got != 1 {
			t.Errorf("jobs_lease_lost_total = %v, want 1", got)
		}
		if got := r.metric(t, "jobs_done_total", "push"); got != 2 {
			t.Errorf("jobs_done_total = %v, want 2", got)
		}
	}, Schema)
}

// TestRunRecordsCompletionsBeforeReturning cancels Run while the first
// completion write is held and the other completions wait for it: Run must
// not return before both writes, and no job may be left running.
func TestRunRecordsCompletionsBeforeReturning(t *testing.T) {
	const jobCount = 4
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{Workers: jobCount, PollInterval: time.Hour, StatsInterval: time.Hour})
		r.Handle("push", func(context.Context, Job) error { return nil })
		writing, release := make(chan struct{}), make(chan struct{})
		queued := make(chan struct{}, jobCount)
		r.afterCompletionQueued = func() { queued <- struct{}{} }
		var writes writeLog
		r.beforeCompletionWrite = func(n int) {
			if len(writes.get()) == 0 {
				close(writing)
				<-release
			}
			writes.add(n)
		}
		for range jobCount {
			enqueue(t, db, NewJob{Kind: "push"})
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- r.Run(ctx) }()
		receive(t, writing, "the first completion write")
		for i := range jobCount - 1 {
			receive(t, queued, fmt.Sprintf("completion %d to wait for the first write", i+2))
		}
		cancel()
		select {
		case err := <-stopped:
			t.Fatalf("Run returned (%v) while a completion was being written", err)
		default:
		}
		close(release)
		if err := receive(t, stopped, "Run to return"); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if diff := cmp.Diff(map[State]int{Queued: 0, Running: 0, Done: jobCount, Dead: 0}, stats(t, db)); diff != "" {
			t.Errorf("stats after Run returned (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int{1, jobCount - 1}, writes.get()); diff != "" {
			t.Errorf("jobs per completion write (-want +got):\n%s", diff)
		}
	}, Schema)
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAFailedCompletionWriteRunsTheJobsAgainAfterTheirLeases makes the
// database refuse to mark jobs done: the failure is logged, the jobs stay
// running under their leases, and once those end another run completes
// them.
func TestAFailedCompletionWriteRunsTheJobsAgainAfterTheirLeases(t *testing.T) {
	refuse := map[sqlstore.Dialect][]string{
		sqlstore.SQLite: {
			`CREATE TRIGGER jobs_refuse_done BEFORE UPDATE OF state ON jobs WHEN NEW.state = 'done'
			BEGIN SELECT RAISE(ABORT, 'test refuses done'); END`,
		},
		sqlstore.Postgres: {
			`CREATE FUNCTION jobs_refuse_done() RETURNS trigger LANGUAGE plpgsql AS
			'BEGIN RAISE EXCEPTION ''test refuses done''; END'`,
			`CREATE TRIGGER jobs_refuse_done BEFORE UPDATE ON jobs FOR EACH ROW WHEN (NEW.state = 'done')
			EXECUTE FUNCTION jobs_refuse_done()`,
		},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		for _, q := range refuse[db.Dialect()] {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		fc := clock.NewFake(t0)
		var logs syncBuffer
		r := newTestRunner(db, fc, Options{Workers: 2, Lease: time.Minute, HeartbeatInterval: -1,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		attempts := map[string][]int{}
		var mu sync.Mutex
		r.Handle("push", func(_ context.Context, j Job) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[j.ID] = append(attempts[j.ID], j.Attempt)
			return nil
		})
		ids := []string{enqueue(t, db, NewJob{Kind: "push"}), enqueue(t, db, NewJob{Kind: "push"})}
		if n := runOnce(t, r); n != 2 {
			t.Fatalf("RunOnce ran %d jobs, want 2", n)
		}
		if got := strings.Count(logs.String(), "recording the job's outcome failed"); got != 2 {
			t.Errorf("%d failure lines logged, want 2; log:\n%s", got, logs.String())
		}
		if diff := cmp.Diff(map[State]int{Queued: 0, Running: 2, Done: 0, Dead: 0}, stats(t, db)); diff != "" {
			t.Errorf("stats after the failed write (-want +got):\n%s", diff)
		}
		if n := runOnce(t, r); n != 0 {
			t.Errorf("RunOnce ran %d jobs while their leases hold, want 0", n)
		}

		if _, err := db.Exec(ctx, `DROP TRIGGER jobs_refuse_done`+map[sqlstore.Dialect]string{sqlstore.Postgres: " ON jobs"}[db.Dialect()]); err != nil {
			t.Fatal(err)
		}
		fc.Advance(time.Minute)
		if n := runOnce(t, r); n != 2 {
			t.Fatalf("RunOnce after the leases ended ran %d jobs, want 2", n)
		}
		for _, id := range ids {
			if j := get(t, db, id); j.State != Done || j.Attempt != 2 {
				t.Errorf("job %s = %s after %d attempts, want done after 2", id, j.State, j.Attempt)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff(map[string][]int{ids[0]: {1, 2}, ids[1]: {1, 2}}, attempts); diff != "" {
			t.Errorf("attempts run (-want +got):\n%s", diff)
		}
	}, Schema)
}
