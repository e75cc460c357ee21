package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const reconcileUsage = `usage: cashier reconcile [run] [--login N] [--since DURATION]
       cashier reconcile cases [--open] [--kind KIND] [--subject LOGIN|PAYMENT] [--limit N]
       cashier reconcile show CASE
       cashier reconcile resolve CASE -by NAME -note TEXT
       cashier reconcile runs [--limit N]

run compares, per trading account, the ledger with the pushes and the
platform's balance history, and the payments with each provider's report;
it prints "clean: …" or every difference, each a case. It exits 1 when a
difference was found or something could not be compared.

Settings (a flag, or its CASHIER_* variable): -database-url; for run also
the trading platform (-ctrader-url, -ctrader-manager-login,
-ctrader-manager-password, -ctrader-timeout) and -sandbox, whose report is
read from the database in-process.
`

// reconcileSettings are the settings the command reads.
var reconcileSettings = []string{"database-url", "ctrader-url", "ctrader-manager-login", "ctrader-manager-password", "ctrader-timeout", "sandbox"}

// reconcile is `cashier reconcile`: run a reconciliation now, list and show
// its cases, resolve one, list the runs.
func (m *Main) reconcile(ctx context.Context, args []string) error {
	settings, rest, err := splitSettings(args, reconcileSettings)
	if err != nil {
		fmt.Fprint(m.Stderr, reconcileUsage)
		return usageError{err}
	}
	for _, a := range rest {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(m.Stdout, reconcileUsage)
			config.WriteUsage(m.Stdout, config.Select(reconcileSettings...))
			return errHelp
		}
	}
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	f := config.Bind(fs, m.Getenv, config.Select(reconcileSettings...))
	if err := m.parseFlags(fs, settings, func(w io.Writer) { fmt.Fprint(w, reconcileUsage) }); err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return usageError{err}
	}
	sub := "run"
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	bad := func(msg string) error {
		fmt.Fprint(m.Stderr, reconcileUsage)
		return usageError{errors.New(msg)}
	}
	switch sub {
	case "run", "cases", "show", "resolve", "runs":
	default:
		return bad(fmt.Sprintf("unknown reconcile command %q", sub))
	}
	db, err := openReconcileDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	switch sub {
	case "run":
		return m.reconcileRun(ctx, db, cfg, rest, bad)
	case "cases":
		return m.reconcileCases(ctx, db, rest, bad)
	case "show":
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			return bad("show needs a case id")
		}
		svc, err := reconcileRecords(db, m.warnLogger())
		if err != nil {
			return err
		}
		c, err := svc.Case(ctx, rest[0])
		if err != nil {
			return opsError(err)
		}
		return printCase(m.Stdout, c)
	case "resolve":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return bad("resolve needs a case id")
		}
		fs := flag.NewFlagSet("reconcile resolve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		by := fs.String("by", "", "the operator's name (required)")
		note := fs.String("note", "", "how the difference was resolved (required)")
		if err := fs.Parse(rest[1:]); err != nil {
			return bad(err.Error())
		}
		if fs.NArg() > 0 {
			return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
		}
		if strings.TrimSpace(*by) == "" {
			return bad("resolve needs -by NAME")
		}
		svc, err := reconcileRecords(db, m.warnLogger())
		if err != nil {
			return err
		}
		c, err := svc.Resolve(ctx, rest[0], "operator:"+strings.TrimSpace(*by), *note)
		if err != nil {
			return opsError(err)
		}
		fmt.Fprintf(m.Stdout, "case %s (%s %s) resolved by %s\n", c.ID, c.Kind, c.Subject, c.ResolvedBy)
		return nil
	default: // runs
		fs := flag.NewFlagSet("reconcile runs", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		limit := fs.Int("limit", 20, "how many runs")
		if err := fs.Parse(rest); err != nil {
			return bad(err.Error())
		}
		svc, err := reconcileRecords(db, m.warnLogger())
		if err != nil {
			return err
		}
		runs, err := svc.Runs(ctx, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTARTED\tACTOR\tSTATUS\tSUMMARY")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.StartedAt.Format(time.RFC3339), r.Actor, r.Status, r.Summary())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%d runs\n", len(runs))
		return nil
	}
}

