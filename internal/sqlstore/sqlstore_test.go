package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var testSchema = sqlstore.Schema{Name: "test", FS: os.DirFS("testdata/schema")}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		wantDialect sqlstore.Dialect
		wantErr     bool
	}{
		{"sqlite file", "sqlite:cashier.db", sqlstore.SQLite, false},
		{"sqlite absolute", "sqlite:/var/lib/cashier/c.db", sqlstore.SQLite, false},
		{"postgres", "postgres://u:p@localhost:5432/cashier?sslmode=disable", sqlstore.Postgres, false},
		{"postgresql scheme", "postgresql://localhost/cashier", sqlstore.Postgres, false},
		{"sqlite without path", "sqlite:", "", true},
		{"mysql", "mysql://localhost/x", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := sqlstore.ParseURL(tc.url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && errs.CodeOf(err) != errs.Invalid {
				t.Errorf("code = %s, want EINVALID", errs.CodeOf(err))
			}
			if d != tc.wantDialect {
				t.Errorf("dialect = %q, want %q", d, tc.wantDialect)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	got := sqlstore.Rebind(sqlstore.Postgres, "SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?")
	want := "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rebind (-want +got):\n%s", diff)
	}
	if got := sqlstore.Rebind(sqlstore.SQLite, "x = ?"); got != "x = ?" {
		t.Errorf("SQLite rebind changed the query: %q", got)
	}
}

// TestTransactSerializesConcurrentIncrements has 16 goroutines each add 1 to
// one counter 25 times inside Transact, reading then writing under the row
// lock: the total must be exact on both databases.
func TestTransactSerializesConcurrentIncrements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", "c", 0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
						var v int64
						if err := tx.QueryRow(ctx, "SELECT value FROM counters WHERE name = ?"+tx.ForUpdate(), "c").Scan(&v); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "UPDATE counters SET value = ? WHERE name = ?", v+1, "c")
						return err
					})
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		var v int64
		if err := db.QueryRow(ctx, "SELECT value FROM counters WHERE name = ?", "c").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 400 {
			t.Errorf("counter = %d, want 400", v)
		}
	}, testSchema)
}

func TestTransactRollsBackOnError(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		committed := false
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			tx.AfterCommit(func() { committed = true })
			if _, err := tx.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", "x", 1); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if committed {
			t.Error("AfterCommit ran although the transaction rolled back")
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM counters").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("rows after rollback = %d, want 0", n)
		}
	}, testSchema)
}

func TestUniqueViolationIsRecognised(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", "u", 1); err != nil {
			t.Fatal(err)
		}
		_, err := db.Exec(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", "u", 2)
		if !sqlstore.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v) = false", err)
		}
	}, testSchema)
}

func TestMigrationStatusAfterMigrate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		st, err := db.MigrationStatus(context.Background(), testSchema)
		if err != nil {
			t.Fatal(err)
		}
		want := []sqlstore.MigrationState{{Version: 90, Source: "00090_counters.sql", Applied: true}}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		applied, err := db.Migrate(context.Background(), testSchema)
		if err != nil || len(applied) != 0 {
			t.Errorf("second Migrate applied %v, err %v; want nothing", applied, err)
		}
	}, testSchema)
}

func TestDuplicateVersionsAcrossSchemasAreRefused(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite)
	_, err := db.Migrate(context.Background(), testSchema, sqlstore.Schema{Name: "copy", FS: os.DirFS("testdata/schema")})
	if err == nil {
		t.Fatal("Migrate accepted two schemas with the same version")
	}
}
