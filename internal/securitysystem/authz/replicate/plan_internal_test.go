package replicate

import (
	"testing"

	"github.com/realguardio/realguardio/internal/orgkit/paging/pagingtest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestPlansUseIndexes shows, on SQLite (EXPLAIN QUERY PLAN) and PostgreSQL
// (EXPLAIN), that each fact read of the replicate strategy is an index
// lookup: by user for the caller's facts, by id for the systems'
// locations (one, or a page's as one set parameter), by dealer or provider
// for an organization's locations (the list query's subqueries, whose
// plans inside the page query the store's TestListPlansUseIndexes shows). A
// scan would make every decision cost the replica's size.
func TestPlansUseIndexes(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations(), events.Migrations()}, func(t *testing.T, db *sqldb.DB) {
		u := "00000000-0000-0000-0000-000000000001"
		set := setArg(db.Dialect(), []string{"00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003"})
		for _, c := range []struct {
			name, index, query string
			args               []any
		}{
			{"employee", "replica_employees_user", employeeQuery, []any{u}},
			{"location roles", "replica_location_roles_user", locationRolesQuery, []any{u}},
			{"team roles", "replica_team_members_user", teamRolesQuery, []any{u}},
			{"team roles by team", "sqlite_autoindex_replica_team_roles_1|replica_team_roles_team|replica_team_roles_pkey", teamRolesQuery, []any{u}},
			{"location", "sqlite_autoindex_replica_locations_1|replica_locations_pkey", locationsQuery + `(?)`, []any{u}},
			{"a page's locations", "sqlite_autoindex_replica_locations_1|replica_locations_pkey", locationsQuery + `(` + idSet(db.Dialect()) + `)`, []any{set}},
			{"dealer's locations", "replica_locations_dealer", ScopeLocations.Dealers + ` IN (` + idSet(db.Dialect()) + `)`, []any{set}},
			{"provider's locations", "replica_dealers_provider", ScopeLocations.MonitoringProviders + ` IN (` + idSet(db.Dialect()) + `)`, []any{set}},
		} {
			t.Run(c.name, func(t *testing.T) {
				pagingtest.RequireIndex(t, db, c.index, false, c.query, c.args...)
			})
		}
	})
}
