package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/pgtest"
)

func sqliteURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "cashier.db")
}

func TestServe(t *testing.T) {
	dbURL := sqliteURL(t)
	s := startServe(t, map[string]string{"CASHIER_DATABASE_URL": dbURL}, "-addr", "127.0.0.1:0")
	base := "http://" + s.addr

	resp, body := get(t, base+"/healthz", nil)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	resp, body = get(t, base+"/readyz", nil)
	if resp.StatusCode != 200 || body != `{"status":"ready"}`+"\n" {
		t.Errorf("/readyz = %d %q, want 200 ready", resp.StatusCode, body)
	}
	resp, _ = get(t, base+"/healthz", map[string]string{"X-Request-Id": "e2e-42"})
	if got := resp.Header.Get("X-Request-Id"); got != "e2e-42" {
		t.Errorf("X-Request-Id = %q, want the caller's e2e-42 echoed", got)
	}
	resp, _ = get(t, base+"/no/such/page", map[string]string{"X-Request-Id": "e2e-43"})
	if resp.StatusCode != 404 {
		t.Errorf("unknown path = %d, want 404", resp.StatusCode)
	}
	resp, body = get(t, base+"/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		"go_goroutines ",
		"process_resident_memory_bytes ",
		`cashier_http_requests_total{code="200",method="GET",route="GET /healthz"} 2`,
		`cashier_http_requests_total{code="200",method="GET",route="GET /readyz"} 1`,
		`cashier_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`cashier_http_request_duration_seconds_count{method="GET",route="GET /healthz"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := s.stop(t); err != nil {
		t.Errorf("serve returned %v after cancellation, want nil", err)
	}
	log := s.stderr.String()
	access := logLines(log, "http request")
	if len(access) != 1 || !strings.Contains(access[0], `"request_id":"e2e-43"`) || !strings.Contains(access[0], `"status":404`) {
		t.Errorf("access log at info level = %q, want the one 404 with its request id (probes log at debug)", access)
	}
	for _, msg := range []string{"applied migrations", "cashier started", "shutting down", "shutdown complete"} {
		if len(logLines(log, msg)) != 1 {
			t.Errorf("log lacks one %q record:\n%s", msg, log)
		}
	}
	// serve migrated the database it was given.
	out, _, err := run(t, nil, "migrate", "status", "-database-url", dbURL)
	if err != nil || !strings.HasSuffix(out, " applied, 0 pending\n") {
		t.Errorf("migrate status after serve = %q, %v; want everything applied", out, err)
	}
}

func TestServeLogsAsText(t *testing.T) {
	s := startServe(t, nil, "-addr", "127.0.0.1:0", "-database-url", sqliteURL(t), "-log-format", "text", "-log-level", "debug")
	get(t, "http://"+s.addr+"/healthz", map[string]string{"X-Request-Id": "txt-1"})
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	log := s.stderr.String()
	if !strings.Contains(log, `msg="http request" method=GET path=/healthz route="GET /healthz" status=200`) ||
		!strings.Contains(log, "request_id=txt-1") {
		t.Errorf("text log lacks the debug-level probe record with its request id:\n%s", log)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	s := startServe(t, map[string]string{"CASHIER_ADDR": "abc", "CASHIER_DATABASE_URL": "mysql://x"},
		"-addr", "127.0.0.1:0", "-database-url", sqliteURL(t))
	if resp, _ := get(t, "http://"+s.addr+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
	if err := s.stop(t); err != nil {
		t.Error(err)
	}
}

func TestServeOnPostgres(t *testing.T) {
	dbURL := pgtest.URL(t)
	s := startServe(t, map[string]string{"CASHIER_DATABASE_URL": dbURL, "CASHIER_ADDR": "127.0.0.1:0"})
	base := "http://" + s.addr
	if resp, body := get(t, base+"/readyz", nil); resp.StatusCode != 200 {
		t.Fatalf("/readyz = %d %s", resp.StatusCode, body)
	}

	// Take the database away: readiness must say so, liveness must not care.
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, base+"/readyz", nil)
	if resp.StatusCode != 503 || body != `{"status":"unavailable","reason":"database is not reachable"}`+"\n" {
		t.Errorf("/readyz without database = %d %q, want 503 with the reason", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz without database = %d, want 200", resp.StatusCode)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("serve returned %v, want nil", err)
	}
}

func TestBadStart(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantErr    string
		wantStderr string
	}{
		{"address without port", map[string]string{"CASHIER_ADDR": "abc"}, nil, 2,
			`config: CASHIER_ADDR (-addr): "abc" is not host:port`, "Run 'cashier serve -h' to list the settings."},
		{"unsupported database", map[string]string{"CASHIER_DATABASE_URL": "mysql://x"}, nil, 2,
			`config: CASHIER_DATABASE_URL (-database-url): "mysql://x" is not a database URL`, "cashier serve -h"},
		{"bad log level flag", nil, []string{"-log-level", "loud"}, 2,
			`config: CASHIER_LOG_LEVEL (-log-level): "loud" is not one of debug, info, warn, error`, "cashier serve -h"},
		{"zero shutdown timeout", map[string]string{"CASHIER_SHUTDOWN_TIMEOUT": "0s"}, nil, 2,
			`CASHIER_SHUTDOWN_TIMEOUT (-shutdown-timeout): "0s" is not a positive duration`, "cashier serve -h"},
		{"unknown flag", nil, []string{"-port", "80"}, 2, "flag provided but not defined: -port", "-addr, CASHIER_ADDR"},
		{"stray argument", nil, []string{"now"}, 2, `unexpected argument "now"`, "-addr, CASHIER_ADDR"},
		{"database not reachable", nil, []string{"-database-url", "postgres://u:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"}, 1,
			"open database postgres://u:xxxxx@127.0.0.1:1/x?sslmode=disable&connect_timeout=5: sqlstore.Open: database is not reachable", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "-addr", "127.0.0.1:0"}, tc.args...)
			if tc.env["CASHIER_ADDR"] != "" {
				args = append([]string{"serve"}, tc.args...)
			}
			if tc.env["CASHIER_DATABASE_URL"] == "" && !strings.Contains(strings.Join(tc.args, " "), "-database-url") {
				args = append(args, "-database-url", sqliteURL(t))
			}
			_, stderr, err := run(t, tc.env, args...)
			if err == nil {
				t.Fatal("serve started, want it to refuse")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the database password: %q", err)
			}
			if got := ExitCode(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d", got, tc.wantCode)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

func TestServeOnBusyAddress(t *testing.T) {
	s := startServe(t, nil, "-addr", "127.0.0.1:0", "-database-url", sqliteURL(t))
	_, _, err := run(t, nil, "serve", "-addr", s.addr, "-database-url", sqliteURL(t))
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+s.addr) || ExitCode(err) != 1 {
		t.Errorf("second serve on %s = %v (exit %d), want exit 1 naming the address", s.addr, err, ExitCode(err))
	}
	if err := s.stop(t); err != nil {
		t.Error(err)
	}
}

// migrationFiles lists the migration files every schema holds for a dialect.
func migrationFiles(t *testing.T, d sqlstore.Dialect) []string {
	var names []string
	for _, s := range schemas() {
		entries, err := fs.ReadDir(s.FS, string(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				names = append(names, e.Name())
			}
		}
	}
	return names
}

func TestMigrate(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			dbURL := sqliteURL(t)
			if d == sqlstore.Postgres {
				dbURL = pgtest.URL(t)
			}
			vars := map[string]string{"CASHIER_DATABASE_URL": dbURL}
			files := migrationFiles(t, d)
			if len(files) == 0 {
				t.Fatal("no migrations known")
			}

			out, _, err := run(t, vars, "migrate", "status")
			if err != nil {
				t.Fatalf("migrate status: %v", err)
			}
			var want strings.Builder
			for _, f := range files {
				want.WriteString(sqlstore.MigrationState{Source: f}.String() + "\n")
			}
			if diff := cmp.Diff(want.String()+"0 applied, "+itoa(len(files))+" pending\n", out); diff != "" {
				t.Errorf("status before (-want +got):\n%s", diff)
			}

			out, _, err = run(t, vars, "migrate", "up")
			if err != nil {
				t.Fatalf("migrate up: %v", err)
			}
			want.Reset()
			for _, f := range files {
				want.WriteString("applied " + f + "\n")
			}
			want.WriteString(itoa(len(files)) + " migrations applied; the database is up to date\n")
			if diff := cmp.Diff(want.String(), out); diff != "" {
				t.Errorf("migrate up (-want +got):\n%s", diff)
			}

			out, _, err = run(t, vars, "migrate", "up")
			if err != nil || out != "nothing to apply; all "+itoa(len(files))+" migrations are applied\n" {
				t.Errorf("second migrate up = %q, %v", out, err)
			}

			out, _, err = run(t, vars, "migrate", "status")
			if err != nil {
				t.Fatalf("migrate status: %v", err)
			}
			want.Reset()
			for _, f := range files {
				want.WriteString(sqlstore.MigrationState{Source: f, Applied: true}.String() + "\n")
			}
			if diff := cmp.Diff(want.String()+itoa(len(files))+" applied, 0 pending\n", out); diff != "" {
				t.Errorf("status after (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestLedgerVerify(t *testing.T) {
	dbURL := sqliteURL(t)
	vars := map[string]string{"CASHIER_DATABASE_URL": dbURL}

	_, _, err := run(t, vars, "ledger", "verify")
	if err == nil || !strings.Contains(err.Error(), "not migrated (run cashier migrate up)") || ExitCode(err) != 1 {
		t.Errorf("verify before migrating = %v, want exit 1 asking to migrate", err)
	}
	if _, _, err := run(t, vars, "migrate", "up"); err != nil {
		t.Fatal(err)
	}

	// Book one deposit through the ledger itself.
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(db, nil)
	usd := money.MustCurrency("USD")
	zero := int64(0)
	for _, spec := range []ledger.AccountSpec{
		{ID: "customer:1", Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: &zero},
		{ID: "psp:sandbox", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal},
	} {
		if _, err := l.CreateAccount(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	amount, err := money.Parse("10.00", usd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, ledger.Transfer{ID: "dep_1", Debit: "psp:sandbox", Credit: "customer:1", Amount: amount, Code: "deposit.paid"}); err != nil {
		t.Fatal(err)
	}

	out, _, err := run(t, vars, "ledger", "verify")
	if err != nil || !strings.Contains(out, "2 accounts, 1 transfers, 1 currencies") || !strings.Contains(out, "ledger: clean") {
		t.Errorf("verify of a clean ledger = %q, %v; want a clean report", out, err)
	}

	// Someone edits a balance behind the ledger's back.
	if _, err := db.Exec(ctx, "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = ?", "customer:1"); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, vars, "ledger", "verify")
	if err == nil || ExitCode(err) != 1 || !strings.Contains(err.Error(), "the ledger has 2 problems") {
		t.Errorf("verify of a broken ledger: err = %v (exit %d), want exit 1 counting 2 problems", err, ExitCode(err))
	}
	for _, want := range []string{"USD: posted balances sum to 1 minor units, not 0", "account customer:1: cached posted credits 1001 differ from its transfers' 1000"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^cashier \S+`).MatchString(out) || !strings.Contains(out, "module    github.com/opencashier/cashier") ||
		!regexp.MustCompile(`go        go1\.\d+`).MatchString(out) {
		t.Errorf("version output:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a fragment
		wantStderr string // a fragment
	}{
		{"no command", nil, 2, "", "Commands:"},
		{"unknown command", []string{"frobnicate"}, 2, "", "Commands:"},
		{"help", []string{"help"}, 0, "Commands:\n  serve ", ""},
		{"-h", []string{"-h"}, 0, "Commands:", ""},
		{"serve -h lists settings", []string{"serve", "-h"}, 0, `-addr, CASHIER_ADDR (default "127.0.0.1:8080")`, ""},
		{"migrate without subcommand", []string{"migrate"}, 2, "", "Usage: cashier migrate up|status"},
		{"migrate sideways", []string{"migrate", "sideways"}, 2, "", "Usage: cashier migrate up|status"},
		{"migrate up -h", []string{"migrate", "up", "-h"}, 0, "-database-url, CASHIER_DATABASE_URL", ""},
		{"ledger without subcommand", []string{"ledger"}, 2, "", "Usage: cashier ledger verify"},
		{"version with argument", []string{"version", "x"}, 2, "", ""},
		{"sim -h is the simulator's help", []string{"sim", "-h"}, 0, "Usage: cashier sim [flags]", ""},
		{"demo -h", []string{"demo", "-h"}, 0, "Usage: cashier demo [flags]", ""},
		{"demo with a bad address", []string{"demo", "-addr", "nowhere"}, 2, "", "Usage: cashier demo"},
		{"demo with a stray argument", []string{"demo", "now"}, 2, "", "Usage: cashier demo"},
		{"operator commands' help", []string{"push", "-h"}, 0, "cashier push resolve ID", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := run(t, nil, tc.args...)
			if got := ExitCode(err); got != tc.wantCode {
				t.Errorf("exit code = %d (%v), want %d", got, err, tc.wantCode)
			}
			if !strings.Contains(out, tc.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantStdout, out)
			}
			if !strings.Contains(errOut, tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, errOut)
			}
		})
	}
	out, _, _ := run(t, nil, "serve", "-h")
	for _, env := range []string{"CASHIER_DATABASE_URL", "CASHIER_ADDR", "CASHIER_PUBLIC_URL", "CASHIER_LOG_LEVEL",
		"CASHIER_LOG_FORMAT", "CASHIER_SHUTDOWN_TIMEOUT", "CASHIER_JOB_WORKERS"} {
		if !strings.Contains(out, env) {
			t.Errorf("serve -h does not list %s", env)
		}
	}
}

// TestServeRunsJobs starts serve with two job kinds: one job completes; the
// other is still running at shutdown and is released for another worker.
func TestServeRunsJobs(t *testing.T) {
	dbURL := sqliteURL(t)
	if _, _, err := run(t, nil, "migrate", "up", "-database-url", dbURL); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var quickID, stuckID string
	err = db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if quickID, err = jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: "test.quick"}); err != nil {
			return err
		}
		stuckID, err = jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: "test.stuck"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	quickDone, stuckStarted := make(chan string, 1), make(chan struct{}, 1)
	s := &serving{stderr: &syncBuffer{}, result: make(chan error, 1)}
	s.m = &Main{Stderr: s.stderr, jobKinds: map[string]jobs.Handler{
		"test.quick": func(ctx context.Context, j jobs.Job) error { quickDone <- j.ID; return nil },
		"test.stuck": func(ctx context.Context, j jobs.Job) error {
			select {
			case stuckStarted <- struct{}{}:
			default: // a second run of the job must not block here
			}
			<-ctx.Done()
			return ctx.Err()
		},
	}}
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	defer cancel()
	go func() {
		s.result <- s.m.Run(runCtx, []string{"serve", "-addr", "127.0.0.1:0", "-database-url", dbURL,
			"-shutdown-timeout", "600ms", "-job-workers", "2"})
	}()
	addr, err := s.m.WaitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id := <-quickDone; id != quickID {
		t.Errorf("quick handler ran job %s, want %s", id, quickID)
	}
	<-stuckStarted
	// The runner's metrics are on serve's /metrics.
	if _, body := get(t, "http://"+addr+"/metrics", nil); !strings.Contains(body, `jobs_running{kind="test.stuck"} 1`) {
		t.Errorf("/metrics does not show the running job:\n%s", body)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve = %v, want nil after releasing the stuck job\n%s", err, s.stderr)
	}
	for id, want := range map[string]jobs.State{quickID: jobs.Done, stuckID: jobs.Queued} {
		j, err := jobs.Get(ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != want {
			t.Errorf("job %s (%s) is %s, want %s", id, j.Kind, j.State, want)
		}
	}
}
