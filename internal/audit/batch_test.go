package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// appendOldStyle appends r the way the log did before it queued records
// until the commit (and the way a cashier of that version still does
// during a rolling upgrade): in a transaction of its own, lock the head,
// read the clock, insert the entry hashed by the documented encoding, move
// the head.
func appendOldStyle(ctx context.Context, db *sqlstore.DB, clk clock.Clock, r audit.Record) (audit.Entry, error) {
	detail := []byte("{}")
	if len(r.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(r.Detail); err != nil {
			return audit.Entry{}, err
		}
	}
	var e audit.Entry
	err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var head audit.Anchor
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+tx.ForUpdate()).Scan(&head.Seq, &head.Hash); err != nil {
			return err
		}
		at := clk.Now().UTC().Truncate(time.Microsecond)
		e = audit.Entry{Seq: head.Seq + 1, At: at, Record: r, PrevHash: head.Hash}
		e.Hash = referenceHash(e.Seq, at.UnixMicro(), r, head.Hash)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_entries (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, at.UnixMicro(), r.Actor, r.Action, r.Subject, string(detail), e.PrevHash, e.Hash); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash)
		return err
	})
	if err != nil {
		return audit.Entry{}, fmt.Errorf("old-style append: %w", err)
	}
	return e, nil
}

