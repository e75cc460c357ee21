package payments

import (
	"embed"
	"io/fs"

	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the payments tables' migrations (versions 00300-00349; the
// sandbox provider uses 00350-00399), for sqlstore.DB.Migrate alongside
// jobs.Schema, which the status poll needs.
var Schema = sqlstore.Schema{Name: "payments", FS: mustSub(migrations, "migrations")}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("payments: embedded migrations: " + err.Error())
	}
	return sub
}
