package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// stuckRunner starts RunOnce on a runner without heartbeats whose handler
// blocks: the "killed" worker that claimed a job and never reports back.
// The handler returns what finish sends once the test sends it; ctx is the
// RunOnce context, which the test may cancel instead.
type stuckRunner struct {
	started chan Job
	finish  chan error
	done    chan int
	cancel  context.CancelFunc
}

func startStuckRunner(t *testing.T, db *sqlstore.DB, fc *clock.Fake, kind string) stuckRunner {
	t.Helper()
	r := newTestRunner(db, fc, Options{Lease: time.Minute, HeartbeatInterval: -1, WorkerID: "runner-a"})
	s := stuckRunner{started: make(chan Job, 1), finish: make(chan error), done: make(chan int, 1)}
	r.Handle(kind, func(ctx context.Context, j Job) error {
		s.started <- j
		select {
		case err := <-s.finish:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	t.Cleanup(cancel)
	go func() {
		n, err := r.RunOnce(ctx)
		if err != nil {
			t.Errorf("stuck runner: RunOnce: %v", err)
		}
		s.done <- n
	}()
	return s
}

func TestKilledWorkersJobIsRetriedAfterTheLeaseAndItsLateOutcomeIgnored(t *testing.T) {
	tests := []struct {
		name string
		// late makes the stale worker report back after the job moved on.
		late func(s stuckRunner)
	}{
		{"late success", func(s stuckRunner) { s.finish <- nil }},
		{"late failure", func(s stuckRunner) { s.finish <- Permanent(errors.New("stale worker gives up")) }},
		{"cancelled, lease released", func(s stuckRunner) { s.cancel() }},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fc := clock.NewFake(t0)
				kind := "push-" + tc.name
				id := enqueue(t, db, NewJob{Kind: kind})
				a := startStuckRunner(t, db, fc, kind)
				if j := receive(t, a.started, "runner A to start the job"); j.Attempt != 1 {
					t.Fatalf("A got attempt %d, want 1", j.Attempt)
				}

				b := newTestRunner(db, fc, Options{Lease: time.Minute, WorkerID: "runner-b"})
				var seen Job
				b.Handle(kind, func(_ context.Context, j Job) error {
					seen = j
					return Retry(time.Hour, errors.New("B's attempt failed"))
				})
				if n := runOnce(t, b); n != 0 {
					t.Fatalf("B ran %d jobs while A's lease holds, want 0", n)
				}
				fc.Advance(time.Minute - time.Microsecond)
				if n := runOnce(t, b); n != 0 {
					t.Fatalf("B ran %d jobs just before A's lease ends, want 0", n)
				}
				fc.Advance(time.Microsecond)
				if n := runOnce(t, b); n != 1 {
					t.Fatalf("B ran %d jobs after A's lease ended, want 1", n)
				}
				if seen.Attempt != 2 || !strings.Contains(seen.LastError, "lease of worker runner-a ended before attempt 1 finished") {
					t.Errorf("B saw attempt %d, last error %q; want attempt 2 and A's expired lease", seen.Attempt, seen.LastError)
				}

				tc.late(a)
				if n := receive(t, a.done, "runner A's RunOnce to return"); n != 1 {
					t.Errorf("A's RunOnce = %d, want 1", n)
				}
				j := get(t, db, id)
				if j.State != Queued || j.Attempt != 2 || j.LastError != "B's attempt failed" || !j.RunAt.Equal(fc.Now().Add(time.Hour)) {
					t.Errorf("after A's late outcome: state %s, attempt %d, last error %q, run at %v; want B's outcome (queued, 2, B's error, +1h)",
						j.State, j.Attempt, j.LastError, j.RunAt)
				}
				if got := b.metric(t, "jobs_retried_total", kind); got != 1 {
					t.Errorf("B's jobs_retried_total = %v, want 1", got)
				}
			})
		}
	}, Schema)
}

