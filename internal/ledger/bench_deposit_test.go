package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// BenchmarkDeposit models the shape of a deposit's booking transaction:
// each transaction posts from the one shared, unbounded clearing account
// to one of 1,000 customer accounts (lower bound 0) with PostTx, then does
// four more statements of its own (as funding does: its records, a job, an
// event) before it commits; 1, 8 and 24 concurrent writers. The figures that
// matter are transactions/s and, on PostgreSQL, lockwait-ms/tx: the mean
// time a transaction spends waiting for a row lock, from the number of
// backends seen waiting on a lock (pg_stat_activity, sampled every
// millisecond) by Little's law; cpu-µs/op is the benchmark process's CPU
// time per transaction (all of the cost on SQLite; the sampler's queries
// included on PostgreSQL).
func BenchmarkDeposit(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		l, ids := benchLedger(b, db)
		ctx := context.Background()
		if _, err := db.Exec(ctx, "CREATE TABLE bench_work (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"); err != nil {
			b.Fatal(err)
		}
		for _, writers := range []int{1, 8, 24} {
			b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
				run := benchRun.Add(1)
				var sampler *lockWaitSampler
				if db.Dialect() == sqlstore.Postgres {
					sampler = startLockWaitSampler(b, db.SQL())
				}
				cpu0 := runWriters(b, run, writers, func(rng *rand.Rand, i int64) error {
					customer := ids[rng.IntN(benchAccounts)]
					return depositTx(ctx, db, l, fmt.Sprintf("d%d-%d", run, i), customer, money.New(1+rng.Int64N(10000), usd))
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
				reportCPU(b, cpu0, b.N)
				if sampler != nil {
					b.ReportMetric(sampler.stop()/float64(b.N), "lockwait-ms/tx")
				}
			})
		}
	}, ledger.Schema)
}

// depositTx is one deposit-shaped transaction: the posting, then four
// statements of other work, then the commit.
func depositTx(ctx context.Context, db *sqlstore.DB, l *ledger.Ledger, id, customer string, amt money.Amount) error {
	return db.Transact(ctx, func(tx *sqlstore.Tx) error {
		if _, err := l.PostTx(ctx, tx, ledger.Transfer{ID: id, Debit: "clearing", Credit: customer, Amount: amt, Code: "deposit.paid"}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO bench_work (id, n) VALUES (?, ?)", id, amt.Minor()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE bench_work SET n = n + 1 WHERE id = ?", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO bench_work (id, n) VALUES (?, ?)", id+":job", 0); err != nil {
			return err
		}
		var n int64
		return tx.QueryRow(ctx, "SELECT n FROM bench_work WHERE id = ?", id).Scan(&n)
	})
}

// lockWaitSampler counts, every millisecond, the PostgreSQL backends of
// the benchmark's database that wait for a lock. The sum of the counts is
// the total lock-wait time in milliseconds (Little's law).
type lockWaitSampler struct {
	done   chan struct{}
	result chan float64
}

func startLockWaitSampler(b *testing.B, pool *sql.DB) *lockWaitSampler {
	b.Helper()
	ctx := context.Background()
	conn, err := pool.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	s := &lockWaitSampler{done: make(chan struct{}), result: make(chan float64, 1)}
	go func() {
		defer func() { _ = conn.Close() }()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var waitedMs float64
		last := time.Now()
		for {
			select {
			case <-s.done:
				s.result <- waitedMs
				return
			case <-tick.C:
			}
			var n int
			if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
				continue
			}
			// Weigh each sample by the time since the previous one: on a
			// busy machine the ticker falls behind.
			now := time.Now()
			waitedMs += float64(n) * float64(now.Sub(last)) / float64(time.Millisecond)
			last = now
		}
	}()
	return s
}

// stop ends the sampling and returns the total lock-wait time in ms.
func (s *lockWaitSampler) stop() float64 {
	close(s.done)
	return <-s.result
}