func (m *Main) reconcileRun(ctx context.Context, db *sqlstore.DB, cfg config.Config, args []string, bad func(string) error) error {
	fs := flag.NewFlagSet("reconcile run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	login := fs.Int64("login", 0, "compare only this trading account")
	since := fs.Duration("since", 0, "compare only what changed in this period (default: everything)")
	by := fs.String("by", "", "the operator's name, recorded with the run (default $USER)")
	if err := fs.Parse(args); err != nil {
		return bad(err.Error())
	}
	if fs.NArg() > 0 {
		return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *login < 0 || *since < 0 {
		return bad("--login and --since must not be negative")
	}
	actor := *by
	if actor == "" {
		actor = m.Getenv("USER")
	}
	if actor == "" {
		actor = "operator"
	}
	deps, err := reconcileDeps(db, cfg)
	if err != nil {
		return err
	}
	deps.Logger = m.warnLogger()
	svc, err := reconcile.New(deps, reconcile.Config{})
	if err != nil {
		return err
	}
	opts := reconcile.RunOptions{Actor: "operator:" + actor, Login: *login}
	if *since > 0 {
		opts.From = time.Now().Add(-*since)
	}
	if deps.Platform == nil {
		fmt.Fprintln(m.Stdout, "no trading platform is configured (CASHIER_CTRADER_URL): the ledger is compared with our pushes only")
	}
	if len(deps.Providers) == 0 {
		fmt.Fprintln(m.Stdout, "no payment provider is configured (CASHIER_SANDBOX): payments are not compared")
	}
	run, err := svc.Run(ctx, opts)
	if err != nil {
		return err
	}
	return printRun(ctx, m.Stdout, svc, run)
}

// printRun prints a run's summary, its notes, what it could not compare
// and each difference; it returns an error (exit code 1) unless the run
// was clean.
func printRun(ctx context.Context, w io.Writer, svc *reconcile.Service, run reconcile.Run) error {
	fmt.Fprintf(w, "%s (run %s)\n", run.Summary(), run.ID)
	for _, n := range run.Detail.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, s := range run.Detail.Skipped {
		fmt.Fprintf(w, "not compared: %s\n", s)
	}
	if len(run.Detail.Cases) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tKIND\tSUBJECT\tEXPECTED\tACTUAL")
		for _, id := range run.Detail.Cases {
			c, err := svc.Case(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, subjectOf(c), c.Expected, c.Actual)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch run.Status {
	case reconcile.Differences:
		return errs.Ef(errs.Conflict, "reconcile", "%d differences; see 'cashier reconcile show CASE'", run.Differences)
	case reconcile.Incomplete:
		return errs.E(errs.Unavailable, "reconcile", "some parts could not be compared; run again")
	}
	return nil
}

func subjectOf(c reconcile.Case) string {
	if c.Ref == "" {
		return c.Subject
	}
	return c.Subject + " " + c.Ref
}

func (m *Main) reconcileCases(ctx context.Context, db *sqlstore.DB, args []string, bad func(string) error) error {
	fs := flag.NewFlagSet("reconcile cases", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	open := fs.Bool("open", false, "only open cases")
	kind := fs.String("kind", "", "only cases of this kind")
	subject := fs.String("subject", "", "only cases about this login or payment")
	limit := fs.Int("limit", 100, "how many cases")
	if err := fs.Parse(args); err != nil {
		return bad(err.Error())
	}
	if fs.NArg() > 0 {
		return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	svc, err := reconcileRecords(db, m.warnLogger())
	if err != nil {
		return err
	}
	f := reconcile.CaseFilter{Kind: reconcile.Kind(*kind), Subject: *subject, Limit: *limit}
	if *open {
		f.Status = reconcile.Open
	}
	cs, err := svc.Cases(ctx, f)
	if err != nil {
		return opsError(err)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSTATUS\tKIND\tSUBJECT\tSEEN\tEXPECTED\tACTUAL")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.ID, c.Status, c.Kind, subjectOf(c), c.Seen, c.Expected, c.Actual)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%d cases\n", len(cs))
	return nil
}

func printCase(w io.Writer, c reconcile.Case) error {
	fmt.Fprintf(w, "case      %s\nkind      %s\nsubject   %s\n", c.ID, c.Kind, c.Subject)
	if c.Ref != "" {
		fmt.Fprintf(w, "ref       %s\n", c.Ref)
	}
	times := "once"
	if c.Seen != 1 {
		times = strconv.Itoa(c.Seen) + " times"
	}
	fmt.Fprintf(w, "expected  %s\nactual    %s\nstatus    %s\nopened    %s by run %s\nfound     %s, last by run %s\n",
		c.Expected, c.Actual, c.Status, c.OpenedAt.Format(time.RFC3339), c.RunID, times, c.LastRunID)
	if c.Status == reconcile.Resolved {
		fmt.Fprintf(w, "resolved  %s by %s: %s\n", c.ResolvedAt.Format(time.RFC3339), c.ResolvedBy, c.Note)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, c.Evidence, "  ", "  "); err != nil {
		pretty.Reset()
		pretty.Write(c.Evidence)
	}
	fmt.Fprintf(w, "evidence\n  %s\n", pretty.String())
	return nil
}

// reconcileSchemas are the schemas the command needs migrated: the
// cashier's, with reconciliation's.
func reconcileSchemas() []sqlstore.Schema {
	all := schemas()
	if !slices.ContainsFunc(all, func(s sqlstore.Schema) bool { return s.Name == reconcile.Schema.Name }) {
		all = append(all, reconcile.Schema)
	}
	return all
}

// openReconcileDB opens the database and checks that every migration is
// applied; it returns errs.Conflict for a database that is not migrated.
func openReconcileDB(ctx context.Context, cfg config.Config) (*sqlstore.DB, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	states, err := db.MigrationStatus(ctx, reconcileSchemas()...)
	if err != nil {
		_ = db.Close()
		return nil, errs.Wrap("reconcile", err)
	}
	for _, s := range states {
		if !s.Applied {
			_ = db.Close()
			return nil, errs.E(errs.Conflict, "reconcile", "the database is not migrated (run cashier migrate up)")
		}
	}
	return db, nil
}

// reconcileRecords is the service for the commands that only read and
// resolve cases.
func reconcileRecords(db *sqlstore.DB, log *slog.Logger) (*reconcile.Service, error) {
	return reconcile.New(reconcile.Deps{DB: db, Ledger: ledger.New(db, nil), Pushes: push.New(db, offlinePlatform{}, push.Options{}), Logger: log}, reconcile.Config{})
}

// warnLogger logs warnings and errors to standard error; the command's
// output says the rest.
func (m *Main) warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// reconcileDeps are the sources of `reconcile run`: our records in the
// database, cTrader (when configured) for accounts and balance history, and
// the sandbox provider (when on), whose report is read in-process from its
// tables in the same database.
func reconcileDeps(db *sqlstore.DB, cfg config.Config) (reconcile.Deps, error) {
	d := reconcile.Deps{DB: db, Ledger: ledger.New(db, nil), Pushes: push.New(db, offlinePlatform{}, push.Options{})}
	if cfg.CTrader.URL != "" {
		client, err := ctrader.New(ctrader.Config{BaseURL: cfg.CTrader.URL, ManagerLogin: cfg.CTrader.ManagerLogin,
			ManagerPassword: cfg.CTrader.ManagerPassword, Timeout: cfg.CTrader.Timeout})
		if err != nil {
			return d, err
		}
		d.Platform, d.History = client, reconcileHistory(client)
	}
	if cfg.Payments.Sandbox {
		client, err := inProcessSandbox(db)
		if err != nil {
			return d, err
		}
		providers, err := psp.NewRegistry(client)
		if err != nil {
			return d, err
		}
		pays, err := payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog()})
		if err != nil {
			return d, err
		}
		d.Payments, d.Providers = pays, []psp.Provider{client}
	}
	return d, nil
}

// reconcileHistory adapts the cTrader client's balance history (the
// simulator's extension; real cTrader answers 404, which the adapter
// passes on as platform.ErrLookupUnsupported) to reconcile.History. wire.go
// uses it for the scheduled run.
func reconcileHistory(c *ctrader.Client) reconcile.History { return ctraderHistory{c} }

type ctraderHistory struct{ c *ctrader.Client }

// BalanceHistory implements reconcile.History.
func (h ctraderHistory) BalanceHistory(ctx context.Context, login int64) ([]reconcile.PlatformChange, error) {
	entries, err := h.c.BalanceHistory(ctx, login, "")
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.PlatformChange, len(entries))
	for i, e := range entries {
		out[i] = reconcile.PlatformChange{ExternalID: e.ExternalID, HistoryID: e.BalanceHistoryID, Type: e.Type,
			Delta: e.Delta, Balance: e.Balance, At: e.Time}
	}
	return out, nil
}

// inProcessSandbox is a sandbox client whose requests are served by a
// sandbox server over db inside this process, with a one-off API key: the
// command reads the report from the tables the running server writes.
func inProcessSandbox(db *sqlstore.DB) (*sandbox.Client, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	apiKey := hex.EncodeToString(key)
	const base = "http://sandbox.in-process" + sandbox.Prefix
	srv, err := sandbox.NewServer(db, sandbox.Options{BaseURL: base, APIKey: apiKey, WebhookURL: "http://sandbox.in-process/psp/sandbox/webhook",
		WebhookSecret: apiKey})
	if err != nil {
		return nil, err
	}
	return sandbox.NewClient(sandbox.ClientOptions{BaseURL: base, APIKey: apiKey, WebhookSecret: apiKey,
		HTTPClient: &http.Client{Transport: handlerTransport{srv.Handler()}}})
}

// handlerTransport answers requests with a handler, without a network.
type handlerTransport struct{ h http.Handler }

// RoundTrip implements http.RoundTripper.
func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(w, req)
	return &http.Response{Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: w.header, Body: io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()), Request: req}, nil
}

type bufferedResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
}

func (w *bufferedResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// splitSettings separates the flags of the named settings (-name value,
// -name=value, with one or two dashes) from the other arguments.
func splitSettings(args, names []string) (settings, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(names, name) {
			rest = append(rest, a)
			continue
		}
		if hasValue {
			settings = append(settings, a)
			continue
		}
		if i+1 == len(args) {
			return nil, nil, fmt.Errorf("%s needs a value", a)
		}
		settings = append(settings, a, args[i+1])
		i++
	}
	return settings, rest, nil
}
