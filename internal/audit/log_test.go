package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// referenceHash is the hash of an entry written out from docs/audit.md,
// independently of the package: each field as "<byte length>:<bytes>,".
func referenceHash(seq, atMicros int64, r audit.Record, prevHash string) string {
	var b strings.Builder
	f := func(s string) { fmt.Fprintf(&b, "%d:%s,", len(s), s) }
	f("opencashier-audit-v1")
	f(strconv.FormatInt(seq, 10))
	f(strconv.FormatInt(atMicros, 10))
	f(r.Actor)
	f(r.Action)
	f(r.Subject)
	f(strconv.Itoa(len(r.Detail)))
	keys := make([]string, 0, len(r.Detail))
	for k := range r.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f(k)
		f(r.Detail[k])
	}
	f(prevHash)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func TestRecordAndReadBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		l := audit.New(db, clk)
		records := []audit.Record{
			{Actor: "staff:stf_1", Action: "withdrawal.approved", Subject: "wd_42", Detail: map[string]string{"amount": "100.00", "currency": "EUR"}},
			{Actor: "system", Action: "ledger.transfer", Subject: "tr_1", Detail: map[string]string{"note": "line one\nline two", "quote": `say "hi" <b>&`}},
			{Actor: "operator:olga", Action: "token.revoked"},
		}
		var written []audit.Entry
		for i, r := range records {
			e, err := l.Record(ctx, r)
			if err != nil {
				t.Fatalf("Record %d: %v", i, err)
			}
			written = append(written, e)
			clk.Advance(1500 * time.Microsecond)
		}
		// The first entry's hash is the example worked out in docs/audit.md.
		if want := "cea5a0d5824a85cd55222c1438db6e810f662db97224164a9075c31137cba64c"; written[0].Hash != want {
			t.Errorf("first hash = %s, want the documented %s", written[0].Hash, want)
		}
		prev := audit.GenesisHash
		for i, e := range written {
			if e.Seq != int64(i+1) || e.PrevHash != prev || !e.At.Equal(t0.Add(time.Duration(i)*1500*time.Microsecond)) {
				t.Errorf("entry %d = seq %d at %s prev %s, want seq %d linked to %s", i, e.Seq, e.At, e.PrevHash, i+1, prev)
			}
			if want := referenceHash(e.Seq, e.At.UnixMicro(), records[i], prev); e.Hash != want {
				t.Errorf("entry %d hash = %s, want %s by the documented encoding", i, e.Hash, want)
			}
			prev = e.Hash
		}

		got, err := l.Search(ctx, audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(written)
		slices.Reverse(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Search all (-want +got):\n%s", diff)
		}
		head, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head != written[2].Anchor() {
			t.Errorf("Head = %v, want %v", head, written[2].Anchor())
		}
		rep, err := l.Verify(ctx, audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Checked != 3 || rep.Head != head {
			t.Errorf("Verify = %+v, want clean, 3 checked, head %v", rep, head)
		}
	}, audit.Schema)
}

// TestRecordKeepsCallersMap checks that the entry does not share the
// caller's detail map, which the caller may change afterwards.
func TestRecordKeepsCallersMap(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, audit.Schema)
	l := audit.New(db, clock.NewFake(t0))
	d := map[string]string{"k": "v"}
	e, err := l.Record(context.Background(), audit.Record{Actor: "system", Action: "x.y", Detail: d})
	if err != nil {
		t.Fatal(err)
	}
	d["k"] = "changed"
	if e.Detail["k"] != "v" {
		t.Errorf("entry detail changed with the caller's map: %v", e.Detail)
	}
}

func TestRecordTxCommitsWithTheCaller(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		var rec audit.Recorder = l
		boom := errors.New("the change failed")
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if err := rec.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "deposit.credited", Subject: "dep_1"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact = %v, want the caller's error", err)
		}
		if got, _ := l.Search(ctx, audit.Query{}); len(got) != 0 {
			t.Fatalf("a rolled-back record is in the trail: %+v", got)
		}
		if err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			return rec.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "deposit.credited", Subject: "dep_2"})
		}); err != nil {
			t.Fatal(err)
		}
		got, err := l.Search(ctx, audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Seq != 1 || got[0].Subject != "dep_2" {
			t.Errorf("after a rollback and a commit the trail is %+v, want dep_2 as entry 1", got)
		}

		// Several records in one transaction follow each other in the chain.
		if err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			for _, s := range []string{"tr_1", "tr_2", "tr_3"} {
				if err := rec.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "ledger.transfer", Subject: s}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := l.Verify(ctx, audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Checked != 4 {
			t.Errorf("after three records in one transaction: %d checked, problems %v; want 4, clean", rep.Checked, rep.Problems)
		}
	}, audit.Schema)
}

