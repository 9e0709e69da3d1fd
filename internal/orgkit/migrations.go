package orgkit

import (
	"embed"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the kit's schema (set "orgkit"): organizations,
// employees, their roles and schedules. A service applies it next to
// events.Migrations() and its own set.
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "orgkit", FS: migrationFS, Dir: "migrations"}
}
