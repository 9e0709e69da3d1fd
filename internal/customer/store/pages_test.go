package store_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/customer/store"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/orgkit/paging/pagingtest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

func parse(t *testing.T, v url.Values, keyLen int) paging.Request {
	t.Helper()
	req, err := paging.Parse(v, "test", keyLen, true)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestPagesAndImports pages locations, teams and members on both stores
// with inserts between pages (each existing row once, in order), checks
// the batch statements of the imports, and that every hot query of the
// lists and imports reads an index.
func TestPagesAndImports(t *testing.T) {
	sets := []sqldb.Migrations{orgkit.Migrations(), store.Migrations()}
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := store.Store{}
		rec := &pagingtest.Recorder{Q: db}
		cust, other := uuid.NewString(), uuid.NewString()

		// Locations, inserted in bulk across more than one statement.
		var locs []app.Location
		for i := range 1203 {
			locs = append(locs, app.Location{ID: uuid.NewString(), CustomerID: cust, Name: fmt.Sprintf("L%03d", i%400)})
		}
		must(t, s.InsertLocations(ctx, db, locs))
		must(t, s.InsertLocations(ctx, db, []app.Location{{ID: uuid.NewString(), CustomerID: other, Name: "L000"}}))
		want := slices.Clone(locs)
		slices.SortFunc(want, func(a, b app.Location) int { return slices.Compare(app.LocationKey(a), app.LocationKey(b)) })
		var got []app.Location
		req := parse(t, url.Values{"limit": {"500"}}, 2)
		for {
			rows, err := s.LocationsPage(ctx, rec, cust, req)
			must(t, err)
			q := rec.Last(t)
			pagingtest.RequireIndex(t, db, "customer_locations_customer_name", true, q.Query, q.Args...)
			page := paging.Cut(req, rows, app.LocationKey)
			got = append(got, page.Items...)
			must(t, s.InsertLocation(ctx, db, app.Location{ID: uuid.NewString(), CustomerID: cust, Name: "A new"}))
			must(t, s.InsertLocation(ctx, db, app.Location{ID: uuid.NewString(), CustomerID: cust, Name: "Z new"}))
			if page.Next == "" {
				break
			}
			req = parse(t, url.Values{"limit": {"500"}, "cursor": {page.Next}}, 2)
		}
		got = slices.DeleteFunc(got, func(l app.Location) bool { return l.Name == "Z new" })
		if !slices.Equal(got, want) {
			t.Fatalf("paged %d locations, want the %d that existed, in order", len(got), len(want))
		}
		// Filtered pages read the same index.
		rows, err := s.LocationsPage(ctx, rec, cust, parse(t, url.Values{"q": {"l39"}}, 2))
		must(t, err)
		if len(rows) != 30 {
			t.Fatalf("q=l39: %d locations, want 30", len(rows))
		}
		q := rec.Last(t)
		pagingtest.RequireIndex(t, db, "customer_locations_customer_name", true, q.Query, q.Args...)

		ids := []string{locs[0].ID, locs[1].ID, uuid.NewString()}
		mine, err := s.LocationsOf(ctx, rec, cust, ids)
		must(t, err)
		if len(mine) != 2 || !mine[locs[0].ID] {
			t.Fatalf("LocationsOf = %v", mine)
		}
		q = rec.Last(t)
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_locations_1|customer_locations_pkey", false, q.Query, q.Args...)
		if theirs, _ := s.LocationsOf(ctx, db, other, ids); len(theirs) != 0 {
			t.Fatalf("LocationsOf another customer = %v", theirs)
		}

		// Grants replaced in bulk, read per location.
		e1, e2 := uuid.NewString(), uuid.NewString()
		grants := []app.Grant{
			{LocationID: locs[0].ID, EmployeeID: e1, UserID: "u1", Roles: []string{"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"}},
			{LocationID: locs[0].ID, EmployeeID: e2, UserID: "u2", Roles: []string{"SECURITY_SYSTEM_VIEWER"}},
			{LocationID: locs[1].ID, EmployeeID: e1, UserID: "u1", Roles: []string{"SECURITY_SYSTEM_VIEWER"}},
		}
		must(t, s.ReplaceEmployeeLocationRoles(ctx, db, cust, grants))
		must(t, s.ReplaceEmployeeLocationRoles(ctx, rec, cust, []app.Grant{
			{LocationID: locs[0].ID, EmployeeID: e1, UserID: "u1", Roles: []string{}},
			{LocationID: locs[1].ID, EmployeeID: e1, UserID: "u1", Roles: []string{"SECURITY_SYSTEM_DISARMER"}},
		}))
		del := rec.Queries[0]
		rec.Queries = nil
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_location_employee_roles_1|customer_location_employee_roles_pkey", false, del.Query, del.Args...)
		at, err := s.EmployeeRolesAt(ctx, rec, []string{locs[0].ID, locs[1].ID})
		must(t, err)
		wantAt := map[string][]app.RoleGrant{
			locs[0].ID: {{HolderID: e2, Roles: []string{"SECURITY_SYSTEM_VIEWER"}}},
			locs[1].ID: {{HolderID: e1, Roles: []string{"SECURITY_SYSTEM_DISARMER"}}},
		}
		if fmt.Sprint(at) != fmt.Sprint(wantAt) {
			t.Fatalf("EmployeeRolesAt = %v; want %v", at, wantAt)
		}
		q = rec.Last(t)
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_location_employee_roles_1|customer_location_employee_roles_pkey", false, q.Query, q.Args...)
		if _, err := s.TeamRolesAt(ctx, rec, []string{locs[0].ID}); err != nil {
			t.Fatal(err)
		}
		q = rec.Last(t)
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_location_team_roles_1|customer_location_team_roles_pkey", false, q.Query, q.Args...)

		// Teams and their members (the kit's employees, by name).
		var teams []app.Team
		for i := range 7 {
			tm := app.Team{ID: uuid.NewString(), CustomerID: cust, Name: fmt.Sprintf("T%d", i%3)}
			must(t, s.InsertTeam(ctx, db, tm))
			teams = append(teams, tm)
		}
		slices.SortFunc(teams, func(a, b app.Team) int { return slices.Compare(app.TeamKey(a), app.TeamKey(b)) })
		var gotTeams []app.Team
		req = parse(t, url.Values{"limit": {"2"}}, 2)
		for {
			rows, err := s.TeamsPage(ctx, rec, cust, req)
			must(t, err)
			q := rec.Last(t)
			pagingtest.RequireIndex(t, db, "customer_teams_customer_name", true, q.Query, q.Args...)
			page := paging.Cut(req, rows, app.TeamKey)
			gotTeams = append(gotTeams, page.Items...)
			if page.Next == "" {
				break
			}
			req = parse(t, url.Values{"limit": {"2"}, "cursor": {page.Next}}, 2)
		}
		if !slices.Equal(gotTeams, teams) {
			t.Fatalf("paged teams %v; want %v", gotTeams, teams)
		}
		now := time.Now().UnixMicro()
		team := teams[0].ID
		var members []app.Employee
		for i := range 5 {
			e := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Email: fmt.Sprintf("m%d@x.example", i),
				FirstName: fmt.Sprintf("F%d", i), LastName: fmt.Sprintf("L%d", i%2), Active: true}
			status := "active"
			if i == 4 {
				status = "removed"
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO organizations (id, name, status, created_at) SELECT ?, 'C', 'active', ? WHERE NOT EXISTS (SELECT 1 FROM organizations WHERE id = ?)`, cust, now, cust); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO employees (id, org_id, user_id, email, first_name, last_name, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				e.ID, cust, e.UserID, e.Email, e.FirstName, e.LastName, status, now, now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddMember(ctx, db, cust, team, e.ID, e.UserID); err != nil {
				t.Fatal(err)
			}
			if status == "active" {
				members = append(members, e)
			}
		}
		slices.SortFunc(members, func(a, b app.Employee) int { return slices.Compare(app.MemberKey(a), app.MemberKey(b)) })
		var gotMembers []app.Employee
		req = parse(t, url.Values{"limit": {"3"}}, 3)
		for {
			rows, err := s.MembersPage(ctx, rec, team, req)
			must(t, err)
			q := rec.Last(t)
			pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_team_members_1|customer_team_members_pkey", false, q.Query, q.Args...)
			page := paging.Cut(req, rows, app.MemberKey)
			gotMembers = append(gotMembers, page.Items...)
			if page.Next == "" {
				break
			}
			req = parse(t, url.Values{"limit": {"3"}, "cursor": {page.Next}}, 3)
		}
		if !slices.Equal(gotMembers, members) {
			t.Fatalf("paged members %v; want %v", gotMembers, members)
		}
		tm, err := s.TeamMembers(ctx, rec, []string{team, teams[1].ID})
		must(t, err)
		if len(tm) != 1 || len(tm[team]) != 5 {
			t.Fatalf("TeamMembers = %v", tm)
		}
		q = rec.Last(t)
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_customer_team_members_1|customer_team_members_pkey", false, q.Query, q.Args...)
	})
}
