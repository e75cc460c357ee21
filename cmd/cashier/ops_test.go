package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// runIn runs one command with standard input and returns its output and
// error.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = m.Run(ctx, args)
	m.Close()
	return out.String(), errOut.String(), err
}

// TestOperatorCommands runs the operator commands against a migrated
// database, in the order an operator would.
func TestOperatorCommands(t *testing.T) {
	dbURL := sqliteURL(t)
	if _, _, err := run(t, nil, "users", "list", "-database-url", dbURL); err == nil || ExitCode(err) != 1 ||
		!strings.Contains(err.Error(), "not migrated (run cashier migrate up)") {
		t.Errorf("users list before migrating = %v, want exit 1 asking to migrate", err)
	}
	if _, _, err := run(t, nil, "migrate", "up", "-database-url", dbURL); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CASHIER_DATABASE_URL": dbURL}

	steps := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     []string // fragments of stdout
	}{
		{"add a user with a password", "s3cret-passphrase\n", []string{"users", "add", "--email", "dana@example.com", "--password-stdin", "--ctid", "777"}, 0,
			[]string{"dana@example.com"}},
		{"add the same user again", "", []string{"users", "add", "--email", "DANA@example.com"}, 1, nil},
		{"list users", "", []string{"users", "list"}, 0, []string{"dana@example.com", "777"}},
		{"link an account", "", []string{"accounts", "link", "--user", "dana@example.com", "--login", "4000001", "--env", "live", "--currency", "EUR"}, 0,
			[]string{"4000001"}},
		{"list accounts", "", []string{"accounts", "list"}, 0, []string{"4000001", "EUR", "live"}},
		{"users without a command", "", []string{"users"}, 2, nil},
		{"revoke crm tokens", "", []string{"crm-tokens", "revoke"}, 0, []string{"0"}},
		{"crm-tokens without revoke", "", []string{"crm-tokens"}, 2, nil},
		{"list pushes", "", []string{"push", "list"}, 0, []string{"ID", "STATE"}},
		{"show an unknown push", "", []string{"push", "show", "push_nope"}, 1, nil},
		{"set a rate", "", []string{"fx", "-by", "olga", "set", "EUR/USD", "1.0835"}, 0, nil},
		{"list rates", "", []string{"fx", "list"}, 0, []string{"EUR/USD", "1.0835", "olga"}},
		{"a malformed rate", "", []string{"fx", "set", "EUR/USD", "one"}, 2, nil},
		{"list withdrawals", "", []string{"withdrawals", "list"}, 0, []string{"0 withdrawals awaiting approval"}},
		{"approve an unknown withdrawal", "", []string{"withdrawals", "approve", "wd_nope", "-by", "olga"}, 1, nil},
		{"withdrawals without a command", "", []string{"withdrawals"}, 2, nil},
		{"tasks", "", []string{"tasks"}, 0, []string{"0 tasks"}},
		{"operators' changes are in the audit trail", "", []string{"audit", "search", "--action", "setting.changed"}, 0,
			[]string{"olga", "fx:EUR/USD", "1.0835"}},
		{"token revocations are in the audit trail", "", []string{"audit", "search", "--action", "token.revoked"}, 0,
			[]string{"crmApiToken"}},
		{"the audit trail verifies", "", []string{"audit", "verify"}, 0, []string{"checked 2 entries", "clean"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var out, errOut syncBuffer
			m := &Main{Stdin: strings.NewReader(st.stdin), Stdout: &out, Stderr: &errOut, Getenv: env(vars)}
			err := m.Run(context.Background(), st.args)
			m.Close()
			if got := ExitCode(err); got != st.wantCode {
				t.Fatalf("exit code = %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, st.wantCode, &out, &errOut)
			}
			for _, w := range st.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &out)
				}
			}
		})
	}

	// The password given on standard input works; it never appears in
	// any output.
	out, errOut, err := runIn(t, "", "users", "list", "-database-url", dbURL)
	if err != nil || strings.Contains(out+errOut, "s3cret") {
		t.Errorf("users list = %q, %v; it must not show passwords", out, err)
	}
	if out, _, err := runIn(t, "", "users", "-h"); err != nil || !strings.Contains(out, "cashier withdrawals approve ID -by NAME") {
		t.Errorf("users -h = %q, %v; want the operator commands' usage", out, err)
	}
}