// countHeadMoves installs a trigger that counts updates of the head row;
// the returned function reads the count.
func countHeadMoves(t *testing.T, db *sqlstore.DB) func() int {
	t.Helper()
	ctx := context.Background()
	stmts := []string{`CREATE TABLE test_head_moves (n INTEGER NOT NULL)`, `INSERT INTO test_head_moves (n) VALUES (0)`}
	switch db.Dialect() {
	case sqlstore.SQLite:
		stmts = append(stmts, `CREATE TRIGGER test_count_head_moves AFTER UPDATE ON audit_head
			BEGIN UPDATE test_head_moves SET n = n + 1; END`)
	case sqlstore.Postgres:
		stmts = append(stmts, `CREATE FUNCTION test_count_head_move() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN UPDATE test_head_moves SET n = n + 1; RETURN NULL; END $$`,
			`CREATE TRIGGER test_count_head_moves AFTER UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION test_count_head_move()`)
	}
	for _, s := range stmts {
		if _, err := db.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return func() int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT n FROM test_head_moves`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// allEntries returns the whole trail in seq order, read page by page.
func allEntries(t *testing.T, l *audit.Log) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	before := int64(0)
	for {
		page, err := l.Search(context.Background(), audit.Query{BeforeSeq: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		before = page[len(page)-1].Seq
	}
	slices.Reverse(all)
	return all
}

// verifyClean runs Verify and fails unless the chain is clean with n
// entries.
func verifyClean(t *testing.T, l *audit.Log, n int64) audit.Report {
	t.Helper()
	rep, err := l.Verify(context.Background(), audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Checked != n || rep.Head.Seq != n {
		t.Fatalf("Verify = %d checked, head %v, problems %v; want a clean chain of %d", rep.Checked, rep.Head, rep.Problems, n)
	}
	return rep
}

// TestRecordTxWritesTheTransactionsRecordsAtCommit records 100 records in
// one transaction between entries written the old way (one statement set
// per append, as the previous version and a not yet upgraded process do):
// nothing is written before the commit, then the records follow each
// other in call order, stamped with the time of the commit, hashed by the
// documented encoding, with one move of the head, and old-style and
// new-style entries form one valid chain.
func TestRecordTxWritesTheTransactionsRecordsAtCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		l := audit.New(db, clk)
		headMoves := countHeadMoves(t, db)
		first, err := appendOldStyle(ctx, db, clock.NewFake(t0.Add(-time.Hour)), audit.Record{Actor: "operator:old", Action: "setting.changed", Subject: "old_1",
			Detail: map[string]string{"from": "off", "to": "on"}})
		if err != nil {
			t.Fatal(err)
		}

		const n = 100 // written as INSERTs of 64, 32 and 4 rows
		var records []audit.Record
		movesBefore := headMoves()
		commitAt := t0.Add(n * time.Millisecond)
		err = db.Transact(ctx, func(tx *sqlstore.Tx) error {
			records = nil
			for i := range n {
				detail := map[string]string{"i": strconv.Itoa(i), "amount": "10.00"}
				r := audit.Record{Actor: "system", Action: "ledger.transfer", Subject: fmt.Sprintf("tr_%03d", i), Detail: detail}
				if err := l.RecordTx(ctx, tx, r); err != nil {
					return err
				}
				records = append(records, audit.Record{Actor: r.Actor, Action: r.Action, Subject: r.Subject, Detail: map[string]string{"i": strconv.Itoa(i), "amount": "10.00"}})
				// The caller's map is its own again once RecordTx returns.
				detail["amount"] = "changed"
				clk.Advance(time.Millisecond)
			}
			var head audit.Anchor
			if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash); err != nil {
				return err
			}
			var count int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries`).Scan(&count); err != nil {
				return err
			}
			if head != first.Anchor() || count != 1 {
				t.Errorf("inside the transaction, before its commit: head %v and %d entries; want %v and 1 (nothing written yet)", head, count, first.Anchor())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := headMoves() - movesBefore; got != 1 {
			t.Errorf("the head moved %d times for one transaction of %d records, want once", got, n)
		}

		all := allEntries(t, l)
		if len(all) != n+1 {
			t.Fatalf("the trail holds %d entries, want %d", len(all), n+1)
		}
		if diff := cmp.Diff(first, all[0]); diff != "" {
			t.Errorf("the old-style entry (-written +read):\n%s", diff)
		}
		prev := first.Hash
		for i, e := range all[1:] {
			want := audit.Entry{Seq: int64(i + 2), At: commitAt, Record: records[i], PrevHash: prev}
			want.Hash = referenceHash(want.Seq, commitAt.UnixMicro(), records[i], prev)
			if diff := cmp.Diff(want, e); diff != "" {
				t.Fatalf("record %d of the transaction (-want +got):\n%s", i, diff)
			}
			prev = e.Hash
		}

		// Old-style and new-style appends go on interleaving.
		clk.Advance(time.Second)
		old, err := appendOldStyle(ctx, db, clk, audit.Record{Actor: "operator:old", Action: "token.revoked", Subject: "old_2"})
		if err != nil {
			t.Fatal(err)
		}
		if old.Seq != n+2 || old.PrevHash != prev {
			t.Errorf("old-style append after the batch = seq %d after %s, want %d after %s", old.Seq, old.PrevHash, n+2, prev)
		}
		e, err := l.Record(ctx, audit.Record{Actor: "staff:stf_1", Action: "withdrawal.approved", Subject: "wd_1"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != n+3 || e.PrevHash != old.Hash || !e.At.Equal(clk.Now()) {
			t.Errorf("Record after the old-style append = %+v, want seq %d after %s at %s", e, n+3, old.Hash, clk.Now())
		}
		if got := allEntries(t, l)[n+2]; !cmp.Equal(got, e) {
			t.Errorf("Record returned %+v but the trail holds %+v", e, got)
		}
		rep := verifyClean(t, l, n+3)
		if rep.Head != e.Anchor() {
			t.Errorf("Verify head = %v, want %v", rep.Head, e.Anchor())
		}
	}, audit.Schema)
}

// TestRecordTxWritesNothingOnRollback rolls back transactions that
// recorded: the records must not be in the trail, whether the rollback
// comes before the records were written or after.
func TestRecordTxWritesNothingOnRollback(t *testing.T) {
	boom := errors.New("the change failed")
	tests := []struct {
		name string
		fail func(tx *sqlstore.Tx) error
	}{
		{"the caller's function fails", func(*sqlstore.Tx) error { return boom }},
		{"a function after the audit stage fails", func(tx *sqlstore.Tx) error {
			tx.BeforeCommit(sqlstore.StageAudit+1, func(context.Context, *sqlstore.Tx) error { return boom })
			return nil
		}},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
					for i := range 3 {
						if err := l.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "deposit.credited", Subject: "dep_" + strconv.Itoa(i)}); err != nil {
							return err
						}
					}
					return tc.fail(tx)
				})
				if !errors.Is(err, boom) {
					t.Fatalf("Transact = %v, want the failure", err)
				}
				if got := allEntries(t, l); len(got) != 0 {
					t.Errorf("records of a rolled-back transaction are in the trail: %+v", got)
				}
				verifyClean(t, l, 0)
			})
		}
		e, err := l.Record(ctx, audit.Record{Actor: "system", Action: "deposit.credited", Subject: "dep_ok"})
		if err != nil || e.Seq != 1 || e.PrevHash != audit.GenesisHash {
			t.Errorf("Record after the rollbacks = %+v, %v; want the first entry", e, err)
		}
	}, audit.Schema)
}

// serializationFailure is an error that sqlstore retries, as it does
// PostgreSQL's "could not serialize access".
type serializationFailure struct{}

func (serializationFailure) Error() string {
	return "could not serialize access due to concurrent update"
}
func (serializationFailure) SQLState() string { return "40001" }

