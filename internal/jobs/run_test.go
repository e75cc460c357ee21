package jobs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// TestNoJobRunsTwiceConcurrently has 3 runners with 4 workers each work
// through 150 jobs at once, through RunOnce loops and through Run. Every job
// must be inside a handler at most once at any moment, and run to done
// exactly once.
func TestNoJobRunsTwiceConcurrently(t *testing.T) {
	const runners, workers, jobCount = 3, 4, 150
	drivers := []struct {
		name string
		// work makes the runners process every job; done receives one value
		// per finished handler.
		work func(t *testing.T, rs []testRunner, done <-chan string)
	}{
		{"RunOnce loops", func(t *testing.T, rs []testRunner, _ <-chan string) {
			var wg sync.WaitGroup
			for _, r := range rs {
				wg.Go(func() {
					for {
						n, err := r.RunOnce(context.Background())
						if err != nil {
							t.Errorf("RunOnce: %v", err)
							return
						}
						if n == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
		}},
		{"Run", func(t *testing.T, rs []testRunner, done <-chan string) {
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, r := range rs {
				wg.Go(func() {
					if err := r.Run(ctx); err != nil {
						t.Errorf("Run: %v", err)
					}
				})
			}
			for range jobCount {
				receive(t, done, "a job to finish")
			}
			cancel()
			wg.Wait()
		}},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, d := range drivers {
			t.Run(d.name, func(t *testing.T) {
				fc := clock.NewFake(t0)
				kind := "count-" + d.name
				log := newRunLog(t)
				done := make(chan string, jobCount)
				var rs []testRunner
				for i := range runners {
					r := newTestRunner(db, fc, Options{Workers: workers, PollInterval: 5 * time.Millisecond, WorkerID: fmt.Sprint("r", i)})
					r.Handle(kind, func(_ context.Context, j Job) error {
						log.enter(j.ID)
						defer log.leave(j.ID)
						runtime.Gosched()
						select {
						case done <- j.ID:
						default: // more runs than jobs: runLog reports it
						}
						return nil
					})
					rs = append(rs, r)
				}
				var ids []string
				for i := range jobCount {
					ids = append(ids, enqueue(t, db, NewJob{Kind: kind, Payload: i}))
				}
				d.work(t, rs, done)
				if bad := log.notOnce(ids); bad != "" {
					t.Errorf("jobs not run exactly once: %s", bad)
				}
				got, err := List(context.Background(), db, Filter{Kind: kind, State: Done, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != jobCount {
					t.Errorf("%d jobs done, want %d", len(got), jobCount)
				}
			})
		}
	}, Schema)
}

func TestNotifyWakesRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fc := clock.NewFake(t0)
		// Polling is an hour away: only Notify can wake the runner.
		r := newTestRunner(db, fc, Options{Workers: 2, PollInterval: time.Hour, StatsInterval: time.Hour})
		ran := make(chan string)
		r.Handle("push", func(_ context.Context, j Job) error { ran <- j.ID; return nil })
		first := enqueue(t, db, NewJob{Kind: "push"})
		stopped := make(chan error, 1)
		go func() { stopped <- r.Run(ctx) }()
		if got := receive(t, ran, "the job enqueued before Run"); got != first {
			t.Fatalf("ran %s, want %s", got, first)
		}

		// Run has claimed less than a full batch, so it now waits.
		var second string
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			var err error
			second, err = Enqueue(ctx, tx, NewJob{Kind: "push"})
			tx.AfterCommit(r.Notify)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := receive(t, ran, "the job announced by Notify"); got != second {
			t.Fatalf("ran %s, want %s", got, second)
		}
		cancel()
		if err := receive(t, stopped, "Run to return"); err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
		if diff := cmp.Diff(map[State]int{Queued: 0, Running: 0, Done: 2, Dead: 0}, stats(t, db)); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	}, Schema)
}

func TestRunReleasesLeasesOfHandlersStoppedAtShutdown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		a := newTestRunner(db, fc, Options{Workers: 2, ShutdownGrace: 10 * time.Millisecond})
		started := make(chan struct{}, 2)
		a.Handle("slow", func(ctx context.Context, j Job) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})
		ids := []string{enqueue(t, db, NewJob{Kind: "slow"}), enqueue(t, db, NewJob{Kind: "slow"})}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- a.Run(ctx) }()
		receive(t, started, "the first handler")
		receive(t, started, "the second handler")
		cancel()
		if err := receive(t, stopped, "Run to return"); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		for _, id := range ids {
			j := get(t, db, id)
			if j.State != Queued || j.Attempt != 0 || !j.RunAt.IsZero() || !j.LeaseUntil.IsZero() {
				t.Errorf("job %s after shutdown: %s, attempt %d, run at %v; want queued, 0, as soon as possible", id, j.State, j.Attempt, j.RunAt)
			}
		}

		// Another runner takes them at once, without the clock moving.
		b := newTestRunner(db, fc, Options{Workers: 2})
		var attempts sync.Map
		b.Handle("slow", func(_ context.Context, j Job) error { attempts.Store(j.ID, j.Attempt); return nil })
		if n := runOnce(t, b); n != 2 {
			t.Fatalf("the next runner ran %d jobs, want 2", n)
		}
		for _, id := range ids {
			if got, _ := attempts.Load(id); got != 1 {
				t.Errorf("job %s ran as attempt %v, want 1", id, got)
			}
		}
	}, Schema)
}

