package audit_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// BenchmarkRecordTx appends records inside callers' transactions, 1 or 10
// records per transaction, with 1 and 8 concurrent writers, on both
// databases. Like a deposit, each transaction does other work between its
// records: before every record it updates a row of its own writer (no
// contention between writers there), so what writers wait for is the
// chain's head. The figures that matter are appends/s and tx/s.
func BenchmarkRecordTx(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE bench_work (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		const maxWriters = 8
		for w := range maxWriters {
			if _, err := db.Exec(ctx, `INSERT INTO bench_work (id, n) VALUES (?, 0)`, w); err != nil {
				b.Fatal(err)
			}
		}
		l := audit.New(db, nil)
		for _, records := range []int{1, 10} {
			for _, writers := range []int{1, maxWriters} {
				b.Run(fmt.Sprintf("records=%d/writers=%d", records, writers), func(b *testing.B) {
					benchRecordTx(b, db, l, records, writers)
				})
			}
		}
	}, audit.Schema)
}

func benchRecordTx(b *testing.B, db *sqlstore.DB, l *audit.Log, records, writers int) {
	ctx := context.Background()
	detail := map[string]string{"amount": "100.00", "currency": "EUR", "from": "pending", "to": "credited"}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			actor := "staff:w" + strconv.Itoa(w)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				subject := "dep_" + strconv.FormatInt(i, 10)
				err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
					for range records {
						if _, err := tx.Exec(ctx, `UPDATE bench_work SET n = n + 1 WHERE id = ?`, w); err != nil {
							return err
						}
						if err := l.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "deposit.status", Subject: subject, Detail: detail}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*records)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}
