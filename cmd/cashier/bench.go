package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/loadtest"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const benchSynopsis = `Drive a running cashier (cashier demo, or cashier serve with a cTrader
simulator) with complete deposits and withdrawals, or with one-time-token
requests, and measure it: throughput, latency percentiles, errors by kind,
and at the end whether the books agree (every driven trading account's
balance on the simulator changed by exactly what the cashier's ledger says,
and ledger verify is clean). Exit code 1 if they do not.

A deposit is: a one-time token from /oauth2/onetime/generate (as cTrader
asks for it), the cashier screen opened with it, the confirmation, the card
on the sandbox's hosted page, back to the cashier, then the status until it
is completed (booked in the ledger and pushed to the platform). A withdrawal:
token, screen, confirmation (bank transfer), status until it is paid out.

Virtual users sign up on the broker's signup screen (a cTID and a demo
trading account on the simulator) and are kept in -users-file for the next
run. Each sends its browser requests from its own loopback address
(127.2.x.y), cTrader's calls come from -ctrader-addrs addresses (127.1.0.x):
the cashier limits form posts (1/s, burst 20) and cTrader calls (100/s,
burst 200) per client address.

Examples:
  cashier demo --manifest /tmp/m.json &
  cashier bench -manifest /tmp/m.json -c 32 -d 30s -mix deposit=80,withdraw=20
  cashier bench -manifest /tmp/m.json -rate 200 -c 400 -d 30s
  cashier bench -manifest /tmp/m.json -scenario token -rate 1000 -d 20s -ctrader-addrs 16