func TestRunLetsHandlersFinishWithinTheGrace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{ShutdownGrace: time.Minute})
		started, release := make(chan struct{}), make(chan struct{})
		var ctxErrAtEnd atomic.Value
		r.Handle("push", func(ctx context.Context, j Job) error {
			close(started)
			<-release
			ctxErrAtEnd.Store(fmt.Sprint(ctx.Err()))
			return nil
		})
		id := enqueue(t, db, NewJob{Kind: "push"})
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- r.Run(ctx) }()
		receive(t, started, "the handler")
		cancel()
		select {
		case err := <-stopped:
			t.Fatalf("Run returned (%v) while a handler was still within its grace", err)
		default:
		}
		close(release)
		if err := receive(t, stopped, "Run to return"); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if got := ctxErrAtEnd.Load(); got != "<nil>" {
			t.Errorf("handler's context error during the grace = %v, want none", got)
		}
		if j := get(t, db, id); j.State != Done {
			t.Errorf("job = %s, want done", j.State)
		}
	}, Schema)
}

func TestRunRefusesToStartWithoutHandlersOrTwice(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, Schema)
	fc := clock.NewFake(t0)
	r := newTestRunner(db, fc, Options{PollInterval: time.Hour})
	if err := r.Run(context.Background()); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Run without handlers = %v, want EINVALID", err)
	}
	if _, err := r.RunOnce(context.Background()); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("RunOnce without handlers = %v, want EINVALID", err)
	}
	ran := make(chan struct{})
	r.Handle("push", func(context.Context, Job) error { close(ran); return nil })
	enqueue(t, db, NewJob{Kind: "push"})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()
	receive(t, ran, "the first Run to run the job") // it is running now
	if err := r.Run(ctx); errs.CodeOf(err) != errs.Conflict {
		t.Errorf("second Run = %v, want ECONFLICT", err)
	}
	cancel()
	if err := receive(t, stopped, "Run to return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestHandlePanicsOnMisuse(t *testing.T) {
	r := NewRunner(nil, Options{})
	r.Handle("push", func(context.Context, Job) error { return nil })
	tests := []struct {
		name string
		kind string
		h    Handler
	}{
		{"empty kind", "", func(context.Context, Job) error { return nil }},
		{"nil handler", "mail", nil},
		{"duplicate kind", "push", func(context.Context, Job) error { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Handle did not panic")
				}
			}()
			r.Handle(tc.kind, tc.h)
		})
	}
}

func TestRunPurgesDoneJobsAfterTheRetention(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{Retention: 24 * time.Hour})
		r.Handle("push", func(context.Context, Job) error { return nil })
		r.Handle("bad", func(context.Context, Job) error { return Permanent(errors.New("no")) })
		old := enqueue(t, db, NewJob{Kind: "push"})
		dead := enqueue(t, db, NewJob{Kind: "bad"})
		runOnce(t, r)
		fc.Advance(time.Hour)
		recent := enqueue(t, db, NewJob{Kind: "push"})
		runOnce(t, r)
		fc.Advance(23*time.Hour + time.Microsecond)
		r.maintain(ctx)
		if _, err := Get(ctx, db, old); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("done job older than the retention: Get = %v, want ENOTFOUND", err)
		}
		for _, id := range []string{dead, recent} {
			if _, err := Get(ctx, db, id); err != nil {
				t.Errorf("job %s was purged: %v", id, err)
			}
		}
	}, Schema)
}
