// Package sqlstore is the driver-neutral database runtime of OpenCashier:
// opening SQLite or PostgreSQL from a URL, transactions that retry
// serialization failures, placeholder rebinding, and migrations assembled from
// the schemas that each domain package owns.
//
// Domain packages write plain SQL with '?' placeholders against *Tx; the
// same statements run on both databases. The drivers themselves are
// registered by importing internal/sqlstore/drivers, which only cmd/cashier
// and test helpers do.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database with its dialect.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	// maxRetries bounds how often Transact re-runs a function after a
	// serialization failure or lock timeout.
	maxRetries int
	// stmts caches prepared statements by query text on SQLite (see
	// stmtCache); nil on PostgreSQL, whose driver caches them itself.
	stmts *stmtCache
}

// SQLitePragmas are the connection settings every SQLite connection gets:
// WAL journal, foreign keys, a busy timeout, full fsync for money, and
// BEGIN IMMEDIATE so writers queue instead of failing on upgrade.
const SQLitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"

// ParseURL splits a database URL into dialect and driver DSN. It accepts
// "sqlite:PATH" (PATH may be ":memory:" only for read-only experiments; use a
// file for anything shared) and "postgres://" or "postgresql://" URLs.
// It returns an errs.Invalid error for anything else.
func ParseURL(raw string) (Dialect, string, error) {
	const op = "sqlstore.ParseURL"
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", errs.E(errs.Invalid, op, "sqlite URL has no file path (want sqlite:PATH)")
		}
		extra := ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, extra = path[:i], "&"+path[i+1:]
		}
		return SQLite, "file:" + path + "?" + SQLitePragmas + extra, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", errs.Ef(errs.Invalid, op, "postgres URL does not parse: %v", err)
		}
		return Postgres, raw, nil
	default:
		return "", "", errs.E(errs.Invalid, op, "database URL must start with sqlite: or postgres://")
	}
}

// Open opens and pings the database named by rawURL. The driver for its
// dialect must be registered (import internal/sqlstore/drivers). It returns
// errs.Invalid for a malformed URL and errs.Unavailable when the database
// cannot be reached.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	const op = "sqlstore.Open"
	dialect, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	driver := map[Dialect]string{SQLite: "sqlite", Postgres: "pgx"}[dialect]
	sqldb, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	switch dialect {
	case SQLite:
		sqldb.SetMaxOpenConns(8)
		sqldb.SetMaxIdleConns(8)
	case Postgres:
		sqldb.SetMaxOpenConns(32)
		sqldb.SetMaxIdleConns(32)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, &errs.Error{Code: errs.Unavailable, Op: op, Message: "database is not reachable", Err: err}
	}
	db := &DB{sql: sqldb, dialect: dialect, maxRetries: 20}
	if dialect == SQLite {
		db.stmts = newStmtCache(sqldb, maxCachedStatements)
	}
	return db, nil
}

// SQL returns the underlying *sql.DB.
func (db *DB) SQL() *sql.DB { return db.sql }

// Dialect returns the engine of db.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database and the statements it has cached.
func (db *DB) Close() error {
	if db.stmts != nil {
		db.stmts.close()
	}
	return db.sql.Close()
}

// Ping checks that the database answers. It returns errs.Unavailable if not.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return &errs.Error{Code: errs.Unavailable, Op: "sqlstore.Ping", Message: "database is not reachable", Err: err}
	}
	return nil
}

// Exec runs a statement outside a transaction, with '?' placeholders.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, Rebind(db.dialect, query), args...)
}

// Query runs a query outside a transaction, with '?' placeholders.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, Rebind(db.dialect, query), args...)
}

// QueryRow runs a single-row query outside a transaction.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, Rebind(db.dialect, query), args...)
}

// Tx is a transaction with its dialect. Statements use '?' placeholders.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
	stmts   *stmtCache
	after   []func()
	before  []beforeCommit
	locals  map[any]any
}

// Dialect returns the engine of the transaction.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// Exec runs a statement in the transaction. On SQLite the statement is
// prepared once per connection and reused (see stmtCache).
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if stmt := tx.stmts.get(ctx, query); stmt != nil {
		return tx.tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, Rebind(tx.dialect, query), args...)
}

// Query runs a query in the transaction. Its statement is not cached: a
// caller may run the same query again while iterating the rows of the
// first, which one prepared SQLite statement cannot serve.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, Rebind(tx.dialect, query), args...)
}

// QueryRow runs a single-row query in the transaction. On SQLite the
// statement is prepared once per connection and reused; the row must be
// scanned before the same query runs again in the transaction (the usual
// tx.QueryRow(…).Scan(…) does).
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if stmt := tx.stmts.get(ctx, query); stmt != nil {
		return tx.tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, Rebind(tx.dialect, query), args...)
}

// Stages order the functions registered with BeforeCommit. Work that
// takes locks other transactions wait for runs last, in a fixed order of
// stages, so that every transaction takes those locks in the same order
// (no deadlocks) and holds them only while it commits.
const (
	// StageDefault is for work with no ordering needs.
	StageDefault = 0
	// StageLedger is for the ledger's deferred balance updates.
	StageLedger = 100
	// StageAudit is for the audit trail's append, which locks the chain's
	// head row; it comes last.
	StageAudit = 200
)

