package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
)

// TestListPlansUseIndexes shows, on SQLite (EXPLAIN QUERY PLAN) and
// PostgreSQL (EXPLAIN), that every hot query of the service reads through
// its index on a platform of 20 000 systems over 2 000 locations, 200
// customers, 100 dealers and 20 providers: each branch of the list, the
// list filtered by location, the decisions' lookup by id, and the audit.
// A plan that scans the table would make a list's cost grow with the
// platform.
func TestListPlansUseIndexes(t *testing.T) {
	sets := []sqldb.Migrations{Migrations(), events.Migrations(), replicate.Migrations()}
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := New(db, events.NewOutbox(events.ProducerSecuritySystem))
		now := time.Now()
		var systems []app.SecuritySystem
		n := func(kind string, i int) string {
			return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", kind, i)).String()
		}
		for i := range 20000 {
			l := i % 2000
			systems = append(systems, app.SecuritySystem{ID: uuid.NewString(), Name: fmt.Sprintf("system %05d", i), LocationID: n("l", l),
				State: app.StateDisarmed, CustomerID: n("c", l%200), DealerID: n("d", l%100), MonitoringProviderID: n("p", l%20),
				CreatedAt: now, UpdatedAt: now, Version: 1})
		}
		if err := s.CreateMany(ctx, systems, make([][]app.Event, len(systems))); err != nil {
			t.Fatal(err)
		}
		// The replica of the same organizations, whose tables the
		// replicate strategy's dealer and provider branches read.
		for l := range 2000 {
			if _, err := db.ExecContext(ctx, `INSERT INTO replica_locations (location_id, customer_id, dealer_id) VALUES (?, ?, ?)`,
				n("l", l), n("c", l%200), n("d", l%100)); err != nil {
				t.Fatal(err)
			}
		}
		for d := range 100 {
			if _, err := db.ExecContext(ctx, `INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) VALUES (?, ?)`, n("d", d), n("p", d%20)); err != nil {
				t.Fatal(err)
			}
		}
		// And the rest of a large platform, whose locations hold no
		// system here: without them a planner reads the small replica
		// tables whole, as it should at that size.
		for _, q := range []string{
			`WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 50000)
			 INSERT INTO replica_locations (location_id, customer_id, dealer_id) SELECT 'filler-' || i, 'filler', 'filler-dealer-' || (i % 2000) FROM r`,
			`WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000)
			 INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) SELECT 'filler-dealer-' || i, 'filler-provider-' || (i % 200) FROM r`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2000 {
			if err := s.AppendAudit(ctx, app.AuditEntry{ID: uuid.NewString(), At: now.Add(time.Duration(i) * time.Second), UserID: "u",
				SecuritySystemID: systems[i%500].ID, Action: app.ActionArm, Decision: app.DecisionDenied, Strategy: "none"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
			t.Fatal(err)
		}
		after := &app.Key{Name: "system 00100", ID: systems[100].ID}
		cases := []struct {
			name  string
			q     app.PageQuery
			index []string
		}{
			{"admin", app.PageQuery{Scope: policy.Scope{All: true}, Limit: 50, After: after}, []string{"security_systems_name"}},
			{"locations", app.PageQuery{Scope: policy.Scope{LocationIDs: []string{n("l", 1), n("l", 2), n("l", 3)}}, Limit: 50}, []string{"security_systems_location_name"}},
			{"customer", app.PageQuery{Scope: policy.Scope{CustomerIDs: []string{n("c", 1)}}, Limit: 50, After: after}, []string{"security_systems_customer_name"}},
			{"dealer", app.PageQuery{Scope: policy.Scope{DealerIDs: []string{n("d", 1)}}, Limit: 50}, []string{"security_systems_dealer_name"}},
			{"provider", app.PageQuery{Scope: policy.Scope{MonitoringProviderIDs: []string{n("p", 1)}}, Limit: 50}, []string{"security_systems_provider_name"}},
			{"customer and locations", app.PageQuery{Scope: policy.Scope{CustomerIDs: []string{n("c", 1)}, LocationIDs: []string{n("l", 7)}}, Limit: 50},
				[]string{"security_systems_customer_name", "security_systems_location_name"}},
			{"location filter", app.PageQuery{Scope: policy.Scope{CustomerIDs: []string{n("c", 1)}}, LocationID: n("l", 201), State: app.StateArmed, Limit: 50},
				[]string{"security_systems_location_name"}},
		}
		// Under replicate a dealer's and a provider's roots are their
		// locations in the replica, read inside the page query through the
		// replica's indexes, then each location's systems through
		// (location_id, name, id).
		repl := OrganizationLocations(replicate.ScopeLocations)
		for _, c := range []struct {
			name  string
			q     app.PageQuery
			index []string
		}{
			{"replicate dealer", app.PageQuery{Scope: policy.Scope{DealerIDs: []string{n("d", 1)}}, Limit: 50, After: after}, []string{"replica_locations_dealer", "security_systems_location_name"}},
			{"replicate dealers", app.PageQuery{Scope: policy.Scope{DealerIDs: []string{n("d", 1), n("d", 2)}}, Limit: 50}, []string{"replica_locations_dealer", "security_systems_location_name"}},
			{"replicate provider", app.PageQuery{Scope: policy.Scope{MonitoringProviderIDs: []string{n("p", 1)}}, Limit: 50}, []string{"replica_dealers_provider", "replica_locations_dealer", "security_systems_location_name"}},
		} {
			query, args := listQuery(db.Dialect(), repl, c.q)
			plan := explain(t, db, query, args...)
			for _, idx := range c.index {
				if !strings.Contains(plan, idx) {
					t.Errorf("%s: plan does not use %s:\n%s", c.name, idx, plan)
				}
			}
			rs := New(db, events.NewOutbox(events.ProducerSecuritySystem), WithOrganizationLocations(repl))
			p, err := rs.ListPage(ctx, c.q)
			if err != nil || len(p.Systems) != 50 {
				t.Errorf("%s: %d systems, %v", c.name, len(p.Systems), err)
			}
			for _, ss := range p.Systems {
				if d := ss.DealerID; d != n("d", 1) && d != n("d", 2) && c.q.Scope.MonitoringProviderIDs == nil {
					t.Errorf("%s: system %s of dealer %s listed", c.name, ss.ID, d)
				}
			}
		}
		for _, c := range cases {
			query, args := listQuery(db.Dialect(), OrganizationLocations{}, c.q)
			plan := explain(t, db, query, args...)
			for _, idx := range c.index {
				if !strings.Contains(plan, idx) {
					t.Errorf("%s: plan does not use %s:\n%s", c.name, idx, plan)
				}
			}
			if p, err := s.ListPage(ctx, c.q); err != nil || (len(p.Systems) == 0 && c.name != "location filter") {
				t.Errorf("%s: %d systems, %v", c.name, len(p.Systems), err)
			}
		}
		for _, c := range []struct {
			name, query, index string
			args               []any
		}{
			{"get", `SELECT ` + columns + ` FROM security_systems WHERE id = ?`, "security_systems_pkey|sqlite_autoindex_security_systems_1", []any{systems[5].ID}},
			{"audit of a system", `SELECT id FROM securitysystem_audit WHERE security_system_id = ? AND (at, id) < (?, ?) ORDER BY at DESC, id DESC LIMIT 10`, "securitysystem_audit_system", []any{systems[5].ID, sqldb.Micros(now.Add(1500 * time.Second)), "x"}},
		} {
			plan := explain(t, db, c.query, c.args...)
			ok := false
			for _, idx := range strings.Split(c.index, "|") {
				ok = ok || strings.Contains(plan, idx)
			}
			if !ok {
				t.Errorf("%s: plan does not use %s:\n%s", c.name, c.index, plan)
			}
		}
	})
}

func explain(t *testing.T, db *sqldb.DB, query string, args ...any) string {
	t.Helper()
	prefix := `EXPLAIN QUERY PLAN `
	if db.Dialect() == sqldb.Postgres {
		prefix = `EXPLAIN `
	}
	rows, err := db.QueryContext(context.Background(), prefix+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String()
}
