package reports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func TestCSVExportsEveryMatchingRow(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()
		// Two rows per query: the export must cross batches and still
		// write every row once.
		reports.SetCSVBatch(r.rep, 2)
		var buf bytes.Buffer
		if err := r.rep.WriteCSV(ctx, &buf, reports.Filter{Kind: "refund"}); !isInvalid(err, "kind") || buf.Len() != 0 {
			t.Fatalf("a bad filter: %v, wrote %q; want EINVALID before writing", err, buf.String())
		}
		// Limit and Cursor are a page's; the export ignores them.
		first, err := r.rep.Search(ctx, reports.Filter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.rep.WriteCSV(ctx, &buf, reports.Filter{Limit: 1, Cursor: first.Next}); err != nil {
			t.Fatal(err)
		}
		raw := buf.String()
		if strings.Count(raw, "\r\n") != len(s.order)+1 || strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") {
			t.Errorf("want %d CRLF-terminated lines and no bare LF:\n%q", len(s.order)+1, raw)
		}
		records, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(reports.CSVHeader, records[0]); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		var ids []string
		byID := map[string]map[string]string{}
		for _, rec := range records[1:] {
			m := map[string]string{}
			for i, h := range records[0] {
				m[h] = rec[i]
			}
			ids = append(ids, m["id"])
			byID[m["id"]] = m
		}
		// Not limited to a page: every row, newest first, once.
		if diff := cmp.Diff(s.ids(newest(s.order)...), ids); diff != "" {
			t.Errorf("exported ids (-want +got):\n%s", diff)
		}

		d := s.deposits["aliceEURDep"]
		got := byID[d.ID]
		want := map[string]string{
			"id": d.ID, "kind": "deposit", "created_at": d.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"updated_at": d.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), "user_id": r.users["alice"].UserID,
			"email": "alice@example.com", "login": "8673591", "method": "card", "provider": "sandbox", "status": "completed", "flag": "",
			"currency": "EUR", "amount": "100.00", "fee": "2.80", "credit_currency": "EUR", "credit": "97.20",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("EUR deposit (-want +got):\n%s", diff)
		}
		for _, col := range []string{"created_at", "updated_at"} {
			at, err := time.Parse(time.RFC3339Nano, got[col])
			if err != nil || at.Location() != time.UTC {
				t.Errorf("%s %q is not RFC 3339 in UTC: %v", col, got[col], err)
			}
		}
		w := s.withdrawals["aliceWd"]
		if got := byID[w.ID]; got["amount"] != "300.00" || got["fee"] != w.Fee.Decimal() || got["credit"] != w.Net.Decimal() {
			t.Errorf("withdrawal amounts %s / %s / %s, want 300.00 / %s / %s", got["amount"], got["fee"], got["credit"], w.Fee.Decimal(), w.Net.Decimal())
		}
	})
}

func TestCSVDefusesFormulas(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		var buf bytes.Buffer
		if err := r.rep.WriteCSV(context.Background(), &buf, reports.Filter{UserID: r.users["mallory"].UserID}); err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != 2 || records[1][0] != s.id("malloryDep") {
			t.Fatalf("mallory's export: %q", records)
		}
		if got := records[1][5]; got != "'=1+2@example.com" {
			t.Errorf("e-mail cell %q, want it prefixed with a quote", got)
		}
	})
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCSVReportsAWriterThatFails(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		drive(r)
		err := r.rep.WriteCSV(context.Background(), failingWriter{}, reports.Filter{})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("WriteCSV to a failing writer: %v", err)
		}
	})
}
