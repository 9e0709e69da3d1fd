package sstest

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// accessRoutes adds the access-review facts of docs/fetch-api.md to the
// double of kind's service, answered from the World: usernames are
// policytest.Username, names policytest.Name.
func (f *Facts) accessRoutes(mux *http.ServeMux, kind policy.OrgKind) {
	mux.HandleFunc("GET /authz/organizations/{organizationId}/role-holders", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("organizationId")
		if !f.orgExists(kind, id) {
			httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such organization"))
			return
		}
		var users []map[string]any
		for _, e := range f.world.Employees {
			if e.OrgKind != kind || e.OrgID != id {
				continue
			}
			if roles := securityRoles(e.Roles); len(roles) > 0 {
				users = append(users, map[string]any{"userId": e.UserID, "username": policytest.Username(e.UserID), "roles": roles, "schedule": e.Schedule})
			}
		}
		page, more, err := pageOf(r, users)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"organizationId": id, "kind": string(kind), "name": policytest.Name(orgLabel(kind), id), "users": page, "more": more})
	})
	if kind != policy.OrgCustomer {
		return
	}
	mux.HandleFunc("GET /authz/locations/{locationId}/access", func(w http.ResponseWriter, r *http.Request) {
		l, ok := f.world.Location(r.PathValue("locationId"))
		if !ok {
			httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such location"))
			return
		}
		var users []map[string]any
		for _, e := range f.world.Employees {
			if e.OrgKind != policy.OrgCustomer || e.OrgID != l.CustomerID {
				continue
			}
			direct := []string{}
			for _, lr := range f.world.EmployeeLocationRoles {
				if lr.LocationID == l.ID && lr.UserID == e.UserID {
					direct = slices.Clone(lr.Roles)
				}
			}
			teams := []map[string]any{}
			for _, tr := range f.world.TeamsAt(l.ID) {
				if t, _ := f.world.Team(tr.TeamID); slices.Contains(t.Members, e.UserID) {
					teams = append(teams, map[string]any{"teamId": t.ID, "name": policytest.Name("team", t.ID), "roles": tr.Roles})
				}
			}
			org := securityRoles(e.Roles)
			if len(direct) == 0 && len(teams) == 0 && len(org) == 0 {
				continue
			}
			users = append(users, map[string]any{"userId": e.UserID, "username": policytest.Username(e.UserID),
				"organizationRoles": org, "locationRoles": direct, "teams": teams, "schedule": e.Schedule})
		}
		page, more, err := pageOf(r, users)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"locationId": l.ID, "locationName": policytest.Name("location", l.ID),
			"customerId": l.CustomerID, "customerName": policytest.Name("customer", l.CustomerID), "dealerId": nullable(l.DealerID),
			"users": page, "more": more})
	})
}

func (f *Facts) orgExists(kind policy.OrgKind, id string) bool {
	switch kind {
	case policy.OrgCustomer:
		return slices.ContainsFunc(f.world.Customers, func(c policytest.Customer) bool { return c.ID == id })
	case policy.OrgDealer:
		return slices.ContainsFunc(f.world.Dealers, func(d policytest.Dealer) bool { return d.ID == id })
	}
	return slices.ContainsFunc(f.world.MonitoringProviders, func(p policytest.MonitoringProvider) bool { return p.ID == id })
}

func orgLabel(kind policy.OrgKind) string {
	switch kind {
	case policy.OrgDealer:
		return "dealer"
	case policy.OrgMonitoringProvider:
		return "provider"
	}
	return "customer"
}

func securityRoles(roles []string) []string {
	out := []string{}
	for _, r := range roles {
		if policy.IsLocationRole(r) {
			out = append(out, r)
		}
	}
	return out
}

// pageOf orders users by username then user id and returns the page the
// query's limit, afterUsername, afterUserId and userId select, and whether
// users follow it.
func pageOf(r *http.Request, users []map[string]any) ([]map[string]any, bool, error) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return nil, false, apperr.InvalidField("limit", "must be between 1 and 1000")
		}
		limit = n
	}
	key := func(u map[string]any) (string, string) { return u["username"].(string), u["userId"].(string) }
	slices.SortFunc(users, func(a, b map[string]any) int {
		au, ai := key(a)
		bu, bi := key(b)
		return cmp.Or(cmp.Compare(au, bu), cmp.Compare(ai, bi))
	})
	out := []map[string]any{}
	afterU, afterI, only := q.Get("afterUsername"), q.Get("afterUserId"), q.Get("userId")
	for _, u := range users {
		un, id := key(u)
		if afterI != "" && cmp.Or(cmp.Compare(un, afterU), cmp.Compare(id, afterI)) <= 0 {
			continue
		}
		if only != "" && id != only {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, u)
	}
	return out, false, nil
}
