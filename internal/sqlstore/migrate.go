package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/opencashier/cashier/internal/errs"
)

// Schema is the set of migrations one package owns. FS holds two folders,
// "sqlite" and "postgres", with goose SQL files of the same version numbers.
// Each package keeps to its own range of versions (see docs/architecture.md),
// so schemas can be combined in any order.
type Schema struct {
	Name string
	FS   fs.FS
}

// MigrationState is one migration's status.
type MigrationState struct {
	Version int64
	Source  string
	Applied bool
}

func (db *DB) provider(schemas []Schema) (*goose.Provider, error) {
	const op = "sqlstore.migrations"
	merged := fstest.MapFS{}
	seen := map[int64]string{}
	for _, s := range schemas {
		dir := string(db.dialect)
		entries, err := fs.ReadDir(s.FS, dir)
		if err != nil {
			return nil, errs.Wrap(op+": "+s.Name, err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
				continue
			}
			v, err := strconv.ParseInt(strings.SplitN(e.Name(), "_", 2)[0], 10, 64)
			if err != nil {
				return nil, errs.Ef(errs.Internal, op, "schema %s: migration %s has no version prefix", s.Name, e.Name())
			}
			if other, dup := seen[v]; dup {
				return nil, errs.Ef(errs.Internal, op, "migration version %d is used by both %s and %s", v, other, s.Name)
			}
			seen[v] = s.Name
			data, err := fs.ReadFile(s.FS, path.Join(dir, e.Name()))
			if err != nil {
				return nil, errs.Wrap(op, err)
			}
			merged[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	if len(merged) == 0 {
		return nil, nil
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true)}
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.sql, merged, opts...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	return p, nil
}

// Migrate applies every pending migration of the given schemas (none is a
// no-op). It returns the versions it applied, or an error naming the migration that failed.
func (db *DB) Migrate(ctx context.Context, schemas ...Schema) ([]int64, error) {
	p, err := db.provider(schemas)
	if err != nil || p == nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, errs.Wrap("sqlstore.Migrate", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// MigrationStatus lists every migration of the given schemas, applied or not,
// in version order.
func (db *DB) MigrationStatus(ctx context.Context, schemas ...Schema) ([]MigrationState, error) {
	p, err := db.provider(schemas)
	if err != nil || p == nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, errs.Wrap("sqlstore.MigrationStatus", err)
	}
	out := make([]MigrationState, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationState{Version: s.Source.Version, Source: path.Base(s.Source.Path), Applied: s.State == goose.StateApplied})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// String renders a status line like "00001_ledger.sql  applied".
func (m MigrationState) String() string {
	state := "pending"
	if m.Applied {
		state = "applied"
	}
	return fmt.Sprintf("%-40s %s", m.Source, state)
}
