package jobs

import (
	"embed"
	"io/fs"

	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the jobs table's migrations (versions 00010–00019), for
// sqlstore.DB.Migrate alongside the other packages' schemas.
var Schema = sqlstore.Schema{Name: "jobs", FS: mustSub(migrations, "migrations")}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("jobs: embedded migrations: " + err.Error())
	}
	return sub
}