type beforeCommit struct {
	stage int
	fn    func(ctx context.Context, tx *Tx) error
}

// BeforeCommit registers fn to run inside the transaction once fn of
// Transact has returned without error, just before the commit. Registered
// functions run in ascending stage order and, within a stage, in the order
// they were registered; an error from one rolls the transaction back and
// is returned by Transact (retried like fn's own errors when retryable). A
// function registered while the functions run (by one of them) runs too,
// if its stage has not passed.
func (tx *Tx) BeforeCommit(stage int, fn func(ctx context.Context, tx *Tx) error) {
	tx.before = append(tx.before, beforeCommit{stage: stage, fn: fn})
}

// Local returns the transaction's value for key, calling create to make
// it on first use. Packages keep per-transaction state in it (for example
// records to write once before the commit); key should be a value of an
// unexported type of the package, as with context keys.
func (tx *Tx) Local(key any, create func() any) any {
	if v, ok := tx.locals[key]; ok {
		return v
	}
	if tx.locals == nil {
		tx.locals = make(map[any]any)
	}
	v := create()
	tx.locals[key] = v
	return v
}

// runBeforeCommit runs the registered functions by stage.
func (tx *Tx) runBeforeCommit(ctx context.Context) error {
	done := make([]bool, 0, len(tx.before))
	for {
		next := -1
		for i, b := range tx.before {
			if i < len(done) && done[i] {
				continue
			}
			if next < 0 || b.stage < tx.before[next].stage {
				next = i
			}
		}
		if next < 0 {
			return nil
		}
		for len(done) < len(tx.before) {
			done = append(done, false)
		}
		done[next] = true
		if err := tx.before[next].fn(ctx, tx); err != nil {
			return err
		}
	}
}

// Prepare prepares a statement with '?' placeholders for repeated use in
// the transaction; the caller closes it.
func (tx *Tx) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.tx.PrepareContext(ctx, Rebind(tx.dialect, query))
}

// ForUpdate returns the row-locking clause for SELECTs that are followed by
// updates: " FOR UPDATE" on PostgreSQL and "" on SQLite, where the
// transaction already holds the database's write lock (BEGIN IMMEDIATE).
func (tx *Tx) ForUpdate() string {
	if tx.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// AfterCommit registers fn to run once the transaction has committed (for
// example to wake a worker). It does not run if the transaction rolls back
// or is retried.
func (tx *Tx) AfterCommit(fn func()) { tx.after = append(tx.after, fn) }

// Transact runs fn in a transaction and commits it. If fn or the commit fails
// with a serialization failure, deadlock or lock timeout, the whole function
// is run again in a new transaction (up to a bound, with jittered backoff),
// so fn must not have side effects outside the transaction. Any other error
// from fn rolls back and is returned as is; errors of the database itself are
// wrapped with the operation.
func (db *DB) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	const op = "sqlstore.Transact"
	for attempt := 0; ; attempt++ {
		err := db.transactOnce(ctx, fn)
		if err == nil || !IsRetryable(err) || attempt >= db.maxRetries {
			return err
		}
		backoff := time.Duration(1+rand.IntN(1<<min(attempt, 6))) * time.Millisecond
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errs.Wrap(op, ctx.Err())
		case <-t.C:
		}
	}
}

func (db *DB) transactOnce(ctx context.Context, fn func(tx *Tx) error) (err error) {
	const op = "sqlstore.Transact"
	sqltx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return errs.Wrap(op+": begin", err)
	}
	tx := &Tx{tx: sqltx, dialect: db.dialect, stmts: db.stmts}
	defer func() {
		if p := recover(); p != nil {
			_ = sqltx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = sqltx.Rollback()
		return err
	}
	if err := tx.runBeforeCommit(ctx); err != nil {
		_ = sqltx.Rollback()
		return err
	}
	if err := sqltx.Commit(); err != nil {
		return errs.Wrap(op+": commit", err)
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

// IsRetryable reports whether err is a transient concurrency failure that a
// new transaction may not meet: PostgreSQL serialization failure (40001) or
// deadlock (40P01), or SQLite busy/locked.
func IsRetryable(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		switch state.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		return state.SQLState() == "23505"
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return coded.Code() == 2067 || coded.Code() == 1555
	}
	return false
}

// Rebind rewrites '?' placeholders as $1, $2, … for PostgreSQL. Question
// marks inside single-quoted string literals are left alone.
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, inString := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case c == '?' && !inString:
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Micros converts t to the portable storage form of instants: microseconds
// since the Unix epoch, UTC. Every table stores times as BIGINT this way.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts stored microseconds back to a UTC time.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// NullMicros converts an optional time to its storage form (nil for zero).
func NullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// FromNullMicros converts an optional stored time back (zero for NULL).
func FromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMicros(v.Int64)
}