Flags:`

// benchFlags are the flags of cashier bench.
type benchFlags struct {
	manifest, cashierURL, simURL, crmPassword, databaseURL string
	scenario, mix                                          string
	concurrency, ops, users, ctraderAddrs, pid             int
	rate                                                   float64
	duration, timeout, settle, quiet                       time.Duration
	usersFile, jsonOut                                     string
	deposit, withdraw, currency                            string
	check, relax                                           bool
	seedAccounts, seedDeposits                             int
	withdrawMethod                                         string
}

func (m *Main) bench(ctx context.Context, args []string) error {
	var f benchFlags
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&f.manifest, "manifest", "", "the demo's manifest (cashier demo --manifest FILE): URLs, the crmApiToken password and the database")
	fs.StringVar(&f.cashierURL, "cashier", "", "the cashier's base URL (default: the manifest's)")
	fs.StringVar(&f.simURL, "sim", "", "the cTrader simulator's base URL (default: the manifest's)")
	fs.StringVar(&f.crmPassword, "crm-password", "", "the crmApiToken password shared with cTrader (default: the manifest's, or $CASHIER_BENCH_CRM_PASSWORD)")
	fs.StringVar(&f.databaseURL, "database-url", "", "the cashier's database, for the books check (default: the manifest's)")
	fs.StringVar(&f.scenario, "scenario", "ops", "ops: deposits and withdrawals by -mix; token: /oauth2/onetime/generate only")
	fs.StringVar(&f.mix, "mix", "deposit=100", "shares of the operations, e.g. deposit=80,withdraw=20")
	fs.IntVar(&f.concurrency, "c", 16, "concurrent operations (closed loop); with -rate, the most in flight")
	fs.Float64Var(&f.rate, "rate", 0, "operations per second on a fixed schedule (open loop); 0: closed loop")
	fs.IntVar(&f.ops, "n", 0, "stop after this many operations")
	fs.DurationVar(&f.duration, "d", 0, "stop after this long (default 10s when -n is not set)")
	fs.IntVar(&f.users, "users", 200, "virtual users (each with one USD trading account)")
	fs.StringVar(&f.usersFile, "users-file", "", "keep the virtual users in this file and reuse them in later runs")
	fs.IntVar(&f.ctraderAddrs, "ctrader-addrs", 4, "loopback addresses cTrader's calls come from (cTrader's backend runs on several servers)")
	fs.StringVar(&f.deposit, "deposit", "20.00", "amount of each deposit")
	fs.StringVar(&f.withdraw, "withdraw", "50.00", "amount of each withdrawal (bank transfer)")
	fs.StringVar(&f.withdrawMethod, "withdraw-method", "card", "card (a payout to the card of the user's deposits) or bank-transfer (the fraud rules hold the first one to a new IBAN for an operator)")
	fs.StringVar(&f.currency, "currency", "USD", "currency of the users' trading accounts")
	fs.BoolVar(&f.relax, "relax-velocity", true, "raise the velocity fraud rule's limits during the run (restored afterwards): it holds a user's sixth deposit or withdrawal within an hour for review")
	fs.IntVar(&f.pid, "pid", 0, "sample this process's resident memory (VmRSS, VmHWM) during the run")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "longest one operation may take")
	fs.DurationVar(&f.settle, "settle", time.Minute, "how long to wait for the books to agree after the run")
	fs.DurationVar(&f.quiet, "quiet-start", 2*time.Minute, "before the run, wait at most this long for the cashier's job queue to have nothing due or running (a previous run's tail); 0: do not wait")
	fs.BoolVar(&f.check, "check", true, "check afterwards that the ledger and the simulator agree (needs the database)")
	fs.StringVar(&f.jsonOut, "json", "", "also write the result as JSON to this file")
	fs.IntVar(&f.seedAccounts, "seed-accounts", 0, "before the run, add this many users with trading accounts straight to the database (history for 10×/100× figures)")
	fs.IntVar(&f.seedDeposits, "seed-deposits", 0, "before the run, add this many completed deposits, spread over the seeded accounts, straight to the database")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: cashier bench [flags]\n\n%s\n", benchSynopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := m.parseFlags(fs, args, help); err != nil {
		return err
	}
	if err := f.resolve(m.Getenv); err != nil {
		help(m.Stderr)
		return usageError{err}
	}
	scenarios, err := f.scenarios()
	if err != nil {
		help(m.Stderr)
		return usageError{err}
	}

	client, err := loadtest.NewClient(loadtest.Target{CashierURL: f.cashierURL, SimulatorURL: f.simURL, CRMPassword: f.crmPassword,
		CTraderAddrs: f.ctraderAddrs})
	if err != nil {
		return usageError{err}
	}
	var db *sqlstore.DB
	if f.databaseURL != "" {
		if db, err = sqlstore.Open(ctx, f.databaseURL); err != nil {
			return err
		}
		defer db.Close()
	}
	if f.seedAccounts > 0 || f.seedDeposits > 0 {
		if db == nil {
			return usageError{errors.New("-seed-accounts and -seed-deposits need the database (-database-url or -manifest)")}
		}
		start := time.Now()
		err := loadtest.Seed(ctx, db, loadtest.SeedSpec{Accounts: f.seedAccounts, Deposits: f.seedDeposits, Progress: func(n int) {
			fmt.Fprintf(m.Stderr, "\rbench: seeded %d of %d deposits", n, f.seedDeposits)
		}})
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "\nbench: seeded %d accounts and %d deposits in %.1fs\n", f.seedAccounts, f.seedDeposits, time.Since(start).Seconds())
	}
	if db != nil && f.relax {
		restore, err := relaxVelocity(ctx, db, m.Stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := restore(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(m.Stderr, "bench: the velocity rule was not restored: %v\n", err)
			}
		}()
	}
	users, err := m.benchUsers(ctx, client, f, slices.ContainsFunc(scenarios, func(w weighted) bool { return w.name == "withdraw" && w.weight > 0 }))
	if err != nil {
		return err
	}
	logins := make([]int64, len(users))
	for i, u := range users {
		logins[i] = u.Login
	}
	books := loadtest.Books{DB: db, Client: client}
	var opening map[int64]loadtest.AccountState
	if f.check {
		if opening, err = books.Snapshot(ctx, logins); err != nil {
			return err
		}
	}

	plan := loadtest.Plan{Concurrency: f.concurrency, Rate: f.rate, Ops: f.ops, Duration: f.duration, OpTimeout: f.timeout,
		Seed: uint64(time.Now().UnixNano()), Progress: func(p loadtest.Progress) {
			fmt.Fprintf(m.Stderr, "\r%5.0fs  started %d  ok %d  failed %d  in flight %d   ", p.Elapsed.Seconds(), p.Started, p.OK, p.Failed, p.InFlight)
		}}
	pool := loadtest.NewPool(users)
	for _, s := range scenarios {
		name, weight := s.name, s.weight
		var run func(ctx context.Context, slot, n int) error
		switch name {
		case "deposit":
			run = func(ctx context.Context, _, _ int) error {
				return pool.With(ctx, func(u *loadtest.User) error {
					st, err := client.Deposit(ctx, u, loadtest.DepositSpec{Amount: f.deposit, WatchPlatform: true})
					return outcome(st, err, "completed")
				})
			}
		case "withdraw":
			run = func(ctx context.Context, _, _ int) error {
				return pool.With(ctx, func(u *loadtest.User) error {
					st, err := client.Withdraw(ctx, u, loadtest.WithdrawalSpec{Amount: f.withdraw, Method: f.withdrawMethod})
					return outcome(st, err, "completed")
				})
			}
		case "token":
			// cTrader asks for tokens of any user, as often as traders tap.
			var next atomic.Uint64
			run = func(ctx context.Context, _, _ int) error {
				_, err := client.GenerateToken(ctx, users[(next.Add(1)-1)%uint64(len(users))])
				return err
			}
		}
		plan.Scenarios = append(plan.Scenarios, loadtest.Scenario{Name: name, Weight: weight, Run: run})
	}

	if db != nil && f.quiet > 0 {
		left, waited, err := loadtest.WaitForQuiet(ctx, db, 250*time.Millisecond, f.quiet)
		if err != nil {
			return err
		}
		if waited >= time.Second || left > 0 {
			fmt.Fprintf(m.Stderr, "bench: waited %.1fs for the job queue to drain; %d jobs still due or running\n", waited.Seconds(), left)
		}
	}
	fmt.Fprintf(m.Stdout, "bench: %s against %s, %d users, %s\n", f.describe(), f.cashierURL, len(users), loadSummary())
	var sampler *loadtest.MemorySampler
	if f.pid > 0 {
		sampler = loadtest.SampleMemory(f.pid, 250*time.Millisecond)
	}
	res, err := loadtest.Run(ctx, plan)
	fmt.Fprintln(m.Stderr)
	if err != nil {
		return usageError{err}
	}
	out := benchOutput{Flags: f.describe(), Users: len(users), Load: loadSummary(), Result: res, Steps: client.Steps()}
	loadtest.WriteResult(m.Stdout, res)
	loadtest.WriteSteps(m.Stdout, client.Steps())
	if sampler != nil {
		peak, last, err := sampler.Stop()
		if err != nil {
			fmt.Fprintf(m.Stdout, "memory of process %d: %v\n", f.pid, err)
		} else {
			out.PeakRSS, out.HWM = peak, last.HWM
			fmt.Fprintf(m.Stdout, "memory of process %d: VmRSS peak %s (sampled every 250 ms), VmHWM %s\n", f.pid, loadtest.MiB(peak), loadtest.MiB(last.HWM))
		}
	}

	var failure error
	if f.check {
		mismatches, err := books.Agree(ctx, opening, f.settle)
		if err != nil {
			return err
		}
		report, err := books.Verify(ctx)
		if err != nil {
			return err
		}
		out.Mismatches = len(mismatches)
		out.LedgerClean = report.OK()
		if len(mismatches) == 0 {
			fmt.Fprintf(m.Stdout, "books: the %d driven trading accounts changed on the simulator by exactly what the ledger says\n", len(logins))
		} else {
			fmt.Fprintf(m.Stdout, "books: %d of %d trading accounts disagree with the ledger:\n", len(mismatches), len(logins))
			for _, mm := range mismatches {
				fmt.Fprintf(m.Stdout, "  %s\n", mm)
			}
			failure = errs.Ef(errs.Conflict, "bench", "%d trading accounts disagree with the ledger", len(mismatches))
		}
		fmt.Fprint(m.Stdout, report.String())
		if !report.OK() && failure == nil {
			failure = errs.Ef(errs.Conflict, "bench", "the ledger has %d problems", len(report.Problems))
		}
	}
	if f.jsonOut != "" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err == nil {
			err = os.WriteFile(f.jsonOut, append(b, '\n'), 0o600)
		}
		if err != nil {
			return errs.Wrap("bench: -json", err)
		}
	}
	return failure
}

// benchOutput is what -json writes.
type benchOutput struct {
	Flags       string                      `json:"flags"`
	Users       int                         `json:"users"`
	Load        string                      `json:"load"`
	Result      loadtest.Result             `json:"result"`
	Steps       map[string]loadtest.Summary `json:"steps"`
	PeakRSS     int64                       `json:"peakRssBytes,omitempty"`
	HWM         int64                       `json:"hwmBytes,omitempty"`
	Mismatches  int                         `json:"mismatches"`
	LedgerClean bool                        `json:"ledgerClean"`
}

// outcome turns an operation's final status into its error: nil only for
// the wanted status.
func outcome(status string, err error, want string) error {
	if err != nil {
		return err
	}
	if status != want {
		return &loadtest.StepError{Step: "outcome", Code: status}
	}
	return nil
}

// resolve fills the flags from the manifest and the environment and
// checks them.
func (f *benchFlags) resolve(getenv func(string) string) error {
	if f.manifest != "" {
		b, err := os.ReadFile(f.manifest)
		if err != nil {
			return fmt.Errorf("-manifest: %w", err)
		}
		var man Manifest
		if err := json.Unmarshal(b, &man); err != nil {
			return fmt.Errorf("-manifest %s: %w", f.manifest, err)
		}
		f.cashierURL = cmpOr(f.cashierURL, man.CashierURL)
		f.simURL = cmpOr(f.simURL, man.SimulatorURL)
		f.crmPassword = cmpOr(f.crmPassword, man.CRMAPIPassword)
		f.databaseURL = cmpOr(f.databaseURL, man.DatabaseURL)
	}
	f.crmPassword = cmpOr(f.crmPassword, getenv("CASHIER_BENCH_CRM_PASSWORD"))
	switch {
	case f.cashierURL == "" || f.simURL == "":
		return errors.New("name the cashier and the simulator: -manifest FILE, or -cashier URL and -sim URL")
	case f.crmPassword == "":
		return errors.New("the crmApiToken password is needed: -manifest, -crm-password or CASHIER_BENCH_CRM_PASSWORD")
	case f.check && f.databaseURL == "":
		return errors.New("the books check needs the cashier's database: -database-url (or -check=false)")
	case f.concurrency <= 0 || f.users <= 0 || f.ctraderAddrs <= 0:
		return errors.New("-c, -users and -ctrader-addrs must be positive")
	case f.rate < 0 || f.ops < 0 || f.duration < 0:
		return errors.New("-rate, -n and -d must not be negative")
	}
	if f.ops == 0 && f.duration == 0 {
		f.duration = 10 * time.Second
	}
	return nil
}

type weighted struct {
	name   string
	weight int
}

// scenarios parses -scenario and -mix.
func (f *benchFlags) scenarios() ([]weighted, error) {
	switch f.scenario {
	case "token":
		return []weighted{{"token", 1}}, nil
	case "ops":
	default:
		return nil, fmt.Errorf("-scenario %q: want ops or token", f.scenario)
	}
	var out []weighted
	for part := range strings.SplitSeq(f.mix, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || name != "deposit" && name != "withdraw" {
			return nil, fmt.Errorf("-mix %q: want deposit=N,withdraw=M", f.mix)
		}
		out = append(out, weighted{name, n})
	}
	return out, nil
}

func (f *benchFlags) describe() string {
	var b strings.Builder
	if f.scenario == "token" {
		b.WriteString("scenario token")
	} else {
		b.WriteString("mix " + f.mix)
	}
	if f.rate > 0 {
		fmt.Fprintf(&b, ", rate %g/s (at most %d in flight)", f.rate, f.concurrency)
	} else {
		fmt.Fprintf(&b, ", %d concurrent", f.concurrency)
	}
	if f.ops > 0 {
		fmt.Fprintf(&b, ", %d operations", f.ops)
	}
	if f.duration > 0 {
		fmt.Fprintf(&b, ", %s", f.duration)
	}
	if f.ctraderAddrs > 1 {
		fmt.Fprintf(&b, ", cTrader from %d addresses", f.ctraderAddrs)
	}
	return b.String()
}

// benchUsers loads the virtual users of -users-file, signs up the missing
// ones, gets each an inappToken and finds their trading logins; with fund,
// each user whose card has not paid a deposit yet makes one, so that card
// withdrawals go back to a known card.
func (m *Main) benchUsers(ctx context.Context, c *loadtest.Client, f benchFlags, fund bool) ([]*loadtest.User, error) {
	var users []*loadtest.User
	if f.usersFile != "" {
		loaded, err := loadtest.LoadUsers(f.usersFile)
		if err != nil {
			return nil, err
		}
		users = loaded
	}
	if len(users) > f.users {
		users = users[:f.users]
	}
	fresh := len(users)
	run := randomToken()[:6]
	for i := len(users); i < f.users; i++ {
		users = append(users, &loadtest.User{Email: fmt.Sprintf("bench-%s-%d@example.com", strings.ToLower(run), i), Password: "bench-" + randomToken()})
	}
	start := time.Now()
	// Passwords are hashed with argon2id (19 MiB, ~50 ms each): sign up
	// and log in a few at a time, so that set-up does not dominate the
	// process's memory high-water mark.
	err := loadtest.Setup(ctx, c, users, fresh, f.currency, 2)
	if err != nil {
		return nil, err
	}
	if err := c.ResolveLogins(ctx, users); err != nil {
		return nil, err
	}
	if fund {
		if err := loadtest.Fund(ctx, c, users, f.deposit, 8); err != nil {
			return nil, err
		}
	}
	if f.usersFile != "" {
		all := users
		if loaded, err := loadtest.LoadUsers(f.usersFile); err == nil && len(loaded) > len(all) {
			all = append(all, loaded[len(all):]...)
		}
		if err := loadtest.SaveUsers(f.usersFile, all); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(m.Stderr, "bench: %d users ready (%d signed up) in %.1fs\n", len(users), len(users)-fresh, time.Since(start).Seconds())
	return users, nil
}

// loadSummary is the machine's load average, for the record.
func loadSummary() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	fields := strings.Fields(string(b))
	if len(fields) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(fields[:3], " ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// relaxVelocity raises the velocity fraud rule's count and amounts so far
// that a run's many operations per user are not held for review (the rule
// is still evaluated, at its usual cost), and returns what puts the rule
// back. Both changes are audited as operator:bench. Without the compliance
// tables it changes nothing.
func relaxVelocity(ctx context.Context, db *sqlstore.DB, log io.Writer) (func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	states, err := db.MigrationStatus(ctx, compliance.Schema)
	if err != nil || len(states) == 0 || !states[0].Applied {
		return none, nil
	}
	comp, err := compliance.New(db, compliance.Options{Audit: audit.New(db, nil)})
	if err != nil {
		return nil, err
	}
	old, err := comp.Rule(ctx, compliance.RuleVelocity)
	if err != nil {
		return nil, err
	}
	relaxed := old
	relaxed.Count = 10000 // the most the rule takes
	relaxed.Amounts = map[string]money.Amount{}
	for cur := range old.Amounts {
		c, err := money.LookupCurrency(cur)
		if err != nil {
			return nil, err
		}
		relaxed.Amounts[cur] = money.New(1_000_000_000_000, c)
	}
	if err := comp.SetRule(ctx, "operator:bench", relaxed); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: the velocity fraud rule allows any number of operations during the run (it is restored afterwards)\n")
	return func(ctx context.Context) error { return comp.SetRule(ctx, "operator:bench", old) }, nil
}
