package orgkit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/orgkit/paging/pagingtest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestPages pages through organizations and employees on both stores while
// rows are inserted between pages: every row that existed when paging
// began is seen exactly once, in list order; the filter and the other
// organization's rows are respected; and the hot queries read their
// indexes in order.
func TestPages(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		var repo Repo
		now := time.Now()
		// Names with ties, so the id decides between equal names.
		var orgs []Organization
		for i := range 23 {
			o := Organization{ID: uuid.NewString(), Name: fmt.Sprintf("Org %02d", i%9)}
			if err := repo.insertOrganization(ctx, db, o, StatusActive, now); err != nil {
				t.Fatal(err)
			}
			orgs = append(orgs, o)
		}
		pending := Organization{ID: uuid.NewString(), Name: "Org 00 pending"}
		if err := repo.insertOrganization(ctx, db, pending, StatusPending, now); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(orgs, func(a, b Organization) int { return slices.Compare(OrganizationKey(a), OrganizationKey(b)) })

		var seen []Organization
		req, _ := paging.Parse(map[string][]string{"limit": {"4"}}, "", 2, true)
		rec := &pagingtest.Recorder{Q: db}
		for pages := 0; ; pages++ {
			rows, err := repo.OrganizationsPage(ctx, rec, req)
			if err != nil {
				t.Fatal(err)
			}
			q := rec.Last(t)
			pagingtest.RequireIndex(t, db, "organizations_status_name", true, q.Query, q.Args...)
			page := paging.Cut(req, rows, OrganizationKey)
			seen = append(seen, page.Items...)
			// A concurrent insert before and after the cursor.
			for _, name := range []string{"Org 00", "Org 99"} {
				if err := repo.insertOrganization(ctx, db, Organization{ID: uuid.NewString(), Name: name + " new"}, StatusActive, now); err != nil {
					t.Fatal(err)
				}
			}
			if page.Next == "" {
				break
			}
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			req, err = paging.Parse(map[string][]string{"limit": {"4"}, "cursor": {page.Next}}, "", 2, true)
			if err != nil {
				t.Fatal(err)
			}
		}
		var old []Organization
		for _, o := range seen {
			if o.Name != "Org 99 new" && o.Name != "Org 00 new" {
				old = append(old, o)
			}
		}
		if !slices.Equal(old, orgs) {
			t.Fatalf("paged organizations (without the concurrent inserts):\n%v\nwant\n%v", old, orgs)
		}

		// The filter: name contains, ignoring case, with LIKE's wildcards
		// taken literally.
		req, _ = paging.Parse(map[string][]string{"q": {"oRG 0"}}, "", 2, true)
		rows, err := repo.OrganizationsPage(ctx, db, req)
		if err != nil || len(rows) == 0 {
			t.Fatalf("q: %v %v", rows, err)
		}
		for _, o := range rows {
			if o.Name[:5] != "Org 0" {
				t.Fatalf("q matched %q", o.Name)
			}
		}
		req, _ = paging.Parse(map[string][]string{"q": {"%"}}, "", 2, true)
		if rows, err := repo.OrganizationsPage(ctx, db, req); err != nil || len(rows) != 0 {
			t.Fatalf("q=%% matched %v, %v", rows, err)
		}

		// Employees of one organization, by last name, first name, id.
		org, other := orgs[0].ID, orgs[1].ID
		var emps []Employee
		for i := range 11 {
			e := Employee{ID: uuid.NewString(), OrgID: org, UserID: uuid.NewString(), Email: fmt.Sprintf("e%d@x.example", i),
				FirstName: fmt.Sprintf("F%d", i%2), LastName: fmt.Sprintf("L%d", i%4), Status: StatusActive}
			if err := repo.insertEmployee(ctx, db, e, now); err != nil {
				t.Fatal(err)
			}
			emps = append(emps, e)
		}
		for _, e := range []Employee{
			{ID: uuid.NewString(), OrgID: other, UserID: uuid.NewString(), Email: "o@x.example", FirstName: "A", LastName: "A", Status: StatusActive},
			{ID: uuid.NewString(), OrgID: org, UserID: uuid.NewString(), Email: "p@x.example", FirstName: "A", LastName: "A", Status: StatusPending},
		} {
			if err := repo.insertEmployee(ctx, db, e, now); err != nil {
				t.Fatal(err)
			}
		}
		key := func(e Employee) []string { return EmployeeKey(EmployeeDetails{Employee: e}) }
		slices.SortFunc(emps, func(a, b Employee) int { return slices.Compare(key(a), key(b)) })
		var got []Employee
		req, _ = paging.Parse(map[string][]string{"limit": {"3"}}, "", 3, true)
		for {
			rows, err := repo.EmployeesPage(ctx, rec, org, req)
			if err != nil {
				t.Fatal(err)
			}
			q := rec.Last(t)
			pagingtest.RequireIndex(t, db, "employees_org_names", true, q.Query, q.Args...)
			page := paging.Cut(req, rows, key)
			got = append(got, page.Items...)
			if page.Next == "" {
				break
			}
			req, _ = paging.Parse(map[string][]string{"limit": {"3"}, "cursor": {page.Next}}, "", 3, true)
		}
		if !slices.Equal(got, emps) {
			t.Fatalf("paged employees:\n%v\nwant\n%v", got, emps)
		}
		req, _ = paging.Parse(map[string][]string{"q": {"E3@X"}}, "", 3, true)
		if rows, err := repo.EmployeesPage(ctx, db, org, req); err != nil || len(rows) != 1 || rows[0].Email != "e3@x.example" {
			t.Fatalf("q by e-mail: %v, %v", rows, err)
		}

		// Details of a page: three queries, roles and schedules by key.
		if err := repo.SetRoles(ctx, db, emps[0].ID, []string{"B", "A"}); err != nil {
			t.Fatal(err)
		}
		rec.Queries = nil
		details, err := repo.DetailsOf(ctx, rec, emps)
		if err != nil || len(details) != len(emps) || !slices.Equal(details[0].Roles, []string{"A", "B"}) || len(details[1].Roles) != 0 {
			t.Fatalf("DetailsOf = %+v, %v", details, err)
		}
		if len(rec.Queries) != 2 {
			t.Fatalf("DetailsOf ran %d queries, want 2", len(rec.Queries))
		}
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_employee_roles_1|employee_roles_pkey", false, rec.Queries[0].Query, rec.Queries[0].Args...)

		// The batch read of a bulk change: active employees of org only.
		ids := []string{emps[0].ID, emps[1].ID, uuid.NewString()}
		found, err := repo.ActiveEmployees(ctx, rec, org, ids)
		if err != nil || len(found) != 2 {
			t.Fatalf("ActiveEmployees = %v, %v", found, err)
		}
		q := rec.Last(t)
		pagingtest.RequireIndex(t, db, "sqlite_autoindex_employees_1|employees_pkey", false, q.Query, q.Args...)
		if found, _ := repo.ActiveEmployees(ctx, db, other, ids); len(found) != 0 {
			t.Fatalf("ActiveEmployees of another organization = %v", found)
		}
	})
}

// TestRoleHoldersPlan shows, on SQLite (EXPLAIN QUERY PLAN) and PostgreSQL
// (EXPLAIN), that a page of the access review's role holders, the first
// and one after a cursor, reads employees_org_email in its order instead
// of sorting the organization's employees.
func TestRoleHoldersPlan(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		var repo Repo
		org := uuid.NewString()
		for _, p := range []AccessPage{{Limit: 50}, {Limit: 50, AfterUsername: "m@x.example", AfterUserID: uuid.NewString()}} {
			rec := &pagingtest.Recorder{Q: db}
			if _, err := repo.RoleHolders(ctx, rec, org, p); err != nil {
				t.Fatal(err)
			}
			q := rec.Queries[0]
			pagingtest.RequireIndex(t, db, "employees_org_email", true, q.Query, q.Args...)
		}
	})
}