// TestRecordTxRetriedTransactionWritesOnce fails the first attempt of a
// transaction with an error that Transact retries, before and after the
// records were written: the trail holds the second attempt's records
// once, not the first's.
func TestRecordTxRetriedTransactionWritesOnce(t *testing.T) {
	if !sqlstore.IsRetryable(serializationFailure{}) {
		t.Fatal("sqlstore does not retry the test's serialization failure; the test would prove nothing")
	}
	tests := []struct {
		name      string
		failFirst func(tx *sqlstore.Tx) error
	}{
		{"in the caller's function", func(*sqlstore.Tx) error { return serializationFailure{} }},
		{"after the audit stage", func(tx *sqlstore.Tx) error {
			tx.BeforeCommit(sqlstore.StageAudit+1, func(context.Context, *sqlstore.Tx) error { return serializationFailure{} })
			return nil
		}},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		var total int64
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				attempts := 0
				err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
					attempts++
					for i := range 3 {
						r := audit.Record{Actor: "system", Action: "deposit.status", Subject: fmt.Sprintf("attempt %d record %d", attempts, i)}
						if err := l.RecordTx(ctx, tx, r); err != nil {
							return err
						}
					}
					if attempts == 1 {
						return tc.failFirst(tx)
					}
					return nil
				})
				if err != nil || attempts != 2 {
					t.Fatalf("Transact = %v after %d attempts, want success on the second", err, attempts)
				}
				total += 3
				all := allEntries(t, l)
				var got []string
				for _, e := range all[len(all)-3:] {
					got = append(got, e.Subject)
				}
				want := []string{"attempt 2 record 0", "attempt 2 record 1", "attempt 2 record 2"}
				if int64(len(all)) != total || !slices.Equal(got, want) {
					t.Errorf("after the retry the trail holds %d entries ending %q; want %d ending %q", len(all), got, total, want)
				}
				verifyClean(t, l, total)
			})
		}
	}, audit.Schema)
}

// TestRecordTxRejectsAnInvalidRecordAtOnce checks that RecordTx refuses a
// bad record when it is called, not at the commit, and that it queues
// nothing for it.
func TestRecordTxRejectsAnInvalidRecordAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		invalid := audit.Record{Action: "deposit.credited", Subject: "dep_1"} // no actor
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			err := l.RecordTx(ctx, tx, invalid)
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("RecordTx of a record without an actor = %v, want EINVALID at once", err)
			}
			return err
		})
		if errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Transact = %v, want the EINVALID from RecordTx", err)
		}
		verifyClean(t, l, 0)

		// A caller that goes on after the refusal commits its valid
		// records only.
		err = db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if err := l.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "deposit.credited", Subject: "dep_2"}); err != nil {
				return err
			}
			if err := l.RecordTx(ctx, tx, invalid); errs.CodeOf(err) != errs.Invalid {
				t.Errorf("RecordTx of a record without an actor = %v, want EINVALID at once", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if all := allEntries(t, l); len(all) != 1 || all[0].Subject != "dep_2" {
			t.Errorf("the trail is %+v, want only dep_2", all)
		}
		verifyClean(t, l, 1)
	}, audit.Schema)
}

// TestRecordTxFromBeforeCommitFunctions records from functions that run
// before the commit: one of an earlier stage joins the transaction's
// records; one registered at the audit stage after them runs after they
// were written, and its record follows them.
func TestRecordTxFromBeforeCommitFunctions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		headMoves := countHeadMoves(t, db)
		record := func(subject string) func(context.Context, *sqlstore.Tx) error {
			return func(ctx context.Context, tx *sqlstore.Tx) error {
				return l.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "x.y", Subject: subject})
			}
		}
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if err := record("a")(ctx, tx); err != nil {
				return err
			}
			tx.BeforeCommit(sqlstore.StageAudit, record("late"))
			tx.BeforeCommit(sqlstore.StageLedger, record("ledger"))
			return record("b")(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range allEntries(t, l) {
			got = append(got, e.Subject)
		}
		if want := []string{"a", "b", "ledger", "late"}; !slices.Equal(got, want) {
			t.Errorf("trail = %q, want %q", got, want)
		}
		if n := headMoves(); n != 2 {
			t.Errorf("the head moved %d times, want 2 (the batch, then the late record)", n)
		}
		verifyClean(t, l, 4)
	}, audit.Schema)
}

