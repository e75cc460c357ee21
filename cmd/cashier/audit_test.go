package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// auditRun calls m.audit directly and returns its output and error.
func auditRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: env(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = m.audit(ctx, args)
	m.Close()
	return out.String(), errOut.String(), err
}

// auditDB migrates a new SQLite database with cashier's schemas and the
// audit schema, and writes three audit entries.
func auditDB(t *testing.T) (url string, db *sqlstore.DB, entries []audit.Entry) {
	t.Helper()
	url = sqliteURL(t)
	if _, _, err := run(t, nil, "migrate", "up", "-database-url", url); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx, audit.Schema); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	log := audit.New(db, clk)
	for _, r := range []audit.Record{
		{Actor: "staff:stf_ann", Action: "withdrawal.approved", Subject: "wd_1", Detail: map[string]string{"amount": "250.00", "currency": "EUR"}},
		{Actor: "operator:olga", Action: "setting.changed", Subject: "setting:auto-approve", Detail: map[string]string{"to": "500.00", "note": "per ticket 12\tfinance"}},
		{Actor: "staff:stf_ann", Action: "withdrawal.rejected", Subject: "wd_2", Detail: map[string]string{"reason": "name mismatch"}},
	} {
		e, err := log.Record(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
		clk.Advance(24 * time.Hour)
	}
	return url, db, entries
}

func TestAuditCommand(t *testing.T) {
	url, db, entries := auditDB(t)
	head := entries[2].Anchor().String()
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // fragments of stdout
		wantNot  []string
	}{
		{"verify a clean trail", []string{"verify"}, 0,
			[]string{"checked 3 entries", "head " + head, "clean"}, []string{"problems"}},
		{"verify with the head as anchor", []string{"verify", "--anchor", head}, 0,
			[]string{"anchor " + head + " matches"}, nil},
		{"verify with an anchor that never was", []string{"verify", "--anchor", "2:" + entries[2].Hash}, 1,
			[]string{"1 problems", "entry 2: anchor:"}, nil},
		{"verify with a malformed anchor", []string{"verify", "--anchor", "3-abc"}, 2, nil, nil},
		{"search everything", []string{"search"}, 0,
			[]string{"SEQ\tAT\tACTOR\tACTION\tSUBJECT\tDETAIL\n",
				"3\t2026-03-04T10:00:00Z\tstaff:stf_ann\twithdrawal.rejected\twd_2\treason=\"name mismatch\"\n",
				"2\t2026-03-03T10:00:00Z\toperator:olga\tsetting.changed\tsetting:auto-approve\tnote=\"per ticket 12\\tfinance\" to=500.00\n",
				"1\t2026-03-02T10:00:00Z\tstaff:stf_ann\twithdrawal.approved\twd_1\tamount=250.00 currency=EUR\n"}, nil},
		{"search by subject", []string{"search", "--subject", "wd_1"}, 0, []string{"\twd_1\t"}, []string{"wd_2", "olga"}},
		{"search by actor", []string{"search", "--actor", "operator:olga"}, 0, []string{"setting.changed"}, []string{"withdrawal"}},
		{"search by action prefix", []string{"search", "--action", "withdrawal."}, 0, []string{"wd_1", "wd_2"}, []string{"olga"}},
		{"search by text", []string{"search", "--text", "mismatch"}, 0, []string{"wd_2"}, []string{"wd_1"}},
		{"search by date", []string{"search", "--from", "2026-03-03", "--to", "2026-03-03"}, 0, []string{"olga"}, []string{"wd_1", "wd_2"}},
		{"search with a limit and paging", []string{"search", "--limit", "1", "--before", "3"}, 0, []string{"olga"}, []string{"wd_1", "wd_2"}},
		{"search with a bad date", []string{"search", "--from", "March"}, 2, nil, nil},
		{"search with a limit too large", []string{"search", "--limit", "5000"}, 2, nil, nil},
		{"search with an unknown flag", []string{"search", "--who", "x"}, 2, nil, nil},
		{"no command", []string{}, 2, nil, nil},
		{"unknown command", []string{"fix"}, 2, nil, nil},
		{"help", []string{"-h"}, 0, []string{"cashier audit verify [--anchor SEQ:HASH]"}, nil},
		{"help of a command", []string{"verify", "-h"}, 0, []string{"--anchor SEQ:HASH"}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			args := st.args
			if len(args) > 0 && (args[0] == "verify" || args[0] == "search") {
				args = append(args, "-database-url", url)
			}
			out, errOut, err := auditRun(t, args...)
			if got := ExitCode(err); got != st.wantCode {
				t.Fatalf("exit code = %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, st.wantCode, out, errOut)
			}
			for _, w := range st.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range st.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
		})
	}

	// Paging tells where to go on.
	if _, errOut, err := auditRun(t, "search", "--limit", "2", "-database-url", url); err != nil || !strings.Contains(errOut, "add --before 2") {
		t.Errorf("search --limit 2: stderr %q, %v; want a hint to page on with --before 2", errOut, err)
	}

	// Someone edits an entry in the database: verify fails with exit code
	// 1 and names the entry.
	if _, err := db.Exec(context.Background(), `UPDATE audit_entries SET detail = ? WHERE seq = 1`, `{"amount":"25000.00","currency":"EUR"}`); err != nil {
		t.Fatal(err)
	}
	out, _, err := auditRun(t, "verify", "--anchor", head, "-database-url", url)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "the audit trail has 1 problems") {
		t.Errorf("verify after an edit = %v, want exit 1 naming 1 problem", err)
	}
	if !strings.Contains(out, "entry 1: edited:") || !strings.Contains(out, "head "+head) {
		t.Errorf("verify after an edit printed:\n%s", out)
	}
}

func TestAuditCommandNeedsAMigratedDatabase(t *testing.T) {
	url := sqliteURL(t)
	_, _, err := auditRun(t, "verify", "-database-url", url)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "not migrated") {
		t.Errorf("verify on an empty database = %v, want exit 1 asking to migrate", err)
	}
}
