package audit_test

import (
	"context"
	"slices"
	"strconv"
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

// searchTrail writes these records one minute apart from t0 (seq 1 at
// t0, seq 2 at t0+1m, …).
var searchTrail = []audit.Record{
	1: {Actor: "staff:stf_ann", Action: "withdrawal.approved", Subject: "wd_1", Detail: map[string]string{"amount": "250.00", "currency": "EUR"}},
	2: {Actor: "staff:stf_bob", Action: "withdrawal.rejected", Subject: "wd_2", Detail: map[string]string{"reason": `document "expired" <scan>`}},
	3: {Actor: "system", Action: "ledger.transfer", Subject: "wd_1", Detail: map[string]string{"amount": "250.00", "code": "withdrawal"}},
	4: {Actor: "staff:stf_ann", Action: "setting.changed", Subject: "setting:auto-approve", Detail: map[string]string{"from": "100.00", "to": "500.00"}},
	5: {Actor: "operator:olga", Action: "token.revoked", Subject: "crm", Detail: map[string]string{"tokens": "3"}},
	6: {Actor: "staff:stf_ann", Action: "withdrawal.approved", Subject: "wd_3", Detail: map[string]string{"amount": "1250.00", "currency": "EUR"}},
	7: {Actor: "user:usr_9", Action: "withdrawals.exported", Subject: "", Detail: map[string]string{"rows": "12"}},
	8: {Actor: "staff:stf_bob", Action: "kyc.level_changed", Subject: "user:usr_9", Detail: map[string]string{"level": "verified", "note": "passport checked\nby phone"}},
}

func seqs(es []audit.Entry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestSearch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		l := audit.New(db, clk)
		for _, r := range searchTrail[1:] {
			if _, err := l.Record(ctx, r); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
		}
		tests := []struct {
			name string
			q    audit.Query
			want []int64
		}{
			{"everything, newest first", audit.Query{}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
			{"by subject", audit.Query{Subject: "wd_1"}, []int64{3, 1}},
			{"by subject of a user", audit.Query{Subject: "user:usr_9"}, []int64{8}},
			{"by actor", audit.Query{Actor: "staff:stf_ann"}, []int64{6, 4, 1}},
			{"actor is exact, not a prefix", audit.Query{Actor: "staff:"}, []int64{}},
			{"action prefix with the dot", audit.Query{Action: "withdrawal."}, []int64{6, 2, 1}},
			{"action prefix without the dot also takes withdrawals.", audit.Query{Action: "withdrawal"}, []int64{7, 6, 2, 1}},
			{"whole action", audit.Query{Action: "withdrawal.approved"}, []int64{6, 1}},
			{"action prefix matching nothing", audit.Query{Action: "withdrawal.approvedx"}, []int64{}},
			{"text in a value", audit.Query{Text: "250.00"}, []int64{6, 3, 1}},
			{"text is a substring", audit.Query{Text: "50.0"}, []int64{6, 3, 1}},
			{"text only in a key does not match", audit.Query{Text: "currency"}, []int64{}},
			{"text with quotes and angle brackets", audit.Query{Text: `"expired" <scan>`}, []int64{2}},
			{"text across a newline", audit.Query{Text: "checked\nby"}, []int64{8}},
			{"text is case-sensitive", audit.Query{Text: "PASSPORT"}, []int64{}},
			{"text that is also an action", audit.Query{Text: "withdrawal"}, []int64{3}},
			{"from is inclusive", audit.Query{From: t0.Add(5 * time.Minute)}, []int64{8, 7, 6}},
			{"to is exclusive", audit.Query{To: t0.Add(2 * time.Minute)}, []int64{2, 1}},
			{"a time window", audit.Query{From: t0.Add(time.Minute), To: t0.Add(4 * time.Minute)}, []int64{4, 3, 2}},
			{"filters combine", audit.Query{Actor: "staff:stf_ann", Action: "withdrawal.", Text: "EUR"}, []int64{6, 1}},
			{"limit", audit.Query{Limit: 3}, []int64{8, 7, 6}},
			{"before a seq", audit.Query{BeforeSeq: 4}, []int64{3, 2, 1}},
			{"before a seq with a filter and a limit", audit.Query{Actor: "staff:stf_ann", BeforeSeq: 6, Limit: 1}, []int64{4}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Search(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, seqs(got), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("seqs (-want +got):\n%s", diff)
				}
				for _, e := range got {
					want := searchTrail[e.Seq]
					if diff := cmp.Diff(want, e.Record, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("entry %d record (-want +got):\n%s", e.Seq, diff)
					}
					if wantAt := t0.Add(time.Duration(e.Seq-1) * time.Minute); !e.At.Equal(wantAt) {
						t.Errorf("entry %d at %s, want %s", e.Seq, e.At, wantAt)
					}
				}
			})
		}
	}, audit.Schema)
}

// TestSearchPages pages through a filtered trail with BeforeSeq and gets
// every match once, in order; for a text search it reads past many rows
// that match only in a key to fill the page.
func TestSearchPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		var want []int64
		for i := 1; i <= 40; i++ {
			actor := "system"
			if i%3 == 0 {
				actor = "staff:stf_1"
				want = append(want, int64(i))
			}
			if _, err := l.Record(ctx, audit.Record{Actor: actor, Action: "test.page", Detail: map[string]string{"ref": "needle-" + strconv.Itoa(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		// 150 newer entries hold "needle" only as a key.
		for range 150 {
			if _, err := l.Record(ctx, audit.Record{Actor: "system", Action: "test.noise", Detail: map[string]string{"needle": "x"}}); err != nil {
				t.Fatal(err)
			}
		}
		slices.Reverse(want)
		var got []int64
		before := int64(0)
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			page, err := l.Search(ctx, audit.Query{Actor: "staff:stf_1", BeforeSeq: before, Limit: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, seqs(page)...)
			before = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paged seqs (-want +got):\n%s", diff)
		}

		page, err := l.Search(ctx, audit.Query{Text: "needle", Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{40, 39, 38}, seqs(page)); diff != "" {
			t.Errorf("text search behind 150 key-only matches (-want +got):\n%s", diff)
		}
	}, audit.Schema)
}

func TestSearchRejectsBadQueries(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, audit.Schema)
	l := audit.New(db, nil)
	tests := []struct {
		name string
		q    audit.Query
	}{
		{"negative limit", audit.Query{Limit: -1}},
		{"limit too large", audit.Query{Limit: audit.MaxSearchLimit + 1}},
		{"negative seq", audit.Query{BeforeSeq: -5}},
		{"uppercase action", audit.Query{Action: "Withdrawal"}},
		{"action with a wildcard", audit.Query{Action: "withdrawal%"}},
		{"from after to", audit.Query{From: t0.Add(time.Hour), To: t0}},
		{"from equal to to", audit.Query{From: t0, To: t0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Search(context.Background(), tc.q); errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Search = %v, want EINVALID", err)
			}
		})
	}
}
