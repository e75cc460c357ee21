package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/sqlstore"
	_ "github.com/opencashier/cashier/internal/sqlstore/drivers" // SQLite and PostgreSQL
)

// Main runs one cashier command. Set the fields, call Run once, then Close.
// The zero values of Stdin, Stdout, Stderr and Getenv are an empty input,
// io.Discard, io.Discard and "no environment".
type Main struct {
	// Stdin is read by commands that take a secret from standard input
	// (users add --password-stdin).
	Stdin io.Reader
	// Stdout receives command output (reports, help asked for with -h).
	Stdout io.Writer
	// Stderr receives logs, usage after a mistake, and diagnostics.
	Stderr io.Writer
	// Getenv reads CASHIER_* settings (os.Getenv in production).
	Getenv func(string) string

	// jobKinds adds job handlers to those serve runs (tests only).
	jobKinds map[string]jobs.Handler

	init    sync.Once
	ready   chan struct{} // closed when serve listens
	done    chan struct{} // closed when Run returns
	mu      sync.Mutex
	started bool
	addr    string
	runErr  error
	cancel  context.CancelFunc
}

func (m *Main) setup() {
	m.init.Do(func() {
		m.ready = make(chan struct{})
		m.done = make(chan struct{})
		if m.Stdin == nil {
			m.Stdin = strings.NewReader("")
		}
		if m.Stdout == nil {
			m.Stdout = io.Discard
		}
		if m.Stderr == nil {
			m.Stderr = io.Discard
		}
		if m.Getenv == nil {
			m.Getenv = func(string) string { return "" }
		}
	})
}

// usageError is a mistake on the command line or in a setting. It maps to
// exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// ExitCode maps Run's error to the process exit code: 0 for nil, 2 for a
// usage mistake (unknown command, bad flag, invalid setting), 1 for any
// other failure.
func ExitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	default:
		return 1
	}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(m *Main, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP server (applies pending migrations first)", (*Main).serve},
		{"demo", "run the cashier, a cTrader simulator and the sandbox provider with demo users", (*Main).demo},
		{"migrate", "up: apply pending database migrations; status: list them", (*Main).migrate},
		{"ledger", "verify: check the ledger's invariants (exit code 1 if any fails)", (*Main).ledger},
		{"users", "add, list, disable or enable users", (*Main).users},
		{"accounts", "link a trading account to a user; list accounts", (*Main).accounts},
		{"crm-tokens", "revoke: revoke every crmApiToken (cTrader must get a new one)", (*Main).crmTokens},
		{"push", "list, show or resolve balance pushes (resolve settles one in doubt)", (*Main).push},
		{"fx", "list, set or unset exchange rates set by operators", (*Main).fx},
		{"withdrawals", "list withdrawals awaiting approval; approve or reject one", (*Main).withdrawals},
		{"transfers", "seed 003 cash transfers: a bank's micro-deposit amounts; settle a transfer", (*Main).transfers},
		{"tasks", "list what operators have to look at", (*Main).tasks},
		{"audit", "verify the audit trail's hash chain; search it", (*Main).audit},
		{"reconcile", "compare the ledger with the platform and the providers; list and resolve cases", (*Main).reconcile},
		{"staff", "back-office staff: add (the first admin), list, roles, disable, reset TOTP", (*Main).staff},
		{"bench", "load: drive complete deposits and withdrawals (or token generation) against a running demo or server", (*Main).bench},
		{"campaign", "fault and crash campaign: mixed money traffic with injected faults and SIGKILLed restarts, then check the books", (*Main).campaign},
		{"sim", "run the cTrader simulator ('cashier sim -h' lists its flags)", (*Main).sim},
		{"version", "print the version and build information", (*Main).version},
		{"help", "print this help", (*Main).help},
	}
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprint(w, `cashier is the OpenCashier broker cashier.

Usage:
  cashier <command> [arguments] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'cashier <command> -h' for a command's flags and settings.
Every setting is also a CASHIER_* environment variable; see docs/configuration.md.
`)
}

// Run runs the command named by args[0] with the rest of args until it
// finishes or ctx is cancelled. serve returns nil after a graceful
// shutdown. A Main runs one command: a second Run returns an error.
// Errors are usage mistakes (ExitCode 2), errs.Invalid settings among
// them, or the command's failure (ExitCode 1).
func (m *Main) Run(ctx context.Context, args []string) (err error) {
	m.setup()
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("Main.Run called twice; use a new Main per command")
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.runErr = err
		m.mu.Unlock()
		m.cancel()
		close(m.done)
	}()

	if len(args) == 0 {
		m.usage(m.Stderr)
		return usageError{errors.New("no command given")}
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			if err := c.run(m, ctx, args[1:]); !errors.Is(err, errHelp) {
				return err
			}
			return nil
		}
	}
	m.usage(m.Stderr)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

// WaitReady waits until serve listens and returns its address (host:port,
// with the real port when -addr asked for port 0). It returns an error if
// Run ended before that (with Run's error) or ctx ended first.
func (m *Main) WaitReady(ctx context.Context) (string, error) {
	m.setup()
	select {
	case <-m.ready:
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.addr, nil
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.runErr != nil {
			return "", fmt.Errorf("cashier stopped before it was ready: %w", m.runErr)
		}
		return "", errors.New("cashier stopped before it was ready")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (m *Main) setReady(addr string) {
	m.mu.Lock()
	m.addr = addr
	m.mu.Unlock()
	close(m.ready)
}

// Close stops a command that is still running (a running serve shuts down
// gracefully) and waits for Run to return. Run releases everything it
// opened before it returns, so Close after Run is a no-op. It returns nil.
func (m *Main) Close() error {
	m.setup()
	m.mu.Lock()
	started, cancel := m.started, m.cancel
	m.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	<-m.done
	return nil
}

// parseFlags parses a command's flags. After -h it prints help to Stdout
// and returns errHelp; after a mistake it prints the error and help to
// Stderr and returns a usageError. help writes the command's help.
func (m *Main) parseFlags(fs *flag.FlagSet, args []string, help func(w io.Writer)) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(m.Stdout)
		return errHelp
	case err != nil:
		help(m.Stderr)
		return usageError{err}
	case fs.NArg() > 0:
		help(m.Stderr)
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// errHelp reports that help was printed; Run turns it into success.
var errHelp = errors.New("help requested")

// settings parses args as flags for the given settings and resolves them
// with the environment. It returns errHelp after -h and a usageError for a
// bad flag or an invalid setting.
func (m *Main) settings(name, synopsis string, args []string, settings []config.Setting) (config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := config.Bind(fs, m.Getenv, settings)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: cashier %s [flags]\n\n%s\n\n", name, synopsis)
		f.Usage(w)
	}
	if err := m.parseFlags(fs, args, help); err != nil {
		return config.Config{}, err
	}
	c, err := f.Config()
	if err != nil {
		fmt.Fprintf(m.Stderr, "Run 'cashier %s -h' to list the settings.\n", name)
		return config.Config{}, usageError{err}
	}
	return c, nil
}

// openDB opens the configured database. It returns errs.Unavailable when
// the database cannot be reached, naming it without its password.
func openDB(ctx context.Context, c config.Config) (*sqlstore.DB, error) {
	db, err := sqlstore.Open(ctx, c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", config.RedactURL(c.DatabaseURL), err)
	}
	return db, nil
}

func (m *Main) help(ctx context.Context, args []string) error {
	m.usage(m.Stdout)
	return nil
}

func (m *Main) sim(ctx context.Context, args []string) error {
	return ctradersim.Main(ctx, args, m.Stdout, m.Stderr)
}
