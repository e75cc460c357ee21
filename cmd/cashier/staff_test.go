package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/staff"
)

// TestStaffCommand runs `cashier staff …` against a migrated database in
// the order an operator would, then checks the results through the staff
// service and the audit trail.
func TestStaffCommand(t *testing.T) {
	ctx := context.Background()
	dbURL := sqliteURL(t)
	if _, _, err := run(t, nil, "migrate", "up", "-database-url", dbURL); err != nil {
		t.Fatal(err)
	}
	// The staff and audit schemas, until schemas() lists them (then this
	// applies nothing).
	db, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all := schemas()
	for _, extra := range []sqlstore.Schema{audit.Schema, staff.Schema} {
		if !slices.ContainsFunc(all, func(s sqlstore.Schema) bool { return s.Name == extra.Name }) {
			all = append(all, extra)
		}
	}
	if _, err := db.Migrate(ctx, all...); err != nil {
		t.Fatal(err)
	}

	const pw = "first admin passphrase"
	vars := map[string]string{"CASHIER_DATABASE_URL": dbURL, "USER": "olga"}
	steps := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     []string // fragments of stdout
	}{
		{"add the first admin", pw + "\n", []string{"add", "--email", "Olga@Broker.example", "--name", "Olga Admin", "--role", "admin", "--password-stdin"}, 0,
			[]string{"stf_", "Olga@Broker.example", "admin", "enrols an authenticator"}},
		{"the same address in another case", pw + "\n", []string{"add", "--email", "olga@broker.example", "--name", "Olga", "--role", "admin", "--password-stdin"}, 1, nil},
		{"a short password", "short\n", []string{"add", "--email", "finn@broker.example", "--name", "Finn", "--role", "finance", "--password-stdin"}, 2, nil},
		{"no password on stdin", "", []string{"add", "--email", "finn@broker.example", "--name", "Finn", "--role", "finance", "--password-stdin"}, 2, nil},
		{"without --password-stdin", "", []string{"add", "--email", "finn@broker.example", "--name", "Finn", "--role", "finance"}, 2, nil},
		{"an unknown role", pw + "\n", []string{"add", "--email", "finn@broker.example", "--name", "Finn", "--role", "root", "--password-stdin"}, 2, nil},
		{"add a finance member", "finance passphrase\r\n", []string{"add", "--email", "finn@broker.example", "--name", "Finn Finance", "--role", "finance", "--password-stdin"}, 0,
			[]string{"finn@broker.example", "finance"}},
		{"list", "", []string{"list"}, 0, []string{"Olga Admin", "Finn Finance", "not enrolled", "2 staff members"}},
		{"change a role", "", []string{"role", "finn@broker.example", "compliance"}, 0, []string{"finn@broker.example", "compliance", "active"}},
		{"demote the last admin", "", []string{"role", "olga@broker.example", "viewer"}, 1, nil},
		{"disable", "", []string{"disable", "FINN@broker.example"}, 0, []string{"disabled"}},
		{"enable", "", []string{"enable", "finn@broker.example"}, 0, []string{"active"}},
		{"reset TOTP", "", []string{"reset-totp", "finn@broker.example"}, 0, []string{"not enrolled"}},
		{"set a password", "a new finance passphrase\n", []string{"password", "finn@broker.example", "--password-stdin"}, 0, []string{"finn@broker.example"}},
		{"roles", "", []string{"roles"}, 0, []string{"withdrawals.decide", "approve or reject withdrawals", "COMPLIANCE"}},
		{"an unknown member", "", []string{"disable", "nobody@broker.example"}, 1, nil},
		{"disable without an address", "", []string{"disable"}, 2, nil},
		{"no command", "", nil, 2, nil},
		{"an unknown command", "", []string{"promote", "finn@broker.example"}, 2, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var out, errOut syncBuffer
			m := &Main{Stdin: strings.NewReader(st.stdin), Stdout: &out, Stderr: &errOut, Getenv: env(vars)}
			err := m.staff(ctx, st.args)
			if got := ExitCode(err); got != st.wantCode {
				t.Fatalf("exit code = %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, st.wantCode, &out, &errOut)
			}
			for _, w := range st.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &out)
				}
			}
			if strings.Contains(out.String()+errOut.String(), "passphrase") {
				t.Errorf("a password appears in the output:\n%s\n%s", &out, &errOut)
			}
		})
	}

	// The passwords read from standard input are the members' passwords.
	svc := staff.New(db, nil, staff.Options{})
	for email, password := range map[string]string{"olga@broker.example": pw, "finn@broker.example": "a new finance passphrase"} {
		if p, err := svc.BeginLogin(ctx, email, password); err != nil || !p.NeedsEnrolment {
			t.Errorf("BeginLogin(%s) = %+v, %v; want a login that enrols TOTP", email, p, err)
		}
	}
	finn, err := svc.GetByEmail(ctx, "finn@broker.example")
	if err != nil || finn.Role != staff.Compliance || finn.Status != staff.StatusActive {
		t.Errorf("finn = %+v, %v; want an active compliance member", finn, err)
	}

	// Every change is in the audit trail, by operator:$USER.
	entries, err := audit.New(db, nil).Search(ctx, audit.Query{Actor: "operator:olga"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		got = append(got, entries[i].Action)
	}
	if diff := cmp.Diff([]string{"staff.added", "staff.added", "staff.role_changed", "staff.disabled", "staff.enabled",
		"staff.totp_reset", "staff.password_set"}, got); diff != "" {
		t.Errorf("audit actions by operator:olga (-want +got):\n%s", diff)
	}

	// -h prints the staff usage, anywhere among the arguments.
	var out syncBuffer
	m := &Main{Stdout: &out, Getenv: env(vars)}
	if err := m.staff(ctx, []string{"add", "-h"}); !errors.Is(err, errHelp) || !strings.Contains(out.String(), "cashier staff reset-totp EMAIL") {
		t.Errorf("staff add -h = %v, %q; want the staff usage", err, &out)
	}
}
