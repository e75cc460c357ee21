package jobs

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const benchWorkers = 8

// benchRunner returns a runner on the real clock whose handler counts runs
// and closes the returned channel after the n-th.
func benchRunner(db *sqlstore.DB, n int) (*Runner, <-chan struct{}) {
	r := NewRunner(db, Options{
		Workers:      benchWorkers,
		PollInterval: 10 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	all := make(chan struct{})
	var count atomic.Int64
	r.Handle("bench", func(context.Context, Job) error {
		if count.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	return r, all
}

// reportJobs reports jobs/s and the runner's write transactions per job:
// claims, completions and all (including the other outcomes).
func reportJobs(b *testing.B, r *Runner) {
	n := float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "jobs/s")
	claims, completions, others := r.txCount.claims.Load(), r.txCount.completions.Load(), r.txCount.others.Load()
	b.ReportMetric(float64(claims)/n, "claim-tx/job")
	b.ReportMetric(float64(completions)/n, "done-tx/job")
	b.ReportMetric(float64(claims+completions+others)/n, "runner-tx/job")
}

// runUntil runs r until all is closed and returns once Run has stopped.
func runUntil(b *testing.B, r *Runner, all <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()
	<-all
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEnqueueAndRun measures the outbox end to end: 4 producers each
// enqueue jobs in their own transactions (waking the runner after commit)
// while one runner with 8 workers claims and completes them. One op is one
// job enqueued and run to done.
func BenchmarkEnqueueAndRun(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		const producers = 4
		ctx := context.Background()
		r, all := benchRunner(db, b.N)
		b.ResetTimer()
		var wg sync.WaitGroup
		var next atomic.Int64
		for range producers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						_, err := Enqueue(ctx, tx, NewJob{Kind: "bench", Payload: map[string]int64{"amount": 12345}})
						tx.AfterCommit(r.Notify)
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		runUntil(b, r, all)
		wg.Wait()
		b.StopTimer()
		reportJobs(b, r)
	}, Schema)
}

// BenchmarkEnqueue measures Enqueue alone, one job per transaction.
func BenchmarkEnqueue(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
				_, err := Enqueue(ctx, tx, NewJob{Kind: "bench", Payload: map[string]int64{"amount": 12345}})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	}, Schema)
}

// BenchmarkRunBacklog measures claiming and completing a backlog of b.N
// jobs with one runner of 8 workers (enqueueing, in batches of 1,000 per
// transaction, is not timed).
func BenchmarkRunBacklog(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		for start := 0; start < b.N; start += 1000 {
			err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
				for range min(1000, b.N-start) {
					if _, err := Enqueue(ctx, tx, NewJob{Kind: "bench"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		r, all := benchRunner(db, b.N)
		b.ResetTimer()
		runUntil(b, r, all)
		b.StopTimer()
		reportJobs(b, r)
	}, Schema)
}
