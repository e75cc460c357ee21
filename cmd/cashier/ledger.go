package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
)

const ledgerUsage = `Usage: cashier ledger verify [flags]

  verify  check the ledger's invariants in one consistent snapshot: per
          currency the balances sum to zero, each account's cached balance
          equals the sum of its transfers, every account is within its
          bounds. Prints a report; exit code 1 if any check fails.
`

func (m *Main) ledger(ctx context.Context, args []string) error {
	var sub string
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, ledgerUsage)
		return nil
	case "verify":
	case "":
		fmt.Fprint(m.Stderr, ledgerUsage)
		return usageError{errors.New("ledger needs a command: verify")}
	default:
		fmt.Fprint(m.Stderr, ledgerUsage)
		return usageError{fmt.Errorf("unknown ledger command %q", sub)}
	}
	cfg, err := m.settings("ledger verify", "Check the ledger's invariants; exit code 1 if any check fails.", args[1:], config.Select("database-url"))
	if err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	states, err := db.MigrationStatus(ctx, ledger.Schema)
	if err != nil {
		return errs.Wrap("ledger verify", err)
	}
	for _, s := range states {
		if !s.Applied {
			return errs.E(errs.Conflict, "ledger verify", "the database is not migrated (run cashier migrate up)")
		}
	}
	report, err := ledger.Verify(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprint(m.Stdout, report.String())
	if !report.OK() {
		return errs.Ef(errs.Conflict, "ledger verify", "the ledger has %d problems", len(report.Problems))
	}
	return nil
}
