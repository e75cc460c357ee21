package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/loadtest"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const campaignSynopsis = `Run a fault and crash campaign: start a cTrader simulator (in this process)
and the cashier (cashier serve, a child process on SQLite or PostgreSQL with
the sandbox provider), sign up virtual users, then drive mixed deposits and
withdrawals through the cashier screens while the simulator injects faults
(errors, dropped connections, changes applied without an answer, latency),
the sandbox's webhooks come twice, out of order or not at all (it changes at
each restart), an operator approves and rejects held withdrawals with the
real CLI, and the cashier is killed with SIGKILL and restarted on the same
database over and over.

Afterwards, with the faults off, it waits (up to -settle) until nothing
moves and checks: ledger verify is clean; every driven trading account's
balance on the simulator changed by exactly what the ledger says and no
change reached the simulator twice; every deposit and withdrawal is final
or waits for an operator; no job is lost (a lease that ended with no
worker taking the job up, a job long overdue); dead jobs are listed with
their last error. Exit code 1 if a check fails.

Flags:`

// campaignFlags are the flags of cashier campaign.
type campaignFlags struct {
	bin, dataDir, databaseURL              string
	ops, concurrency, users                int
	storm, killEvery, approveEvery, settle time.Duration
	mix                                    string
	seed                                   uint64
	faults                                 []string
	sandboxFaults                          string
	noFaults                               bool
}

// defaultCampaignFaults are the simulator's faults: every kind but
// duplicate delivery (which applies a change twice whatever the cashier
// does; the simulator counts it) on balance changes, and errors on reads.
var defaultCampaignFaults = []string{
	"changebalance:error=0.04@503/UNKNOWN_ERROR,drop=0.03,apply-timeout=0.03@3s,apply-reset=0.03,latency=200ms@0.05",
	"trader.read:error=0.02@503/UNKNOWN_ERROR",
}

func (m *Main) campaign(ctx context.Context, args []string) error {
	var f campaignFlags
	fs := flag.NewFlagSet("campaign", flag.ContinueOnError)
	fs.StringVar(&f.bin, "bin", "", "the cashier binary to run as the server (default: this program)")
	fs.StringVar(&f.dataDir, "data", "", "folder for the database, logs and users (default: a new temporary folder, kept)")
	fs.StringVar(&f.databaseURL, "database-url", "", "an empty database for the cashier (default: SQLite in the data folder)")
	fs.IntVar(&f.ops, "n", 2000, "operations to drive (deposits and withdrawals), spread evenly over -d")
	fs.DurationVar(&f.storm, "d", 2*time.Minute, "how long the storm lasts: operations, faults, kills")
	fs.IntVar(&f.concurrency, "c", 32, "the most operations in flight")
	fs.StringVar(&f.mix, "mix", "deposit=40,deposit-3ds=8,deposit-declined=8,deposit-abandoned=4,withdraw-card=30,withdraw-held=10",
		"shares of the operations: deposit (card), deposit-3ds, deposit-declined, deposit-abandoned (never paid; expires after a minute), withdraw-card (paid at once), withdraw-held (by bank, above the automatic approval)")
	fs.IntVar(&f.users, "users", 40, "virtual users")
	fs.DurationVar(&f.killEvery, "kill-every", 3*time.Second, "mean time between two SIGKILLs of the cashier (0: never)")
	fs.DurationVar(&f.approveEvery, "approve-every", 3*time.Second, "how often the operator approves or rejects held withdrawals (0: never)")
	fs.DurationVar(&f.settle, "settle", 3*time.Minute, "how long to wait, after the last operation, for everything to settle")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the faults, the kills and the mix")
	fs.Func("fault", "a simulator fault, as for cashier sim -fault (repeatable; default: errors, drops, lost answers and latency on changebalance, errors on trader.read)", func(s string) error {
		f.faults = append(f.faults, s)
		return nil
	})
	fs.BoolVar(&f.noFaults, "no-faults", false, "inject no simulator faults")
	fs.StringVar(&f.sandboxFaults, "sandbox-faults", "duplicate", "the sandbox's webhook faults, one after the other at each restart: any of duplicate, out-of-order, drop, none (comma-separated)")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: cashier campaign [flags]\n\n%s\n", campaignSynopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := m.parseFlags(fs, args, help); err != nil {
		return err
	}
	faults := ctradersim.FaultConfig{Seed: f.seed}
	if !f.noFaults {
		specs := f.faults
		if len(specs) == 0 {
			specs = defaultCampaignFaults
		}
		for _, s := range specs {
			if err := ctradersim.ParseFaultSpec(s, &faults); err != nil {
				help(m.Stderr)
				return usageError{fmt.Errorf("-fault %q: %w", s, err)}
			}
		}
	}
	var sandboxModes []string
	for s := range strings.SplitSeq(f.sandboxFaults, ",") {
		switch s = strings.TrimSpace(s); s {
		case "duplicate", "out-of-order", "drop", "none":
			sandboxModes = append(sandboxModes, s)
		default:
			help(m.Stderr)
			return usageError{fmt.Errorf("-sandbox-faults: unknown %q", s)}
		}
	}
	if f.ops <= 0 || f.concurrency <= 0 || f.users <= 0 || f.storm <= 0 {
		help(m.Stderr)
		return usageError{errors.New("-n, -d, -c and -users must be positive")}
	}
	mix, err := parseCampaignMix(f.mix)
	if err != nil {
		help(m.Stderr)
		return usageError{err}
	}
	if f.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return errs.Wrap("campaign: -bin", err)
		}
		f.bin = exe
	}
	if f.dataDir == "" {
		d, err := os.MkdirTemp("", "cashier-campaign-")
		if err != nil {
			return errs.Wrap("campaign: data folder", err)
		}
		f.dataDir = d
	} else if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return errs.Wrap("campaign: data folder", err)
	}
	if f.databaseURL == "" {
		f.databaseURL = "sqlite:" + filepath.Join(f.dataDir, "cashier.db")
	}
	c := &campaignRun{m: m, f: f, faults: faults, sandboxModes: sandboxModes, mix: mix, rng: rand.New(rand.NewPCG(f.seed, 0xca4a16))}
	return c.run(ctx)
}

// campaignRun is one campaign.
type campaignRun struct {
	m            *Main
	f            campaignFlags
	faults       ctradersim.FaultConfig
	sandboxModes []string
	mix          map[string]int
	rngMu        sync.Mutex
	rng          *rand.Rand

	sim     *ctradersim.Server
	cashier *cashierProc
	client  *loadtest.Client
	db      *sqlstore.DB

	kills, restarts atomic.Int64
	approved        atomic.Int64
	rejected        atomic.Int64
	statusMu        sync.Mutex
	statuses        map[string]int // "deposit completed", "withdraw awaiting_approval", …
	injected        map[string]ctradersim.EndpointStats
	mails           *atomic.Int64
}

func (c *campaignRun) logf(format string, args ...any) {
	fmt.Fprintf(c.m.Stdout, "campaign: "+format+"\n", args...)
}

func (c *campaignRun) intn(n int) int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(n)
}

func (c *campaignRun) run(ctx context.Context) (err error) {
	const crmPassword = "campaign-crm-password" // #nosec G101 -- the simulator's password for this throwaway run
	start := time.Now()
	c.logf("data folder %s, database %s, load %s", c.f.dataDir, redactDB(c.f.databaseURL), loadSummary())

	sim, err := ctradersim.Start(context.WithoutCancel(ctx), ctradersim.Config{Addr: "127.0.0.1:0", Seed: ctradersim.DemoSeed(),
		BrokerName: demoBrokerName, BrokerCrmName: demoBrokerCrmName})
	if err != nil {
		return err
	}
	c.sim = sim
	defer sim.Close()

	port, err := freePort()
	if err != nil {
		return err
	}
	sink, err := startMailSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	c.mails = &sink.messages
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c.cashier = &cashierProc{bin: c.f.bin, addr: addr, logPath: filepath.Join(c.f.dataDir, "cashier.log"),
		env: childEnv("CASHIER_ADDR="+addr, "CASHIER_DATABASE_URL="+c.f.databaseURL, "CASHIER_LOG_FORMAT=json", "CASHIER_LOG_LEVEL=warn",
			"CASHIER_CTRADER_URL="+sim.URL(), "CASHIER_CTRADER_MANAGER_LOGIN=1001", "CASHIER_CTRADER_MANAGER_PASSWORD="+demoManagerPassword,
			"CASHIER_CTRADER_BROKER_CRM_NAME="+demoBrokerCrmName, "CASHIER_CTRADER_BROKER_NAME="+demoBrokerName,
			"CASHIER_CTRADER_DEMO_BALANCE=10000", "CASHIER_CTRADER_CRM_PASSWORDS="+crmPassword, "CASHIER_CTRADER_TIMEOUT=2s",
			"CASHIER_PUSH_LOOKUP=auto", "CASHIER_SANDBOX=true", "CASHIER_SANDBOX_API_KEY=campaign-api-key",
			"CASHIER_SANDBOX_WEBHOOK_SECRET=campaign-webhook-secret", "CASHIER_SUCCESS_URL="+sim.URL()+"/app/success",
			"CASHIER_FRAME_ANCESTORS='self' "+sim.URL(), "CASHIER_DEFAULT_KYC_LEVEL=2", "CASHIER_WITHDRAWAL_AUTO_APPROVE=USD:500.00",
			"CASHIER_DEPOSIT_EXPIRY=1m", "CASHIER_SMTP_HOST=127.0.0.1", fmt.Sprintf("CASHIER_SMTP_PORT=%d", sink.port),
			"CASHIER_SMTP_REQUIRE_TLS=false", "CASHIER_SMTP_FROM=cashier@example.com", "CASHIER_JOB_WORKERS=8", "CASHIER_JOB_LEASE=5s",
			"CASHIER_SESSION_KEY="+strings.Repeat("5e", 32))}
	if err := c.cashier.start(ctx); err != nil {
		return err
	}
	defer c.cashier.stop()

	if c.db, err = sqlstore.Open(ctx, c.f.databaseURL); err != nil {
		return err
	}
	defer c.db.Close()
	if _, err := relaxVelocity(ctx, c.db, io.Discard); err != nil {
		return err
	}
	c.client, err = loadtest.NewClient(loadtest.Target{CashierURL: "http://" + addr, SimulatorURL: sim.URL(), CRMPassword: crmPassword,
		CTraderAddrs: 4, Retry: 30 * time.Second, Poll: 100 * time.Millisecond})
	if err != nil {
		return err
	}

	// Users and their first deposits, before any fault.
	users := make([]*loadtest.User, c.f.users)
	for i := range users {
		users[i] = &loadtest.User{Email: fmt.Sprintf("campaign-%d@example.com", i), Password: "campaign-" + randomToken()}
	}
	if err := loadtest.Setup(ctx, c.client, users, 0, "USD", 2); err != nil {
		return err
	}
	if err := c.client.ResolveLogins(ctx, users); err != nil {
		return err
	}
	if err := loadtest.Fund(ctx, c.client, users, "100.00", 8); err != nil {
		return err
	}
	logins := make([]int64, len(users))
	for i, u := range users {
		logins[i] = u.Login
	}
	books := loadtest.Books{DB: c.db, Client: c.client}
	opening, err := books.Snapshot(ctx, logins)
	if err != nil {
		return err
	}
	c.logf("%d users signed up and funded in %.1fs", len(users), time.Since(start).Seconds())

	// The storm: faults, kills, an operator, and the operations.
	if err := sim.Sim().SetFaults(c.faults); err != nil {
		return err
	}
	if err := c.sandboxMode(ctx, 0); err != nil {
		return err
	}
	stormCtx, stopStorm := context.WithCancel(ctx)
	var helpers sync.WaitGroup
	if c.f.killEvery > 0 {
		helpers.Go(func() { c.killer(stormCtx) })
	}
	if c.f.approveEvery > 0 {
		helpers.Go(func() { c.operator(stormCtx) })
	}
	stormEnd := time.Now().Add(c.f.storm)
	res, err := c.drive(ctx, users)
	if err == nil {
		// The storm goes on while what the operations started is processed.
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(time.Until(stormEnd)):
		}
	}
	stopStorm()
	helpers.Wait()
	if err != nil {
		return err
	}
	c.logf("%d operations submitted in %.1fs; the storm lasted %s with %d kills: %s", c.f.ops, res.Elapsed.Seconds(), c.f.storm,
		c.kills.Load(), loadtest.Counts(c.statuses))
	if len(res.Errors) > 0 {
		c.logf("operations that did not reach an outcome (faults and restarts; the checks below decide): %s", loadtest.Counts(res.Errors))
	}

	// The storm is over: the platform answers again, the sandbox delivers
	// normally, and the cashier runs. (Setting the faults resets the
	// simulator's fault counters: keep them first.)
	c.injected = sim.Sim().Stats().Endpoints
	if err := sim.Sim().SetFaults(ctradersim.FaultConfig{}); err != nil {
		return err
	}
	if err := c.cashier.ensure(ctx); err != nil {
		return err
	}
	if err := c.client.SandboxSettings(ctx, false, false, false); err != nil {
		return err
	}
	in, err := c.settleDown(ctx)
	if err != nil {
		return err
	}
	return c.verdict(ctx, in, books, opening, time.Since(start))
}

// drive runs the operations: card deposits (some with 3-D Secure, some
// declined, some abandoned on the provider's page), small card withdrawals
// (paid at once) and large bank withdrawals (held for the operator). An
// operation ends when the cashier has taken it (the trader is back on the
// status page); what becomes of it is checked once everything settled.
func (c *campaignRun) drive(ctx context.Context, users []*loadtest.User) (loadtest.Result, error) {
	c.statuses = map[string]int{}
	pool := loadtest.NewPool(users)
	record := func(kind, status string, err error) error {
		if err != nil {
			return err
		}
		c.statusMu.Lock()
		c.statuses[kind+" "+status]++
		c.statusMu.Unlock()
		return nil
	}
	deposit := func(card string, abandon bool) func(ctx context.Context, _, _ int) error {
		return func(ctx context.Context, _, _ int) error {
			return pool.With(ctx, func(u *loadtest.User) error {
				st, err := c.client.Deposit(ctx, u, loadtest.DepositSpec{Amount: fmt.Sprintf("%d.00", 20+c.intn(80)), Card: card, Abandon: abandon,
					NoWait: true})
				return record("deposit", st, err)
			})
		}
	}
	withdraw := func(method string, amount func() string) func(ctx context.Context, _, _ int) error {
		return func(ctx context.Context, _, _ int) error {
			return pool.With(ctx, func(u *loadtest.User) error {
				st, err := c.client.Withdraw(ctx, u, loadtest.WithdrawalSpec{Amount: amount(), Method: method, NoWait: true})
				return record("withdraw", st, err)
			})
		}
	}
	plan := loadtest.Plan{Concurrency: c.f.concurrency, Ops: c.f.ops, Rate: float64(c.f.ops) / c.f.storm.Seconds(), Duration: c.f.storm,
		OpTimeout: 2 * time.Minute, Seed: c.f.seed,
		Scenarios: []loadtest.Scenario{
			{Name: "deposit", Weight: c.mix["deposit"], Run: deposit(loadtest.CardSucceeds, false)},
			{Name: "deposit-3ds", Weight: c.mix["deposit-3ds"], Run: deposit(loadtest.CardThreeDS, false)},
			{Name: "deposit-declined", Weight: c.mix["deposit-declined"], Run: deposit(loadtest.CardDeclined, false)},
			{Name: "deposit-abandoned", Weight: c.mix["deposit-abandoned"], Run: deposit(loadtest.CardSucceeds, true)},
			{Name: "withdraw-card", Weight: c.mix["withdraw-card"], Run: withdraw("card", func() string { return fmt.Sprintf("%d.00", 20+c.intn(30)) })},
			{Name: "withdraw-held", Weight: c.mix["withdraw-held"], Run: withdraw("bank-transfer", func() string { return fmt.Sprintf("%d.00", 501+c.intn(200)) })},
		},
		Progress: func(p loadtest.Progress) {
			if int(p.Elapsed.Seconds())%5 == 0 {
				c.logf("%3.0fs: %d started, %d done, %d without an outcome, %d kills", p.Elapsed.Seconds(), p.Started, p.OK, p.Failed, c.kills.Load())
			}
		}}
	return loadtest.Run(ctx, plan)
}

// killer kills the cashier with SIGKILL at random moments (mean
// -kill-every) and restarts it, until ctx ends.
func (c *campaignRun) killer(ctx context.Context) {
	for {
		wait := c.f.killEvery/2 + time.Duration(c.intn(int(c.f.killEvery)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.cashier.kill(); err != nil {
			c.logf("kill: %v", err)
			continue
		}
		n := c.kills.Add(1)
		// Down for a moment, as a crashed process is until it is restarted.
		time.Sleep(time.Duration(c.intn(300)) * time.Millisecond)
		if err := c.cashier.start(context.WithoutCancel(ctx)); err != nil {
			c.logf("restart %d: %v", n, err)
			continue
		}
		c.restarts.Add(1)
		if err := c.sandboxMode(context.WithoutCancel(ctx), int(n)); err != nil {
			c.logf("sandbox settings after restart %d: %v", n, err)
		}
	}
}

// sandboxMode sets the sandbox's webhook faults to the i-th of -sandbox-faults.
func (c *campaignRun) sandboxMode(ctx context.Context, i int) error {
	mode := c.sandboxModes[i%len(c.sandboxModes)]
	return c.client.SandboxSettings(ctx, mode == "duplicate", mode == "out-of-order", mode == "drop")
}

var heldWithdrawalRE = regexp.MustCompile(`(?m)^(wd_\S+)\s`)

// operator approves or rejects (one in three) the withdrawals awaiting
// approval with the real CLI, beside the running server, until ctx ends.
func (c *campaignRun) operator(ctx context.Context) {
	t := time.NewTicker(c.f.approveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		out, err := exec.CommandContext(ctx, c.f.bin, "withdrawals", "list", "-database-url", c.f.databaseURL).Output() // #nosec G204 -- our own binary
		if err != nil {
			continue
		}
		for _, m := range heldWithdrawalRE.FindAllStringSubmatch(string(out), -1) {
			args := []string{"withdrawals", "approve", m[1], "-by", "campaign", "-database-url", c.f.databaseURL}
			counter := &c.approved
			if c.intn(3) == 0 {
				args = []string{"withdrawals", "reject", m[1], "-by", "campaign", "-reason", "campaign", "-database-url", c.f.databaseURL}
				counter = &c.rejected
			}
			op := exec.CommandContext(ctx, c.f.bin, args...) // #nosec G204 -- our own binary, with arguments built here
			if err := op.Run(); err == nil {
				counter.Add(1)
			}
		}
	}
}

// settleDown waits until nothing moves or -settle passes, and returns the
// last inspection.
func (c *campaignRun) settleDown(ctx context.Context) (loadtest.Inspection, error) {
	deadline := time.Now().Add(c.f.settle)
	last := time.Time{}
	for {
		in, err := loadtest.Inspect(ctx, c.db, time.Now(), 2*time.Minute)
		if err != nil {
			return in, err
		}
		if in.Settled() || time.Now().After(deadline) {
			return in, nil
		}
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			c.logf("settling: %d things moving, e.g. %s", len(in.Moving), in.Moving[0])
		}
		select {
		case <-ctx.Done():
			return in, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// verdict runs the checks on the settled state and prints them; it returns
// an error if one fails.
func (c *campaignRun) verdict(ctx context.Context, in loadtest.Inspection, books loadtest.Books, opening map[int64]loadtest.AccountState, took time.Duration) error {
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }

	c.logf("deposits: %s", loadtest.Counts(in.Deposits))
	c.logf("withdrawals: %s (operator approved %d, rejected %d)", loadtest.Counts(in.Withdrawals), c.approved.Load(), c.rejected.Load())
	c.logf("pushes: %s; jobs: %s; %d e-mails sent", loadtest.Counts(in.Pushes), loadtest.Counts(in.Jobs), c.mails.Load())
	stats := c.sim.Sim().Stats()
	c.logf("simulator: %d balance changes, %d applied twice", stats.BalanceChanges, stats.DuplicateExternalIDs)
	for _, name := range []string{ctradersim.EndpointChangeBalance, ctradersim.EndpointTraderRead} {
		e := c.injected[name]
		c.logf("faults on %s during the storm: %d calls, %d errors, %d dropped, %d applied without an answer (%d timeouts, %d resets), %d delayed",
			name, e.Calls, e.Error, e.Drop, e.ApplyTimeout+e.ApplyReset, e.ApplyTimeout, e.ApplyReset, e.Latency)
	}

	if !in.Settled() {
		fail("%d things still moving after %s: %s", len(in.Moving), c.f.settle, strings.Join(first(in.Moving, 10), "; "))
	}
	if len(in.Lost) > 0 {
		fail("%d jobs lost: %s", len(in.Lost), strings.Join(first(in.Lost, 10), "; "))
	}
	report, err := books.Verify(ctx)
	if err != nil {
		return err
	}
	if !report.OK() {
		fail("ledger verify: %s", strings.Join(report.Problems, "; "))
	}
	mismatches, err := books.Agree(ctx, opening, 10*time.Second)
	if err != nil {
		return err
	}
	for _, mm := range mismatches {
		fail("%s", mm)
	}
	if stats.DuplicateExternalIDs != 0 {
		fail("the simulator applied %d balance changes twice", stats.DuplicateExternalIDs)
	}
	if len(in.Review) > 0 {
		c.logf("%d operations wait for an operator, e.g. %s", len(in.Review), strings.Join(first(in.Review, 3), "; "))
	}
	for _, j := range in.Dead {
		c.logf("dead job %s (%s), %d attempts: %s", j.ID, j.Kind, j.Attempt, j.LastError)
	}
	for _, r := range first(in.Retrying, 10) {
		c.logf("retrying: %s", r)
	}
	c.logf("%d kills and %d restarts in %.0fs; ledger: %d accounts, %d transfers", c.kills.Load(), c.restarts.Load(), took.Seconds(),
		report.Accounts, report.Transfers)
	if len(failures) > 0 {
		for _, f := range failures {
			c.logf("FAILED: %s", f)
		}
		return errs.Ef(errs.Conflict, "campaign", "%d checks failed", len(failures))
	}
	c.logf("passed: ledger clean, %d trading accounts agree with the ledger, nothing applied twice, every deposit and withdrawal final or with an operator, no job lost, %d dead jobs, %d jobs retrying",
		len(opening), len(in.Dead), len(in.Retrying))
	return nil
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// parseCampaignMix reads -mix: name=weight pairs of the campaign's
// operations.
func parseCampaignMix(s string) (map[string]int, error) {
	known := []string{"deposit", "deposit-3ds", "deposit-declined", "deposit-abandoned", "withdraw-card", "withdraw-held"}
	out := map[string]int{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || !slices.Contains(known, name) {
			return nil, fmt.Errorf("-mix %q: want name=weight pairs of %s", s, strings.Join(known, ", "))
		}
		out[name] = n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("-mix %q: no operation has a positive weight", s)
	}
	return out, nil
}

// childEnv is this process's environment without CASHIER_* variables,
// plus settings.
func childEnv(settings ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASHIER_") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// redactDB hides a password in a database URL.
func redactDB(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.Index(u[i+3:], "@"); at >= 0 {
			if colon := strings.Index(u[i+3:i+3+at], ":"); colon >= 0 {
				return u[:i+3+colon] + ":***" + u[i+3+at:]
			}
		}
	}
	return u
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errs.Wrap("campaign: free port", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cashierProc is the cashier server as a child process, on one address
// and database across restarts.
type cashierProc struct {
	bin, addr, logPath string
	env                []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// start runs cashier serve and waits until it answers /readyz (60 s at
// most).
func (p *cashierProc) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return errs.Wrap("campaign: cashier log", err)
	}
	cmd := exec.Command(p.bin, "serve") // #nosec G204 -- our own binary
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return errs.Wrap("campaign: start the cashier", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited, p.log = cmd, exited, log
	deadline := time.Now().Add(time.Minute)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + p.addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			p.cmd = nil
			return errs.Ef(errs.Unavailable, "campaign", "the cashier exited at start; see %s", p.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errs.Ef(errs.Unavailable, "campaign", "the cashier did not answer /readyz within a minute; see %s", p.logPath)
		}
	}
}

// ensure starts the cashier if it is not running.
func (p *cashierProc) ensure(ctx context.Context) error {
	p.mu.Lock()
	running := p.cmd != nil
	if running {
		select {
		case <-p.exited:
			p.cmd = nil
			running = false
		default:
		}
	}
	p.mu.Unlock()
	if running {
		return nil
	}
	return p.start(ctx)
}

// kill sends SIGKILL and waits for the process to end.
func (p *cashierProc) kill() error {
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// stop asks the cashier to shut down (SIGTERM) and waits for it.
func (p *cashierProc) stop() {
	_ = p.signal(syscall.SIGTERM, 30*time.Second)
}

func (p *cashierProc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return errs.Wrap("campaign: signal the cashier", err)
	}
	select {
	case <-p.exited:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = p.log.Close()
	p.cmd = nil
	return nil
}

// mailSink is a minimal SMTP server that accepts every message and keeps
// a count: the cashier's e-mails (withdrawal notices, say) are sent and
// done with, instead of failing for want of a server.
type mailSink struct {
	l        net.Listener
	port     int
	messages atomic.Int64
}

func startMailSink() (*mailSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errs.Wrap("campaign: mail sink", err)
	}
	s := &mailSink{l: l, port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s, nil
}

// Close stops accepting connections.
func (s *mailSink) Close() error { return s.l.Close() }

func (s *mailSink) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	reply := func(line string) bool {
		_, err := io.WriteString(conn, line+"\r\n")
		return err == nil
	}
	if !reply("220 campaign mail sink") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "DATA":
			if !reply("354 go on") {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(l, "\r\n") == "." {
					break
				}
			}
			s.messages.Add(1)
			reply("250 kept")
		case "QUIT":
			reply("221 bye")
			return
		default: // EHLO, HELO, MAIL, RCPT, RSET, NOOP
			if !reply("250 ok") {
				return
			}
		}
	}
}
