package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// chain is a trail of ten entries written for a tamper case.
type chain struct {
	db      *sqlstore.DB
	log     *audit.Log
	entries []audit.Entry // entries[i] has seq i+1
}

// seed empties the trail and writes ten entries.
func seed(t *testing.T, db *sqlstore.DB) chain {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `DELETE FROM audit_entries`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM audit_head`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?)`, audit.GenesisHash); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	c := chain{db: db, log: audit.New(db, clk)}
	for i := 1; i <= 10; i++ {
		e, err := c.log.Record(ctx, audit.Record{Actor: "staff:stf_" + strconv.Itoa(i%3), Action: "withdrawal.approved",
			Subject: "wd_" + strconv.Itoa(i), Detail: map[string]string{"amount": strconv.Itoa(i*100) + ".00", "currency": "EUR"}})
		if err != nil {
			t.Fatal(err)
		}
		c.entries = append(c.entries, e)
		clk.Advance(time.Second)
	}
	return c
}

// exec runs raw SQL on the table, as someone with database access would.
func (c chain) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := c.db.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// entry returns the entry with seq.
func (c chain) entry(seq int64) audit.Entry { return c.entries[seq-1] }

// insert writes a row with a correctly computed hash, as a forger who
// knows the encoding would.
func (c chain) insert(t *testing.T, seq int64, at time.Time, r audit.Record, prevHash string) string {
	t.Helper()
	detail := "{}"
	if len(r.Detail) > 0 {
		detail = mustJSON(t, r.Detail)
	}
	hash := referenceHash(seq, at.UnixMicro(), r, prevHash)
	c.exec(t, `INSERT INTO audit_entries (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, at.UnixMicro(), r.Actor, r.Action, r.Subject, detail, prevHash, hash)
	return hash
}

// rewriteFrom replaces entries from seq on with forged ones, each with a
// fresh, correct hash, and moves the head: a rewrite of the chain's tail.
func (c chain) rewriteFrom(t *testing.T, from int64) {
	t.Helper()
	c.exec(t, `DELETE FROM audit_entries WHERE seq >= ?`, from)
	prev := c.entry(from - 1).Hash
	last := int64(len(c.entries))
	for seq := from; seq <= last; seq++ {
		e := c.entry(seq)
		r := e.Record
		r.Detail = map[string]string{"amount": "1.00", "currency": "EUR"}
		prev = c.insert(t, seq, e.At, r, prev)
	}
	c.exec(t, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last, prev)
}

type wantProblem struct {
	Seq  int64
	Kind audit.Kind
}

// TestVerifyFindsTampering tampers with a ten-entry chain by raw SQL, one
// way per case, and checks that Verify reports exactly the expected
// problems, each at the right entry and of the right kind.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, c chain)
		anchor func(c chain) *audit.Anchor
		want   []wantProblem
	}{
		{name: "clean chain", tamper: func(*testing.T, chain) {}},
		{name: "clean chain with its head as anchor", tamper: func(*testing.T, chain) {},
			anchor: func(c chain) *audit.Anchor { a := c.entry(10).Anchor(); return &a }},
		{name: "clean chain with an older entry as anchor", tamper: func(*testing.T, chain) {},
			anchor: func(c chain) *audit.Anchor { a := c.entry(4).Anchor(); return &a }},
		{name: "edit a detail value", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET detail = ? WHERE seq = 5`, `{"amount":"5000.00","currency":"EUR"}`)
		}, want: []wantProblem{{5, audit.KindEdited}}},
		{name: "edit the actor", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET actor = 'staff:mallory' WHERE seq = 5`)
		}, want: []wantProblem{{5, audit.KindEdited}}},
		{name: "edit the time by a microsecond", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET at = at + 1 WHERE seq = 3`)
		}, want: []wantProblem{{3, audit.KindEdited}}},
		{name: "edit the subject of the first entry", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET subject = 'wd_x' WHERE seq = 1`)
		}, want: []wantProblem{{1, audit.KindEdited}}},
		{name: "replace the detail with something that is not JSON", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET detail = 'gone' WHERE seq = 5`)
		}, want: []wantProblem{{5, audit.KindEdited}}},
		{name: "edit an entry and recompute its hash", tamper: func(t *testing.T, c chain) {
			e := c.entry(5)
			e.Detail = map[string]string{"amount": "5000.00", "currency": "EUR"}
			c.exec(t, `UPDATE audit_entries SET detail = ?, hash = ? WHERE seq = 5`,
				`{"amount":"5000.00","currency":"EUR"}`, referenceHash(5, e.At.UnixMicro(), e.Record, e.PrevHash))
		}, want: []wantProblem{{6, audit.KindLink}}},
		{name: "delete a middle entry", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 5`)
		}, want: []wantProblem{{5, audit.KindMissing}}},
		{name: "delete three middle entries", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq BETWEEN 4 AND 6`)
		}, want: []wantProblem{{4, audit.KindMissing}}},
		{name: "delete the first entry", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 1`)
		}, want: []wantProblem{{1, audit.KindMissing}}},
		{name: "delete the last entry", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 10`)
		}, want: []wantProblem{{10, audit.KindHead}}},
		{name: "delete the last entry and move the head back: only the anchor tells", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 10`)
			c.exec(t, `UPDATE audit_head SET seq = 9, hash = ? WHERE id = 1`, c.entry(9).Hash)
		}, anchor: func(c chain) *audit.Anchor { a := c.entry(10).Anchor(); return &a },
			want: []wantProblem{{10, audit.KindAnchor}}},
		{name: "delete the head row", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_head`)
		}, want: []wantProblem{{10, audit.KindHead}}},
		{name: "change the head's hash", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_head SET hash = ? WHERE id = 1`, c.entry(9).Hash)
		}, want: []wantProblem{{10, audit.KindHead}}},
		{name: "insert a forged entry past the head", tamper: func(t *testing.T, c chain) {
			c.insert(t, 11, t0.Add(time.Hour), audit.Record{Actor: "staff:stf_1", Action: "withdrawal.approved", Subject: "wd_forged"}, c.entry(10).Hash)
		}, want: []wantProblem{{11, audit.KindHead}}},
		{name: "replace a middle entry with a forged one", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 5`)
			c.insert(t, 5, c.entry(5).At, audit.Record{Actor: "staff:stf_2", Action: "withdrawal.approved", Subject: "wd_forged"}, c.entry(4).Hash)
		}, want: []wantProblem{{6, audit.KindLink}}},
		{name: "insert an entry before the first", tamper: func(t *testing.T, c chain) {
			c.insert(t, 0, t0.Add(-time.Hour), audit.Record{Actor: "system", Action: "x.y"}, audit.GenesisHash)
		}, want: []wantProblem{{0, audit.KindLink}}},
		{name: "swap two entries' content", tamper: func(t *testing.T, c chain) {
			for _, p := range [][2]int64{{3, 4}, {4, 3}} {
				e := c.entry(p[1])
				c.exec(t, `UPDATE audit_entries SET at = ?, actor = ?, subject = ?, detail = ? WHERE seq = ?`,
					e.At.UnixMicro(), e.Actor, e.Subject, mustJSON(t, e.Detail), p[0])
			}
		}, want: []wantProblem{{3, audit.KindEdited}, {4, audit.KindEdited}}},
		{name: "swap two entries whole, hashes included", tamper: func(t *testing.T, c chain) {
			c.exec(t, `UPDATE audit_entries SET seq = 100 WHERE seq = 3`)
			c.exec(t, `UPDATE audit_entries SET seq = 3 WHERE seq = 4`)
			c.exec(t, `UPDATE audit_entries SET seq = 4 WHERE seq = 100`)
		}, want: []wantProblem{{3, audit.KindEdited}, {3, audit.KindLink}, {4, audit.KindEdited}, {4, audit.KindLink}, {5, audit.KindLink}}},
		{name: "an anchor that never was", tamper: func(*testing.T, chain) {},
			anchor: func(c chain) *audit.Anchor { return &audit.Anchor{Seq: 5, Hash: c.entry(6).Hash} },
			want:   []wantProblem{{5, audit.KindAnchor}}},
		{name: "an anchor past the end of the chain", tamper: func(*testing.T, chain) {},
			anchor: func(c chain) *audit.Anchor { return &audit.Anchor{Seq: 12, Hash: c.entry(6).Hash} },
			want:   []wantProblem{{12, audit.KindAnchor}}},
		{name: "an anchored entry that was deleted", tamper: func(t *testing.T, c chain) {
			c.exec(t, `DELETE FROM audit_entries WHERE seq = 5`)
		}, anchor: func(c chain) *audit.Anchor { a := c.entry(5).Anchor(); return &a },
			want: []wantProblem{{5, audit.KindMissing}, {5, audit.KindAnchor}}},
		// Whoever can write to the database can rewrite the chain with
		// fresh hashes: without an anchor that is invisible...
		{name: "rewrite the tail with fresh hashes, no anchor", tamper: func(t *testing.T, c chain) { c.rewriteFrom(t, 5) }},
		// ...and an anchor noted before the rewrite finds it.
		{name: "rewrite the tail with fresh hashes, anchor noted before", tamper: func(t *testing.T, c chain) { c.rewriteFrom(t, 5) },
			anchor: func(c chain) *audit.Anchor { a := c.entry(8).Anchor(); return &a },
			want:   []wantProblem{{8, audit.KindAnchor}}},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := seed(t, db)
				tc.tamper(t, c)
				var opts audit.VerifyOptions
				if tc.anchor != nil {
					opts.Anchor = tc.anchor(c)
				}
				rep, err := c.log.Verify(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				var got []wantProblem
				for _, p := range rep.Problems {
					got = append(got, wantProblem{p.Seq, p.Kind})
					if p.Detail == "" {
						t.Errorf("problem %v has no explanation", p)
					}
				}
				if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("problems (-want +got):\n%s\nreport:\n%s", diff, rep)
				}
				if rep.OK() != (len(tc.want) == 0) {
					t.Errorf("OK() = %v with problems %v", rep.OK(), rep.Problems)
				}
			})
		}
	}, audit.Schema)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyReportAndLimits(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, audit.Schema)
	ctx := context.Background()
	c := seed(t, db)

	rep, err := c.log.Verify(ctx, audit.VerifyOptions{Anchor: &audit.Anchor{Seq: 10, Hash: c.entry(10).Hash}})
	if err != nil {
		t.Fatal(err)
	}
	out := rep.String()
	for _, w := range []string{"checked 10 entries", "head " + c.entry(10).Anchor().String(), "clean", "anchor 10:" + c.entry(10).Hash + " matches"} {
		if !strings.Contains(out, w) {
			t.Errorf("report lacks %q:\n%s", w, out)
		}
	}

	c.exec(t, `UPDATE audit_entries SET actor = 'x' WHERE seq IN (2, 4, 6)`)
	rep, err = c.log.Verify(ctx, audit.VerifyOptions{MaxProblems: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 2 || rep.MoreProblems != 1 || rep.OK() {
		t.Errorf("with MaxProblems 2 and 3 edits: %d listed, %d more, OK %v; want 2, 1, false", len(rep.Problems), rep.MoreProblems, rep.OK())
	}
	if out := rep.String(); !strings.Contains(out, "3 problems") || !strings.Contains(out, "entry 2: edited") || !strings.Contains(out, "and 1 more") {
		t.Errorf("report:\n%s", out)
	}

	if _, err := c.log.Verify(ctx, audit.VerifyOptions{Anchor: &audit.Anchor{Seq: 0, Hash: audit.GenesisHash}}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Verify with anchor seq 0 = %v, want EINVALID", err)
	}
	if _, err := c.log.Verify(ctx, audit.VerifyOptions{Anchor: &audit.Anchor{Seq: 3, Hash: "abc"}}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Verify with a short anchor hash = %v, want EINVALID", err)
	}
}

func TestVerifyEmptyTrail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		rep, err := audit.New(db, nil).Verify(context.Background(), audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Checked != 0 || rep.Head != (audit.Anchor{Seq: 0, Hash: audit.GenesisHash}) {
			t.Errorf("Verify of an empty trail = %+v", rep)
		}
	}, audit.Schema)
}

