package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// reconcileCmd runs `cashier reconcile` through m.reconcile and returns its
// output and exit code.
func reconcileCmd(t *testing.T, vars map[string]string, args ...string) (string, int) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: env(vars)}
	m.setup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.reconcile(ctx, args)
	if err == errHelp {
		err = nil
	}
	if err != nil {
		t.Logf("reconcile %v: %v\nstderr: %s", args, err, &errOut)
	}
	return out.String(), ExitCode(err)
}

func TestReconcileCommand(t *testing.T) {
	ctx := context.Background()
	dbURL := sqliteURL(t)
	vars := map[string]string{"CASHIER_DATABASE_URL": dbURL}
	if _, code := reconcileCmd(t, vars, "cases"); code != 1 {
		t.Errorf("cases on a database that is not migrated: exit %d, want 1", code)
	}
	db, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, reconcileSchemas()...); err != nil {
		t.Fatal(err)
	}

	// Nothing yet: a clean run over nothing.
	out, code := reconcileCmd(t, vars)
	if code != 0 || !strings.Contains(out, "clean: 0 accounts, 0 payments checked") ||
		!strings.Contains(out, "no trading platform is configured") || !strings.Contains(out, "no payment provider is configured") {
		t.Errorf("first run: exit %d\n%s", code, out)
	}

	// A trading account on the cTrader simulator, and a DEPOSIT push the
	// platform applied but nobody booked in the ledger.
	const login = int64(7000001)
	sim, err := ctradersim.Start(ctx, ctradersim.Config{Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders:  []ctradersim.TraderSeed{{Login: login, Currency: "USD", Balance: "100.00", Password: "pw"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	client, err := ctrader.New(ctrader.Config{BaseURL: sim.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pushes := push.New(db, client, push.Options{Logger: logger})
	pushes.RegisterOwner("test", push.OwnerFunc(func(context.Context, *sqlstore.Tx, push.Push) error { return nil }))
	if err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
		_, err := pushes.EnqueueTx(ctx, tx, push.Request{ID: "dep_cli:credit", Owner: "test", OwnerID: "dep_cli", Change: platform.BalanceChange{
			Login: login, Type: platform.Deposit, Amount: money.New(1000, money.MustCurrency("USD"))}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(db, jobs.Options{Workers: 1, HeartbeatInterval: -1, Logger: logger})
	pushes.Register(runner)
	if _, err := runner.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := pushes.Get(ctx, "dep_cli:credit"); err != nil || p.State != push.Applied {
		t.Fatalf("push %+v, %v; want applied", p, err)
	}

	// A payment at the sandbox that the cashier never made, an hour old.
	sb, err := inProcessSandbox(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.StartPayment(ctx, psp.PaymentRequest{ID: "pay_cli_stranger", Method: psp.BankTransfer, Amount: money.New(5000, money.MustCurrency("EUR"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE sandbox_payments SET updated_at = updated_at - 3600000000, created_at = created_at - 3600000000`); err != nil {
		t.Fatal(err)
	}

	vars["CASHIER_CTRADER_URL"] = sim.URL()
	vars["CASHIER_CTRADER_MANAGER_LOGIN"] = "1001"
	vars["CASHIER_CTRADER_MANAGER_PASSWORD"] = "manager-password"
	out, code = reconcileCmd(t, vars, "run", "-sandbox", "true", "-by", "olga")
	if code != 1 {
		t.Errorf("a run with differences: exit %d, want 1\n%s", code, out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"3 differences (3 new): 1 account, 1 payment checked",
		"ledger_vs_platform 7000001 0.00 USD (ledger platform:ctrader:7000001) 10.00 USD (net of the platform's changes with our ids)",
		"ledger_vs_pushes 7000001 0.00 USD (ledger platform:ctrader:7000001) 10.00 USD (net of the pushes recorded applied)",
		"report_line_unknown pay_cli_stranger sbp_",
		"no payment of ours payment pending 50.00 EUR",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	ids := regexp.MustCompile(`rcc_[0-9a-f-]{36}`).FindAllString(out, -1)
	if len(ids) != 3 {
		t.Fatalf("case ids in the output: %v", ids)
	}

	out, code = reconcileCmd(t, vars, "show", ids[0])
	if code != 0 || !strings.Contains(out, "case      "+ids[0]) || !strings.Contains(out, "evidence") || !strings.Contains(out, `"posted": "0.00 USD"`) {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	out, code = reconcileCmd(t, vars, "resolve", ids[2], "-by", "olga", "-note", "a test payment at the provider")
	if code != 0 || !strings.Contains(out, "resolved by operator:olga") {
		t.Errorf("resolve: exit %d\n%s", code, out)
	}
	out, code = reconcileCmd(t, vars, "cases", "--open")
	if code != 0 || !strings.Contains(out, "2 cases") || strings.Contains(out, ids[2]) {
		t.Errorf("open cases: exit %d\n%s", code, out)
	}
	out, code = reconcileCmd(t, vars, "cases")
	if code != 0 || !strings.Contains(out, "3 cases") || !strings.Contains(out, "resolved") {
		t.Errorf("all cases: exit %d\n%s", code, out)
	}
	out, code = reconcileCmd(t, vars, "runs")
	if code != 0 || !strings.Contains(out, "2 runs") || !strings.Contains(out, "operator:olga") || !strings.Contains(out, "clean: 0 accounts") {
		t.Errorf("runs: exit %d\n%s", code, out)
	}
	// The login alone: its two cases, still open, seen again.
	out, code = reconcileCmd(t, vars, "--login", "7000001", "-sandbox=true")
	if code != 1 || !strings.Contains(out, "2 differences (0 new): 1 account, 0 payments checked") {
		t.Errorf("one login: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"an unknown command", []string{"bogus"}, 2},
		{"resolve without a case", []string{"resolve"}, 2},
		{"resolve without -by", []string{"resolve", ids[0], "-note", "x"}, 2},
		{"resolve without a note", []string{"resolve", ids[0], "-by", "olga"}, 2},
		{"resolve an unknown case", []string{"resolve", "rcc_nope", "-by", "olga", "-note", "x"}, 1},
		{"resolve twice", []string{"resolve", ids[2], "-by", "olga", "-note", "x"}, 1},
		{"show an unknown case", []string{"show", "rcc_nope"}, 1},
		{"a bad login", []string{"run", "--login", "seven"}, 2},
		{"a setting without a value", []string{"run", "-ctrader-url"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code := reconcileCmd(t, vars, tc.args...); code != tc.want {
				t.Errorf("exit %d, want %d", code, tc.want)
			}
		})
	}
}