func TestRecordRejectsInvalidRecords(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, audit.Schema)
	ctx := context.Background()
	l := audit.New(db, clock.NewFake(t0))
	many := map[string]string{}
	for i := range audit.MaxDetailKeys + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	tests := []struct {
		name string
		r    audit.Record
	}{
		{"no actor", audit.Record{Action: "x.y"}},
		{"no action", audit.Record{Actor: "system"}},
		{"uppercase action", audit.Record{Actor: "system", Action: "Withdrawal.Approved"}},
		{"action with a space", audit.Record{Actor: "system", Action: "withdrawal approved"}},
		{"action starting with a digit", audit.Record{Actor: "system", Action: "1x"}},
		{"long action", audit.Record{Actor: "system", Action: strings.Repeat("a", audit.MaxActionLen+1)}},
		{"actor with a newline", audit.Record{Actor: "staff:1\nsystem", Action: "x.y"}},
		{"long actor", audit.Record{Actor: strings.Repeat("a", audit.MaxActorLen+1), Action: "x.y"}},
		{"long subject", audit.Record{Actor: "system", Action: "x.y", Subject: strings.Repeat("s", audit.MaxSubjectLen+1)}},
		{"actor not UTF-8", audit.Record{Actor: "staff:\xff", Action: "x.y"}},
		{"empty detail key", audit.Record{Actor: "system", Action: "x.y", Detail: map[string]string{"": "v"}}},
		{"detail value not UTF-8", audit.Record{Actor: "system", Action: "x.y", Detail: map[string]string{"k": "\xc3"}}},
		{"detail value with NUL", audit.Record{Actor: "system", Action: "x.y", Detail: map[string]string{"k": "a\x00b"}}},
		{"long detail value", audit.Record{Actor: "system", Action: "x.y", Detail: map[string]string{"k": strings.Repeat("v", audit.MaxDetailValueLen+1)}}},
		{"too many detail keys", audit.Record{Actor: "system", Action: "x.y", Detail: many}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Record(ctx, tc.r)
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Record = %v, want EINVALID", err)
			}
		})
	}
	if head, err := l.Head(ctx); err != nil || head.Seq != 0 {
		t.Errorf("Head after only invalid records = %v, %v; want seq 0", head, err)
	}
}

// TestConcurrentAppendsFormOneChain has 8 goroutines append 50 records
// each, half in their own transaction and half inside a caller's: the
// trail must be one contiguous, valid chain holding every record once.
func TestConcurrentAppendsFormOneChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.System{})
		const workers, each = 8, 50
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					r := audit.Record{Actor: fmt.Sprintf("staff:w%d", w), Action: "test.append", Subject: strconv.Itoa(i)}
					var err error
					if i%2 == 0 {
						_, err = l.Record(ctx, r)
					} else {
						err = db.Transact(ctx, func(tx *sqlstore.Tx) error { return l.RecordTx(ctx, tx, r) })
					}
					if err != nil {
						errc <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		rep, err := l.Verify(ctx, audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Checked != workers*each || rep.Head.Seq != workers*each {
			t.Fatalf("Verify after concurrent appends = checked %d, head %v, problems %v; want a clean chain of %d", rep.Checked, rep.Head, rep.Problems, workers*each)
		}
		seen := map[string]int{}
		before := int64(0)
		for {
			page, err := l.Search(ctx, audit.Query{BeforeSeq: before, Limit: 77})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				seen[e.Actor+"/"+e.Subject]++
			}
			before = page[len(page)-1].Seq
		}
		if len(seen) != workers*each {
			t.Errorf("distinct records = %d, want %d", len(seen), workers*each)
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("record %s is in the trail %d times", k, n)
			}
		}
	}, audit.Schema)
}

func BenchmarkRecord(b *testing.B) {
	db := dbtest.Open(b, sqlstore.SQLite, audit.Schema)
	l := audit.New(db, nil)
	ctx := context.Background()
	r := audit.Record{Actor: "staff:stf_1", Action: "withdrawal.approved", Subject: "wd_42",
		Detail: map[string]string{"amount": "100.00", "currency": "EUR", "reason": "documents checked"}}
	for b.Loop() {
		if _, err := l.Record(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
