package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// maxCachedStatements bounds the statement cache. The product's queries
// are a few hundred fixed texts; queries built with a variable number of
// placeholders beyond the bound simply run unprepared.
const maxCachedStatements = 1024

// prepareTimeout bounds a background prepare's wait for a connection.
const prepareTimeout = 30 * time.Second

// stmtCache keeps one prepared statement per query text for SQLite, where
// compiling a statement costs more than running most of them (a fifth of
// the cashier's CPU under load before it existed; BENCHMARKS.md). database/sql
// prepares a cached statement again on each connection the first time it is
// used there and keeps it for that connection. PostgreSQL needs none: pgx
// caches prepared statements per connection itself.
//
// A nil *stmtCache caches nothing.
type stmtCache struct {
	db  *sql.DB
	max int

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	closed bool
}

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, stmts: make(map[string]*sql.Stmt)}
}

// get returns the prepared statement for query, or nil if it is not
// prepared yet (or cannot be: the cache is full or closed, or preparing
// failed), in which case the caller runs the query unprepared.
//
// A statement missing from the cache is prepared in the background: a
// caller inside a transaction holds one of the pool's connections, and
// preparing on the pool waits for another, so with every connection held
// by such callers a synchronous prepare would never finish.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if stmt, ok := c.stmts[query]; ok || c.closed || len(c.stmts) >= c.max {
		return stmt // nil while being prepared
	}
	c.stmts[query] = nil // being prepared
	go c.prepare(context.WithoutCancel(ctx), query)
	return nil
}

// prepare prepares query on the pool and keeps it. A query that does not
// prepare keeps a nil entry and runs unprepared (where it meets its error);
// one that found no connection in time is tried again at its next use.
func (c *stmtCache) prepare(ctx context.Context, query string) {
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	stmt, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			delete(c.stmts, query) // no connection in time: try again later
		}
		return
	}
	if c.closed {
		_ = stmt.Close()
		return
	}
	c.stmts[query] = stmt
}

// close closes every cached statement; later gets cache nothing.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		if s != nil {
			_ = s.Close()
		}
		delete(c.stmts, q)
	}
	c.closed = true
}
