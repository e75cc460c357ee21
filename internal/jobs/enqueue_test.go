package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestEnqueueIsAtomicWithTheCallersTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("push", func(context.Context, Job) error { return nil })

		boom := errors.New("booking failed")
		var rolledBackID string
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			id, err := Enqueue(ctx, tx, NewJob{Kind: "push", Payload: map[string]int{"n": 1}})
			if err != nil {
				return err
			}
			rolledBackID = id
			tx.AfterCommit(r.Notify)
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact = %v, want the caller's error", err)
		}
		if _, err := Get(ctx, db, rolledBackID); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("Get(rolled-back job) = %v, want ENOTFOUND", err)
		}
		if got := runOnce(t, r); got != 0 {
			t.Errorf("RunOnce after rollback ran %d jobs, want 0", got)
		}

		var committedID string
		err = db.Transact(ctx, func(tx *sqlstore.Tx) error {
			var err error
			committedID, err = Enqueue(ctx, tx, NewJob{Kind: "push", Payload: map[string]int{"n": 2}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[State]int{Queued: 1, Running: 0, Done: 0, Dead: 0}, stats(t, db)); diff != "" {
			t.Errorf("stats after commit (-want +got):\n%s", diff)
		}
		if got := runOnce(t, r); got != 1 {
			t.Errorf("RunOnce after commit ran %d jobs, want 1", got)
		}
		if j := get(t, db, committedID); j.State != Done {
			t.Errorf("committed job state = %s, want done", j.State)
		}
	}, Schema)
}

func TestEnqueueRejectsBadJobs(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, Schema)
	long := string(make([]byte, 101))
	tests := []struct {
		name string
		job  NewJob
	}{
		{"empty kind", NewJob{}},
		{"kind too long", NewJob{Kind: long}},
		{"kind not UTF-8", NewJob{Kind: "\xff"}},
		{"dedup key too long", NewJob{Kind: "k", DedupKey: long + long}},
		{"negative max attempts", NewJob{Kind: "k", MaxAttempts: -1}},
		{"raw payload not JSON", NewJob{Kind: "k", Payload: json.RawMessage("{nope")}},
		{"payload not marshallable", NewJob{Kind: "k", Payload: func() {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
				_, err := Enqueue(context.Background(), tx, tc.job)
				return err
			})
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Enqueue = %v, want EINVALID", err)
			}
		})
	}
	if s := stats(t, db); s[Queued] != 0 {
		t.Errorf("%d jobs were stored, want none", s[Queued])
	}
}

func TestHandlersReceiveThePayloadAndJobFields(t *testing.T) {
	type push struct {
		Account string `json:"account"`
		Minor   int64  `json:"minor"`
	}
	tests := []struct {
		name    string
		payload any
		want    string
	}{
		{"struct", push{Account: "acc_1", Minor: 12345}, `{"account":"acc_1","minor":12345}`},
		{"raw JSON kept byte for byte", json.RawMessage(`{"b":1,  "a":[true,null]}`), `{"b":1,  "a":[true,null]}`},
		{"nil", nil, `null`},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fc := clock.NewFake(t0)
				r := newTestRunner(db, fc, Options{Lease: time.Minute})
				got := make(chan Job, 1)
				kind := "payload-" + tc.name
				r.Handle(kind, func(_ context.Context, j Job) error { got <- j; return nil })
				id := enqueue(t, db, NewJob{Kind: kind, Payload: tc.payload, DedupKey: "k-" + tc.name, MaxAttempts: 3})
				if n := runOnce(t, r); n != 1 {
					t.Fatalf("RunOnce ran %d, want 1", n)
				}
				j := <-got
				if string(j.Payload) != tc.want {
					t.Errorf("payload = %s, want %s", j.Payload, tc.want)
				}
				want := Job{ID: id, Kind: kind, Payload: j.Payload, Attempt: 1, MaxAttempts: 3, DedupKey: "k-" + tc.name,
					CreatedAt: j.CreatedAt, State: Running, LeaseUntil: t0.Add(time.Minute), WorkerID: r.opts.WorkerID, ClaimedAt: t0}
				if diff := cmp.Diff(want, j); diff != "" {
					t.Errorf("job given to the handler (-want +got):\n%s", diff)
				}
				if j.CreatedAt.IsZero() {
					t.Error("CreatedAt is zero")
				}
			})
		}
	}, Schema)
}

func TestDedupKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("push", func(context.Context, Job) error { return nil })
		r.Handle("mail", func(context.Context, Job) error { return nil })

		// A key enqueued in a rolled-back transaction is not taken.
		_ = db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if _, err := Enqueue(ctx, tx, NewJob{Kind: "push", DedupKey: "txn_1"}); err != nil {
				t.Fatal(err)
			}
			return errors.New("roll back")
		})
		first := enqueue(t, db, NewJob{Kind: "push", DedupKey: "txn_1", Payload: "first"})

		// Inside one transaction the second enqueue sees the first.
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			a, err := Enqueue(ctx, tx, NewJob{Kind: "push", DedupKey: "txn_2"})
			if err != nil {
				return err
			}
			b, err := Enqueue(ctx, tx, NewJob{Kind: "push", DedupKey: "txn_2"})
			if err != nil {
				return err
			}
			if a != b {
				t.Errorf("same key in one transaction: ids %s and %s, want one", a, b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		if again := enqueue(t, db, NewJob{Kind: "push", DedupKey: "txn_1", Payload: "second"}); again != first {
			t.Errorf("second enqueue with the key returned %s, want the first job %s", again, first)
		}
		if other := enqueue(t, db, NewJob{Kind: "mail", DedupKey: "txn_1"}); other == first {
			t.Error("the same key under another kind was deduplicated")
		}
		a := enqueue(t, db, NewJob{Kind: "push"})
		b := enqueue(t, db, NewJob{Kind: "push"})
		if a == b {
			t.Error("two jobs without a key got the same id")
		}
		if got := stats(t, db)[Queued]; got != 5 {
			t.Errorf("queued jobs = %d, want 5 (txn_1, txn_2, mail txn_1, two without key)", got)
		}
		if j := get(t, db, first); string(j.Payload) != `"first"` {
			t.Errorf("payload of the deduplicated job = %s, want the first's", j.Payload)
		}

		// The key stays taken after the job is done, until it is purged.
		for runOnce(t, r) > 0 {
		}
		if again := enqueue(t, db, NewJob{Kind: "push", DedupKey: "txn_1"}); again != first {
			t.Errorf("enqueue after the job is done returned %s, want %s", again, first)
		}
		fc.Advance(time.Hour)
		if n, err := Purge(ctx, db, fc.Now(), 100); err != nil || n != 5 {
			t.Fatalf("Purge = %d, %v; want 5 done jobs", n, err)
		}
		if fresh := enqueue(t, db, NewJob{Kind: "push", DedupKey: "txn_1"}); fresh == first {
			t.Error("enqueue after Purge returned the purged job's id")
		}
	}, Schema)
}

func TestScheduledJobIsNotDueBeforeRunAt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("later", func(context.Context, Job) error { return nil })
		id := enqueue(t, db, NewJob{Kind: "later", RunAt: t0.Add(10 * time.Minute)})
		if j := get(t, db, id); !j.RunAt.Equal(t0.Add(10 * time.Minute)) {
			t.Errorf("RunAt = %v, want %v", j.RunAt, t0.Add(10*time.Minute))
		}
		fc.Advance(10*time.Minute - time.Microsecond)
		if n := runOnce(t, r); n != 0 {
			t.Fatalf("ran %d jobs before RunAt, want 0", n)
		}
		fc.Advance(time.Microsecond)
		if n := runOnce(t, r); n != 1 {
			t.Fatalf("ran %d jobs at RunAt, want 1", n)
		}
	}, Schema)
}

func TestRunnerClaimsOnlyKindsItHandles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		pushes := newTestRunner(db, fc, Options{})
		pushes.Handle("push", func(context.Context, Job) error { return nil })
		mailID := enqueue(t, db, NewJob{Kind: "mail"})
		pushID := enqueue(t, db, NewJob{Kind: "push"})
		if n := runOnce(t, pushes); n != 1 {
			t.Fatalf("ran %d jobs, want 1", n)
		}
		if got := get(t, db, mailID).State; got != Queued {
			t.Errorf("mail job state = %s, want queued (no handler here)", got)
		}
		if got := get(t, db, pushID).State; got != Done {
			t.Errorf("push job state = %s, want done", got)
		}
	}, Schema)
}