// TestRecordTxTwoLogsInOneTransaction records through two Logs with
// different clocks in one transaction: each Log writes its own records,
// stamped by its own clock, in the order the Logs first recorded, and the
// chain stays one.
func TestRecordTxTwoLogsInOneTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		tA, tB := t0, t0.Add(time.Hour)
		a, b := audit.New(db, clock.NewFake(tA)), audit.New(db, clock.NewFake(tB))
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			for _, step := range []struct {
				log     *audit.Log
				subject string
			}{{a, "a1"}, {b, "b1"}, {a, "a2"}} {
				if err := step.log.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "x.y", Subject: step.subject}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			Subject string
			At      time.Time
		}
		var got []row
		for _, e := range allEntries(t, a) {
			got = append(got, row{e.Subject, e.At})
		}
		want := []row{{"a1", tA}, {"a2", tA}, {"b1", tB}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("trail (-want +got):\n%s", diff)
		}
		verifyClean(t, a, 3)
	}, audit.Schema)
}

// TestRecordTxDoesNotLockTheChainUntilCommit keeps a transaction open
// after it recorded, and has another transaction record and commit
// meanwhile: on PostgreSQL it must not wait for the first (SQLite admits
// one writing transaction at a time whatever the log does, so the test
// runs on PostgreSQL only).
func TestRecordTxDoesNotLockTheChainUntilCommit(t *testing.T) {
	db := dbtest.Open(t, sqlstore.Postgres, audit.Schema)
	ctx := context.Background()
	l := audit.New(db, clock.NewFake(t0))
	recorded, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if err := l.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "x.y", Subject: "slow"}); err != nil {
				return err
			}
			close(recorded)
			<-release
			return nil
		})
	}()
	select {
	case <-recorded:
	case err := <-done:
		t.Fatalf("the slow transaction ended early: %v", err)
	}
	// Without the fix this would wait for the head lock until the slow
	// transaction ends, which it does only after this one.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := l.Record(fctx, audit.Record{Actor: "system", Action: "x.y", Subject: "fast"})
	cancel()
	close(release)
	if err != nil {
		t.Fatalf("Record while another transaction has recorded but not committed: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range allEntries(t, l) {
		got = append(got, e.Subject)
	}
	if want := []string{"fast", "slow"}; !slices.Equal(got, want) {
		t.Errorf("trail = %q, want %q (in commit order)", got, want)
	}
	verifyClean(t, l, 2)
}

// tickingClock moves one microsecond forward on every reading, so the
// readings of concurrent writers are all different.
type tickingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

// TestConcurrentBatchesFormOneChain has 6 goroutines run 10 transactions
// of 7 records each while another appends the old way: the trail must be
// one valid chain holding every record once, each transaction's records
// next to each other in call order, and times never going back along the
// chain (the clock is read under the head lock).
func TestConcurrentBatchesFormOneChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := &tickingClock{now: t0}
		l := audit.New(db, clk)
		const workers, txs, records = 6, 10, 7
		var wg sync.WaitGroup
		errc := make(chan error, workers+1)
		for w := range workers {
			wg.Go(func() {
				for m := range txs {
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						for k := range records {
							r := audit.Record{Actor: fmt.Sprintf("staff:w%d", w), Action: "test.append", Subject: fmt.Sprintf("w%d-t%d", w, m),
								Detail: map[string]string{"k": strconv.Itoa(k)}}
							if err := l.RecordTx(ctx, tx, r); err != nil {
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
		wg.Go(func() {
			for m := range txs {
				if _, err := appendOldStyle(ctx, db, clk, audit.Record{Actor: "operator:old", Action: "test.append", Subject: fmt.Sprintf("old-%d", m)}); err != nil {
					errc <- err
					return
				}
			}
		})
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		all := allEntries(t, l)
		verifyClean(t, l, workers*txs*records+txs)
		seqs := map[string][]int64{}
		for i, e := range all {
			if i > 0 && e.At.Before(all[i-1].At) {
				t.Errorf("entry %d at %s is earlier than entry %d at %s", e.Seq, e.At, all[i-1].Seq, all[i-1].At)
			}
			if e.Actor == "operator:old" {
				seqs[e.Subject] = append(seqs[e.Subject], e.Seq)
				continue
			}
			if k := strconv.Itoa(len(seqs[e.Subject])); e.Detail["k"] != k {
				t.Errorf("entry %d of %s is record %s of its transaction, want %s", e.Seq, e.Subject, e.Detail["k"], k)
			}
			seqs[e.Subject] = append(seqs[e.Subject], e.Seq)
		}
		if len(seqs) != workers*txs+txs {
			t.Errorf("the trail holds %d transactions, want %d", len(seqs), workers*txs+txs)
		}
		for subject, s := range seqs {
			want := records
			if strings.HasPrefix(subject, "old-") {
				want = 1
			}
			if len(s) != want || s[len(s)-1]-s[0] != int64(len(s)-1) {
				t.Errorf("transaction %s has entries %v, want %d next to each other", subject, s, want)
			}
		}
	}, audit.Schema)
}
