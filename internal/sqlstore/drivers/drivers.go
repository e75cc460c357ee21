// Package drivers registers the database/sql drivers for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx). Import it for its side
// effects from main packages and test helpers only; domain packages stay free
// of drivers.
package drivers

import (
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)
