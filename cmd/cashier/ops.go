package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The operator commands work on the database directly, beside a running
// server: they read and change records, and the server's job workers make
// the calls that follow (a payout, a push). Each takes -database-url (or
// CASHIER_DATABASE_URL) anywhere among its arguments.

const opsUsage = `Operator commands (each takes -database-url URL, or CASHIER_DATABASE_URL):

  cashier users add --email E [--password-stdin] [--lang xx] [--ctid N] [--partner P]
  cashier users list
  cashier users disable|enable EMAIL|ID
  cashier accounts link --user EMAIL|ID --login N --env demo|live --currency USD [--kind trading|signal]
  cashier accounts list [--user EMAIL|ID]
  cashier crm-tokens revoke
  cashier push list [-state in_doubt] [-limit 100]
  cashier push show ID
  cashier push resolve ID applied|not-applied -by NAME [-note TEXT]
  cashier fx list | set PAIR RATE | unset PAIR     (-by NAME names the operator; default $USER)
  cashier withdrawals list
  cashier withdrawals approve ID -by NAME
  cashier withdrawals reject ID -by NAME -reason TEXT
  cashier transfers micro-deposits BANK_ID
  cashier transfers settle ORDER_ID success|failed [-reason TEXT]
  cashier tasks
`

// opsDB resolves -database-url among args (the rest is returned for the
// command) and opens and checks the database: every migration must be
// applied. It returns errHelp after -h, a usageError for a bad setting, and
// errs.Conflict for a database that is not migrated.
func (m *Main) opsDB(ctx context.Context, name string, args []string) (*sqlstore.DB, []string, error) {
	var rest, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprint(m.Stdout, opsUsage)
			return nil, nil, errHelp
		case a == "-database-url" || a == "--database-url":
			if i+1 == len(args) {
				return nil, nil, usageError{fmt.Errorf("%s needs a value", a)}
			}
			flags = append(flags, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-database-url=") || strings.HasPrefix(a, "--database-url="):
			flags = append(flags, a)
		default:
			rest = append(rest, a)
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := config.Bind(fs, m.Getenv, config.Select("database-url"))
	if err := m.parseFlags(fs, flags, func(w io.Writer) { fmt.Fprint(w, opsUsage) }); err != nil {
		return nil, nil, err
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, nil, usageError{err}
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	states, err := db.MigrationStatus(ctx, schemas()...)
	if err != nil {
		_ = db.Close()
		return nil, nil, errs.Wrap(name, err)
	}
	for _, s := range states {
		if !s.Applied {
			_ = db.Close()
			return nil, nil, errs.E(errs.Conflict, name, "the database is not migrated (run cashier migrate up)")
		}
	}
	return db, rest, nil
}

// opsError makes a command's usage mistakes exit with code 2.
func opsError(err error) error {
	if errs.CodeOf(err) == errs.Invalid {
		return usageError{err}
	}
	return err
}

// opsIdentity is the identity service for the operator commands: the
// database only (no cTrader calls).
func opsIdentity(db *sqlstore.DB) (*identity.Service, error) {
	return identity.New(identity.Deps{DB: db, Audit: audit.New(db, nil)}, identity.DefaultConfig())
}

func (m *Main) users(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "users", args)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := opsIdentity(db)
	if err != nil {
		return err
	}
	return opsError(identity.UsersCommand(ctx, svc, rest, m.Stdin, m.Stdout, m.Stderr))
}

func (m *Main) accounts(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "accounts", args)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := opsIdentity(db)
	if err != nil {
		return err
	}
	return opsError(identity.AccountsCommand(ctx, svc, rest, m.Stdout, m.Stderr))
}

func (m *Main) crmTokens(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "crm-tokens", args)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(rest) != 1 || rest[0] != "revoke" {
		fmt.Fprint(m.Stderr, "usage: cashier crm-tokens revoke\n")
		return usageError{errors.New("crm-tokens needs a command: revoke")}
	}
	svc, err := opsIdentity(db)
	if err != nil {
		return err
	}
	return identity.RevokeCRMTokensCommand(ctx, svc, m.Stdout)
}

func (m *Main) push(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "push", args)
	if err != nil {
		return err
	}
	defer db.Close()
	// The command only reads and resolves records; it never calls the
	// platform.
	svc := push.New(db, offlinePlatform{}, push.Options{})
	return opsError(push.Command(ctx, svc, rest, m.Stdout, m.Stderr))
}

func (m *Main) fx(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "fx", args)
	if err != nil {
		return err
	}
	defer db.Close()
	by := m.Getenv("USER")
	if len(rest) >= 2 && (rest[0] == "-by" || rest[0] == "--by") {
		by, rest = rest[1], rest[2:]
	}
	if by == "" {
		by = "operator"
	}
	return opsError(payments.RunFXCommand(ctx, payments.NewRateStore(db, nil).Audit(audit.New(db, nil)), rest, m.Stdout, by))
}

