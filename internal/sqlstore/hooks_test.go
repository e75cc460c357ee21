package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestBeforeCommitRunsByStageInsideTheTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		var order []string
		step := func(name string) func(context.Context, *sqlstore.Tx) error {
			return func(ctx context.Context, tx *sqlstore.Tx) error {
				order = append(order, name)
				_, err := tx.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", name, len(order))
				return err
			}
		}
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			tx.BeforeCommit(sqlstore.StageAudit, step("audit"))
			tx.BeforeCommit(sqlstore.StageLedger, func(ctx context.Context, tx *sqlstore.Tx) error {
				// Registered while the functions run: a later stage still runs.
				tx.BeforeCommit(sqlstore.StageLedger+1, step("late"))
				return step("ledger")(ctx, tx)
			})
			tx.BeforeCommit(sqlstore.StageDefault, step("first"))
			tx.BeforeCommit(sqlstore.StageDefault, step("second"))
			order = append(order, "fn")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"fn", "first", "second", "ledger", "late", "audit"}
		if diff := cmp.Diff(want, order); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM counters").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Errorf("rows written by the functions = %d, want 5 (committed with the transaction)", n)
		}
	}, testSchema)
}

func TestBeforeCommitErrorRollsBackAndSkipsTheRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		ranLater, committed := false, false
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			tx.AfterCommit(func() { committed = true })
			if _, err := tx.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", "x", 1); err != nil {
				return err
			}
			tx.BeforeCommit(sqlstore.StageDefault, func(context.Context, *sqlstore.Tx) error { return boom })
			tx.BeforeCommit(sqlstore.StageAudit, func(context.Context, *sqlstore.Tx) error { ranLater = true; return nil })
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if ranLater || committed {
			t.Errorf("after a failing BeforeCommit: later stage ran = %v, AfterCommit ran = %v; want neither", ranLater, committed)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM counters").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("rows after the rollback = %d, want 0", n)
		}
	}, testSchema)
}

func TestBeforeCommitIsNotRunWhenFnFails(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ran := false
		err := db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
			tx.BeforeCommit(sqlstore.StageDefault, func(context.Context, *sqlstore.Tx) error { ran = true; return nil })
			return errors.New("refused")
		})
		if err == nil || ran {
			t.Errorf("err = %v, BeforeCommit ran = %v; want the error and no run", err, ran)
		}
	})
}

type localKey struct{}

func TestLocalIsPerTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		created := 0
		var got []int
		for range 2 {
			err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
				for range 3 {
					n := tx.Local(localKey{}, func() any { created++; return new(int) }).(*int)
					*n++
					got = append(got, *n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff([]int{1, 2, 3, 1, 2, 3}, got); diff != "" {
			t.Errorf("values seen (-want +got):\n%s", diff)
		}
		if created != 2 {
			t.Errorf("values created = %d, want one per transaction (2)", created)
		}
	})
}

// TestRepeatedStatementsStayCorrect runs the same statements many times
// from more goroutines than the pool has connections, so that cached
// statements (SQLite) are used on every connection and prepared while every
// connection is busy in a transaction, and checks every result.
func TestRepeatedStatementsStayCorrect(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		const workers, rounds = 24, 20
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						name := fmt.Sprintf("w%d-r%d", w, r)
						for i := range 3 {
							if _, err := tx.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", fmt.Sprintf("%s-%d", name, i), i); err != nil {
								return err
							}
						}
						rows, err := tx.Query(ctx, "SELECT name, value FROM counters WHERE name LIKE ? ORDER BY name", name+"-%")
						if err != nil {
							return err
						}
						got := map[string]int64{}
						var names []string
						for rows.Next() {
							var n string
							var v int64
							if err := rows.Scan(&n, &v); err != nil {
								rows.Close()
								return err
							}
							got[n] = v
							names = append(names, n)
						}
						if err := rows.Close(); err != nil {
							return err
						}
						if len(names) != 3 {
							return fmt.Errorf("%s: %d rows, want 3", name, len(names))
						}
						for i, n := range names {
							var again int64
							if err := tx.QueryRow(ctx, "SELECT value FROM counters WHERE name = ?", n).Scan(&again); err != nil {
								return err
							}
							if again != got[n] || n != fmt.Sprintf("%s-%d", name, i) {
								return fmt.Errorf("row %d: %s=%d, read again %d", i, n, got[n], again)
							}
						}
						return nil
					})
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM counters").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != workers*rounds*3 {
			t.Errorf("rows = %d, want %d", n, workers*rounds*3)
		}
	}, testSchema)
}