// TestVerifyDoesNotWaitForWriters runs Verify while another transaction
// has written its entry and holds the head lock (it waits in a function
// that runs after the audit stage, just before its commit): Verify must
// finish, from a snapshot without the uncommitted entry, before that
// transaction ends.
func TestVerifyDoesNotWaitForWriters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c := seed(t, db)
		appended, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- db.Transact(ctx, func(tx *sqlstore.Tx) error {
				if err := c.log.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "x.y"}); err != nil {
					return err
				}
				tx.BeforeCommit(sqlstore.StageAudit+1, func(ctx context.Context, tx *sqlstore.Tx) error {
					var n int
					if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries`).Scan(&n); err != nil {
						return err
					}
					if n != 11 {
						return fmt.Errorf("the writer sees %d entries after the audit stage, want 11", n)
					}
					close(appended)
					<-release
					return nil
				})
				return nil
			})
		}()
		select {
		case <-appended:
		case err := <-done:
			t.Fatalf("the writer ended early: %v", err)
		}
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rep, err := c.log.Verify(vctx, audit.VerifyOptions{})
		cancel()
		close(release)
		if err != nil {
			t.Fatalf("Verify while a writer holds the head: %v", err)
		}
		if !rep.OK() || rep.Checked != 10 {
			t.Errorf("Verify during a write = %d checked, problems %v; want the 10 committed entries, clean", rep.Checked, rep.Problems)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}, audit.Schema)
}

func TestParseAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		want    audit.Anchor
		wantErr bool
	}{
		{in: "12:" + h, want: audit.Anchor{Seq: 12, Hash: h}},
		{in: " 12:" + strings.ToUpper(h) + "\n", want: audit.Anchor{Seq: 12, Hash: h}},
		{in: h, wantErr: true},
		{in: "0:" + h, wantErr: true},
		{in: "-1:" + h, wantErr: true},
		{in: "x:" + h, wantErr: true},
		{in: "12:" + h[:63], wantErr: true},
		{in: "12:" + h[:63] + "g", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := audit.ParseAnchor(tc.in)
			if tc.wantErr {
				if errs.CodeOf(err) != errs.Invalid {
					t.Errorf("ParseAnchor = %v, %v; want EINVALID", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseAnchor = %v, %v; want %v", got, err, tc.want)
			}
			if got.String() != strconv.FormatInt(tc.want.Seq, 10)+":"+h {
				t.Errorf("String = %q", got.String())
			}
		})
	}
}
