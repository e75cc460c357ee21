package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const migrateUsage = `Usage: cashier migrate up|status [flags]

  up      apply every pending migration and list what was applied
  status  list every migration and whether it is applied or pending

Migrations of all packages are applied in version order, on SQLite or
PostgreSQL, whichever CASHIER_DATABASE_URL names. serve applies pending
migrations itself at start; migrate up lets a deployment do it first.
`

func (m *Main) migrate(ctx context.Context, args []string) error {
	var sub string
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, migrateUsage)
		return nil
	case "up", "status":
	case "":
		fmt.Fprint(m.Stderr, migrateUsage)
		return usageError{errors.New("migrate needs up or status")}
	default:
		fmt.Fprint(m.Stderr, migrateUsage)
		return usageError{fmt.Errorf("unknown migrate command %q", sub)}
	}
	synopsis := map[string]string{
		"up":     "Apply every pending migration and list what was applied.",
		"status": "List every migration and whether it is applied or pending.",
	}[sub]
	cfg, err := m.settings("migrate "+sub, synopsis, args[1:], config.Select("database-url"))
	if err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	before, err := db.MigrationStatus(ctx, schemas()...)
	if err != nil {
		return errs.Wrap("migrate "+sub, err)
	}
	if sub == "status" {
		return printStatus(m.Stdout, before)
	}
	applied, err := db.Migrate(ctx, schemas()...)
	if err != nil {
		return errs.Wrap("migrate up", err)
	}
	names := map[int64]string{}
	for _, s := range before {
		names[s.Version] = s.Source
	}
	for _, v := range applied {
		fmt.Fprintf(m.Stdout, "applied %s\n", names[v])
	}
	switch len(applied) {
	case 0:
		fmt.Fprintf(m.Stdout, "nothing to apply; all %d migrations are applied\n", len(before))
	case 1:
		fmt.Fprintln(m.Stdout, "1 migration applied; the database is up to date")
	default:
		fmt.Fprintf(m.Stdout, "%d migrations applied; the database is up to date\n", len(applied))
	}
	return nil
}

func printStatus(w io.Writer, states []sqlstore.MigrationState) error {
	applied := 0
	for _, s := range states {
		fmt.Fprintln(w, s.String())
		if s.Applied {
			applied++
		}
	}
	fmt.Fprintf(w, "%d applied, %d pending\n", applied, len(states)-applied)
	return nil
}
