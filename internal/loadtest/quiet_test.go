package loadtest

import (
	"context"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// TestBacklogCountsDueAndRunningJobs checks what a bench waits for before
// it starts: jobs due now or running count; jobs scheduled for later and
// finished jobs do not.
func TestBacklogCountsDueAndRunningJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now()
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			for _, j := range []jobs.NewJob{
				{Kind: "test.due", Payload: 1},
				{Kind: "test.due", Payload: 2, RunAt: now.Add(-time.Second)},
				{Kind: "test.later", Payload: 3, RunAt: now.Add(time.Hour)},
			} {
				if _, err := jobs.Enqueue(ctx, tx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := Backlog(ctx, db, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("backlog = %d, want the 2 due jobs (not the one due in an hour)", n)
		}
		// The wait gives up after its limit and says how many are left.
		left, _, err := WaitForQuiet(ctx, db, time.Millisecond, 5*time.Millisecond)
		if err != nil || left != 2 {
			t.Fatalf("WaitForQuiet = %d, %v; want 2 left after the limit", left, err)
		}
		if _, err := db.Exec(ctx, `UPDATE jobs SET state = 'done' WHERE kind = 'test.due'`); err != nil {
			t.Fatal(err)
		}
		left, _, err = WaitForQuiet(ctx, db, time.Millisecond, time.Minute)
		if err != nil || left != 0 {
			t.Fatalf("WaitForQuiet = %d, %v; want 0 once the due jobs are done", left, err)
		}
	}, jobs.Schema)
}
