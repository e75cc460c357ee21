package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const benchAccounts = 1000

// benchLedger creates benchAccounts funded customer accounts (lower bound 0)
// and returns the ledger and the account ids.
func benchLedger(b *testing.B, db *sqlstore.DB) (*ledger.Ledger, []string) {
	b.Helper()
	ctx := context.Background()
	l := ledger.New(db, clock.System{})
	if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: "clearing", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchAccounts)
	var funding []ledger.Transfer
	for i := range ids {
		ids[i] = fmt.Sprintf("customer:%04d", i)
		if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: ids[i], Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero()}); err != nil {
			b.Fatal(err)
		}
		funding = append(funding, ledger.Transfer{ID: "fund:" + ids[i], Debit: "clearing", Credit: ids[i], Amount: money.New(1e12, usd)})
	}
	if _, err := l.Post(ctx, funding...); err != nil {
		b.Fatal(err)
	}
	return l, ids
}

var benchRun atomic.Int64

// cpuTime is the CPU time the benchmark's process has used so far (user and
// system). On SQLite, which runs in the process, it is the whole cost of
// the work, and less disturbed than wall time by other load on the machine.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration, ops int) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(ops), "cpu-µs/op")
}

// runWriters runs op for i = 1 … b.N from writers goroutines, each with its
// own random source seeded by run and the writer's number, then stops the
// timer; the first error fails the benchmark. It returns the process's CPU
// time when the timer started, for reportCPU.
func runWriters(b *testing.B, run int64, writers int, op func(rng *rand.Rand, i int64) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(run), uint64(w)))
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(rng, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	return cpu0
}

// randomPair returns two different customer account indexes.
func randomPair(rng *rand.Rand) (from, to int) {
	from, to = rng.IntN(benchAccounts), rng.IntN(benchAccounts-1)
	if to >= from {
		to++
	}
	return from, to
}

// BenchmarkTransfer posts single transfers (one database transaction each)
// between random accounts with 1 and 8 concurrent writers. The figure that
// matters is transfers/s.
func BenchmarkTransfer(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		l, ids := benchLedger(b, db)
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
				run := benchRun.Add(1)
				ctx := context.Background()
				cpu0 := runWriters(b, run, writers, func(rng *rand.Rand, i int64) error {
					from, to := randomPair(rng)
					_, err := l.Post(ctx, ledger.Transfer{ID: fmt.Sprintf("r%d-%d", run, i), Debit: ids[from], Credit: ids[to], Amount: money.New(1+rng.Int64N(10000), usd), Code: "bench"})
					return err
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
				reportCPU(b, cpu0, b.N)
			})
		}
	}, ledger.Schema)
}

// BenchmarkBatch posts linked batches of 100 and 1,000 transfers, each batch
// one database transaction, with 1 and 8 concurrent writers. The figure that
// matters is transfers/s.
func BenchmarkBatch(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		l, ids := benchLedger(b, db)
		for _, size := range []int{100, 1000} {
			for _, writers := range []int{1, 8} {
				b.Run(fmt.Sprintf("size=%d/writers=%d", size, writers), func(b *testing.B) {
					run := benchRun.Add(1)
					ctx := context.Background()
					cpu0 := runWriters(b, run, writers, func(rng *rand.Rand, i int64) error {
						ts := make([]ledger.Transfer, size)
						for j := range ts {
							from, to := randomPair(rng)
							ts[j] = ledger.Transfer{ID: fmt.Sprintf("r%d-%d-%d", run, i, j), Debit: ids[from], Credit: ids[to], Amount: money.New(1+rng.Int64N(10000), usd), Code: "bench"}
						}
						_, err := l.Post(ctx, ts...)
						return err
					})
					b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
					reportCPU(b, cpu0, b.N*size)
				})
			}
		}
	}, ledger.Schema)
}
