// Package dbtest runs store tests on both databases. Each call gets a fresh,
// migrated database: a SQLite file in the test's temporary folder, and a new
// PostgreSQL database from pgtest.
package dbtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opencashier/cashier/internal/sqlstore"
	_ "github.com/opencashier/cashier/internal/sqlstore/drivers" // both drivers
	"github.com/opencashier/cashier/internal/testutil/pgtest"
)

// Dialects lists the engines every store test runs on, as subtest names.
var Dialects = []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres}

// Open returns a fresh database of the given dialect with the schemas
// migrated. It is closed when the test ends.
func Open(tb testing.TB, d sqlstore.Dialect, schemas ...sqlstore.Schema) *sqlstore.DB {
	tb.Helper()
	var url string
	switch d {
	case sqlstore.SQLite:
		url = "sqlite:" + filepath.Join(tb.TempDir(), "test.db")
	case sqlstore.Postgres:
		url = pgtest.URL(tb)
	default:
		tb.Fatalf("dbtest: unknown dialect %q", d)
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, url)
	if err != nil {
		tb.Fatalf("dbtest: open %s: %v", d, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx, schemas...); err != nil {
		tb.Fatalf("dbtest: migrate %s: %v", d, err)
	}
	return db
}

// Each runs fn as two subtests, "sqlite" and "postgres", each with its own
// fresh database migrated with the schemas.
func Each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB), schemas ...sqlstore.Schema) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d, schemas...))
		})
	}
}

// EachB is Each for benchmarks.
func EachB(b *testing.B, fn func(b *testing.B, db *sqlstore.DB), schemas ...sqlstore.Schema) {
	b.Helper()
	for _, d := range Dialects {
		b.Run(string(d), func(b *testing.B) {
			fn(b, Open(b, d, schemas...))
		})
	}
}