// opsFunding is the funding service for the operator commands. It records
// decisions and enqueues what follows (a payout, a return push); the
// server's job workers carry them out, so its platform and provider are
// stand-ins that are never called. Decisions are audited like the server's
// and follow the four-eyes rule of CASHIER_WITHDRAWAL_FOUR_EYES.
func (m *Main) opsFunding(db *sqlstore.DB) (*funding.Service, error) {
	fourEyes, err := funding.ParseAutoApproveLimits(m.Getenv("CASHIER_WITHDRAWAL_FOUR_EYES"))
	if err != nil {
		return nil, usageError{fmt.Errorf("CASHIER_WITHDRAWAL_FOUR_EYES %v", errs.MessageOf(err))}
	}
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: "http://127.0.0.1:1" + sandbox.Prefix, APIKey: "offline", WebhookSecret: "offline"})
	if err != nil {
		return nil, err
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		return nil, err
	}
	pays, err := payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog()})
	if err != nil {
		return nil, err
	}
	idsvc, err := opsIdentity(db)
	if err != nil {
		return nil, err
	}
	trail := audit.New(db, nil)
	books := ledger.New(db, nil)
	books.Observe(ledgerTrail(trail))
	return funding.New(funding.Deps{DB: db, Ledger: books, Push: push.New(db, offlinePlatform{}, push.Options{}),
		Payments: pays, Platform: offlinePlatform{}, Accounts: idsvc, Hooks: []funding.Hook{fundingTrail(trail)}},
		funding.Config{FourEyesAbove: fourEyes})
}

const withdrawalsUsage = `usage: cashier withdrawals list
       cashier withdrawals approve ID -by NAME
       cashier withdrawals reject ID -by NAME -reason TEXT
`

func (m *Main) withdrawals(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "withdrawals", args)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := m.opsFunding(db)
	if err != nil {
		return err
	}
	bad := func(msg string) error {
		fmt.Fprint(m.Stderr, withdrawalsUsage)
		return usageError{errors.New(msg)}
	}
	if len(rest) == 0 {
		return bad("withdrawals needs a command: list, approve or reject")
	}
	switch rest[0] {
	case "list":
		ws, err := svc.PendingApprovals(ctx, 500)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLOGIN\tAMOUNT\tMETHOD\tDESTINATION\tREQUESTED")
		for _, w := range ws {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", w.ID, w.Login, w.Amount, w.MethodID, w.Destination, w.CreatedAt.Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%d withdrawals awaiting approval\n", len(ws))
		return nil
	case "approve", "reject":
		if len(rest) < 2 || strings.HasPrefix(rest[1], "-") {
			return bad(rest[0] + " needs a withdrawal id")
		}
		fs := flag.NewFlagSet("withdrawals "+rest[0], flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		by := fs.String("by", "", "the operator's name (required)")
		reason := fs.String("reason", "", "why (required to reject)")
		if err := fs.Parse(rest[2:]); err != nil {
			return bad(err.Error())
		}
		var w funding.Withdrawal
		if rest[0] == "approve" {
			w, err = svc.ApproveWithdrawal(ctx, rest[1], *by)
		} else {
			w, err = svc.RejectWithdrawal(ctx, rest[1], *by, *reason)
		}
		if err != nil {
			return opsError(err)
		}
		fmt.Fprintf(m.Stdout, "withdrawal %s is %s\n", w.ID, w.Status)
		return nil
	default:
		return bad(fmt.Sprintf("unknown withdrawals command %q", rest[0]))
	}
}

func (m *Main) tasks(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "tasks", args)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(rest) > 0 {
		return usageError{fmt.Errorf("tasks takes no arguments, got %q", rest[0])}
	}
	svc, err := m.opsFunding(db)
	if err != nil {
		return err
	}
	ts, err := svc.Tasks(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tDEPOSIT/WITHDRAWAL\tPUSH\tFLAG\tLOGIN\tAMOUNT\tSINCE")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%d\t%s\t%s\n", t.Kind, t.DepositID, t.WithdrawalID, t.PushID, t.Flag, t.Login, t.Amount, t.Since.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%d tasks\n", len(ts))
	return nil
}

// offlinePlatform stands in for the trading platform in the operator
// commands, which never call it: every call fails as not sent.
type offlinePlatform struct{}

// ChangeBalance implements platform.Connector; nothing is sent.
func (offlinePlatform) ChangeBalance(context.Context, platform.BalanceChange) (platform.Applied, error) {
	return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent, Message: "operator commands do not call the platform", Retryable: true}
}

// Account implements platform.Connector; it returns errs.Unavailable.
func (offlinePlatform) Account(context.Context, int64) (platform.Account, error) {
	return platform.Account{}, errs.E(errs.Unavailable, "platform.Account", "operator commands do not call the platform")
}