func TestLeaseEndingOnTheLastAttemptMakesTheJobDead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		id := enqueue(t, db, NewJob{Kind: "push", MaxAttempts: 1})
		a := startStuckRunner(t, db, fc, "push")
		receive(t, a.started, "runner A to start the job")

		b := newTestRunner(db, fc, Options{Lease: time.Minute})
		b.Handle("push", func(context.Context, Job) error {
			t.Error("B ran a job whose attempts were used up")
			return nil
		})
		fc.Advance(time.Minute)
		if n := runOnce(t, b); n != 0 {
			t.Errorf("B ran %d jobs, want 0", n)
		}
		j := get(t, db, id)
		if j.State != Dead || j.Attempt != 1 || !strings.Contains(j.LastError, "lease of worker runner-a ended") || !j.FinishedAt.Equal(fc.Now()) {
			t.Errorf("job = state %s, attempt %d, last error %q, finished %v; want dead after 1 attempt with the lease error",
				j.State, j.Attempt, j.LastError, j.FinishedAt)
		}
		if got := b.metric(t, "jobs_dead_total", "push"); got != 1 {
			t.Errorf("jobs_dead_total = %v, want 1", got)
		}
		a.finish <- nil
		receive(t, a.done, "runner A's RunOnce to return")
		if got := get(t, db, id).State; got != Dead {
			t.Errorf("after A's late success the job is %s, want still dead", got)
		}
	}, Schema)
}

func TestHeartbeatKeepsTheLeaseOfARunningJob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		id := enqueue(t, db, NewJob{Kind: "slow"})
		a := newTestRunner(db, fc, Options{Lease: time.Minute, HeartbeatInterval: time.Millisecond})
		beats := make(chan bool)
		testDone := make(chan struct{})
		a.afterHeartbeat = func(_ string, kept bool) {
			select {
			case beats <- kept:
			case <-testDone:
			}
		}
		started, finish := make(chan struct{}), make(chan struct{})
		a.Handle("slow", func(context.Context, Job) error {
			close(started)
			<-finish
			return nil
		})
		ranA := make(chan int, 1)
		go func() { n, _ := a.RunOnce(context.Background()); ranA <- n }()
		receive(t, started, "the handler to start")

		fc.Advance(10 * time.Minute) // far past the first lease
		// The first renewal received may have read the clock before the
		// advance; the second certainly started after it.
		for range 2 {
			if kept := receive(t, beats, "a heartbeat"); !kept {
				t.Fatal("heartbeat lost the lease of a live run")
			}
		}
		if want := fc.Now().Add(time.Minute); !get(t, db, id).LeaseUntil.Equal(want) {
			t.Errorf("lease until %v, want renewed to %v", get(t, db, id).LeaseUntil, want)
		}
		b := newTestRunner(db, fc, Options{})
		b.Handle("slow", func(context.Context, Job) error { return nil })
		if n := runOnce(t, b); n != 0 {
			t.Errorf("another runner claimed a job whose lease is kept alive")
		}
		close(testDone)
		close(finish)
		receive(t, ranA, "A's RunOnce")
		if got := get(t, db, id); got.State != Done || got.Attempt != 1 {
			t.Errorf("job = %s after %d attempts, want done after 1", got.State, got.Attempt)
		}
	}, Schema)
}

func TestHeartbeatCancelsAHandlerThatLostItsLease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		id := enqueue(t, db, NewJob{Kind: "slow"})
		a := newTestRunner(db, fc, Options{Lease: time.Minute, HeartbeatInterval: time.Millisecond})
		started, cause := make(chan struct{}), make(chan error, 1)
		a.Handle("slow", func(ctx context.Context, j Job) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		})
		ranA := make(chan int, 1)
		go func() { n, _ := a.RunOnce(context.Background()); ranA <- n }()

		// Another run takes the job over, as after an expired lease.
		receive(t, started, "the handler to start")
		if _, err := db.Exec(context.Background(), `UPDATE jobs SET claim_token = 'someone-else', attempt = 2 WHERE id = ?`, id); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, cause, "the handler's context to be cancelled"); !errors.Is(got, errLeaseLost) {
			t.Errorf("handler context cause = %v, want errLeaseLost", got)
		}
		receive(t, ranA, "A's RunOnce")
		if got := get(t, db, id); got.State != Running || got.Attempt != 2 {
			t.Errorf("job = %s, attempt %d; want the other run's (running, 2) untouched", got.State, got.Attempt)
		}
		if got := a.metric(t, "jobs_lease_lost_total", "slow"); got != 1 {
			t.Errorf("jobs_lease_lost_total = %v, want 1", got)
		}
	}, Schema)
}
