package orgkit

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
)

// The bounds of one page of an access-facts endpoint (docs/fetch-api.md,
// "Access review"). The Security System Service asks for one page of its
// own (at most 500) plus one row, so 1000 leaves room.
const (
	DefaultAccessLimit = 100
	MaxAccessLimit     = 1000
)

// AccessPage selects one page of the holders of an access-facts endpoint:
// the first Limit users after the position (AfterUsername, AfterUserID) in
// the order username then user id (compared byte by byte, whatever the
// database's collation, so that a caller can merge the pages of several
// services), optionally only UserID.
type AccessPage struct {
	Limit         int
	AfterUsername string
	AfterUserID   string
	// UserID, when set, restricts the page to that user.
	UserID string
}

// HolderFacts is one user holding security system roles, as the
// access-facts endpoints report them.
type HolderFacts struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	// Roles are the user's security system roles as organization roles.
	Roles    []string         `json:"roles"`
	Schedule *policy.Schedule `json:"schedule"`
	// EmployeeID is the organization's own id of the employee; services
	// that add facts of their own (the customer's location roles) key them
	// by it. It is not part of the answer.
	EmployeeID string `json:"-"`
}

// RoleHolders is the answer of GET /authz/organizations/{id}/role-holders:
// the organization and one page of the active employees holding a
// security system role (ARMER, DISARMER, VIEWER) as an organization role.
type RoleHolders struct {
	OrganizationID string         `json:"organizationId"`
	Kind           policy.OrgKind `json:"kind"`
	Name           string         `json:"name"`
	Users          []HolderFacts  `json:"users"`
	// More is true when users follow the page.
	More bool `json:"more"`
}

// CheckAccessPage validates a page request, naming the query parameter
// at fault; a zero Limit becomes DefaultAccessLimit.
func CheckAccessPage(p *AccessPage) error {
	switch {
	case p.Limit == 0:
		p.Limit = DefaultAccessLimit
	case p.Limit < 1 || p.Limit > MaxAccessLimit:
		return apperr.InvalidField("limit", "must be between 1 and %d", MaxAccessLimit)
	}
	if (p.AfterUsername == "") != (p.AfterUserID == "") {
		return apperr.InvalidField("afterUserId", "afterUsername and afterUserId go together")
	}
	return nil
}

// RoleHolders returns the organization orgID and one page of its active
// employees holding a security system role there, to a service token with
// scope authz:read; an unknown organization is NotFound.
func (s *Service) RoleHolders(ctx context.Context, orgID string, p AccessPage) (RoleHolders, error) {
	if err := RequireFactsReader(ctx); err != nil {
		return RoleHolders{}, err
	}
	if err := CheckAccessPage(&p); err != nil {
		return RoleHolders{}, err
	}
	o, err := s.repo.Organization(ctx, s.db, orgID)
	if err != nil {
		return RoleHolders{}, err
	}
	users, err := s.repo.RoleHolders(ctx, s.db, orgID, p)
	if err != nil {
		return RoleHolders{}, err
	}
	out := RoleHolders{OrganizationID: o.ID, Kind: s.kind.Org, Name: o.Name, Users: users}
	if len(users) > p.Limit {
		out.Users, out.More = users[:p.Limit], true
	}
	return out, nil
}

// BinaryOrder returns col in a form that compares and sorts byte by byte
// on every engine: SQLite's default collation already does, PostgreSQL's
// follows the database's locale unless told otherwise.
func BinaryOrder(d sqldb.Dialect, col string) string {
	if d == sqldb.Postgres {
		return col + ` COLLATE "C"`
	}
	return col
}

// AfterClause returns the keyset condition "(email, user_id) after the
// page's position" over the employees table aliased e, with its arguments;
// true when the page starts at the beginning.
func AfterClause(d sqldb.Dialect, p AccessPage) (string, []any) {
	if p.AfterUsername == "" {
		return "1 = 1", nil
	}
	email, uid := BinaryOrder(d, "e.email"), BinaryOrder(d, "e.user_id")
	return "(" + email + " > ? OR (e.email = ? AND " + uid + " > ?))", []any{p.AfterUsername, p.AfterUsername, p.AfterUserID}
}

// securityRoles are the organization roles that can grant anything on a
// security system, as SQL arguments.
func securityRoles() []any {
	return []any{policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer}
}

// RoleHolders returns up to p.Limit+1 active employees of orgID holding a
// security system role as an organization role, after p's position in
// username then user id order, with those roles and their schedules. The
// extra row tells the caller that more follow.
func (r Repo) RoleHolders(ctx context.Context, q sqldb.Querier, orgID string, p AccessPage) ([]HolderFacts, error) {
	d := q.Dialect()
	after, args := AfterClause(d, p)
	query := `SELECT e.id, e.user_id, e.email FROM employees e
		WHERE e.org_id = ? AND e.status = ? AND ` + after + `
		AND EXISTS (SELECT 1 FROM employee_roles r WHERE r.employee_id = e.id AND r.role IN (?, ?, ?))`
	all := append([]any{orgID, StatusActive}, args...)
	all = append(all, securityRoles()...)
	if p.UserID != "" {
		query += ` AND e.user_id = ?`
		all = append(all, p.UserID)
	}
	query += ` ORDER BY ` + BinaryOrder(d, "e.email") + `, ` + BinaryOrder(d, "e.user_id") + ` LIMIT ?`
	all = append(all, p.Limit+1)
	holders, err := ScanHolders(ctx, q, query, all...)
	if err != nil {
		return nil, err
	}
	return holders, r.FillHolders(ctx, q, holders)
}

// ScanHolders runs query, which selects (employee id, user id, e-mail), and
// returns the rows as holders without roles or schedule.
func ScanHolders(ctx context.Context, q sqldb.Querier, query string, args ...any) ([]HolderFacts, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list role holders")
	}
	defer rows.Close()
	out := []HolderFacts{}
	for rows.Next() {
		h := HolderFacts{Roles: []string{}}
		if err := rows.Scan(&h.EmployeeID, &h.UserID, &h.Username); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "list role holders")
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list role holders")
	}
	return out, nil
}

// FillHolders adds to each holder its security system organization roles
// and its schedule, in two queries for the whole page.
func (Repo) FillHolders(ctx context.Context, q sqldb.Querier, hs []HolderFacts) error {
	if len(hs) == 0 {
		return nil
	}
	ids := make([]any, len(hs))
	at := make(map[string]int, len(hs))
	for i, h := range hs {
		ids[i] = h.EmployeeID
		at[h.EmployeeID] = i
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := q.QueryContext(ctx, `SELECT employee_id, role FROM employee_roles WHERE role IN (?, ?, ?) AND employee_id IN `+in+` ORDER BY employee_id, role`,
		append(securityRoles(), ids...)...)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "read holder roles")
	}
	defer rows.Close()
	for rows.Next() {
		var emp, role string
		if err := rows.Scan(&emp, &role); err != nil {
			return apperr.Wrap(err, apperr.Internal, "read holder roles")
		}
		hs[at[emp]].Roles = append(hs[at[emp]].Roles, role)
	}
	if err := rows.Err(); err != nil {
		return apperr.Wrap(err, apperr.Internal, "read holder roles")
	}
	srows, err := q.QueryContext(ctx, `SELECT employee_id, schedule FROM employee_schedules WHERE employee_id IN `+in, ids...)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "read holder schedules")
	}
	defer srows.Close()
	for srows.Next() {
		var emp, raw string
		if err := srows.Scan(&emp, &raw); err != nil {
			return apperr.Wrap(err, apperr.Internal, "read holder schedules")
		}
		var sch policy.Schedule
		if err := json.Unmarshal([]byte(raw), &sch); err != nil {
			return apperr.Wrap(err, apperr.Internal, "decode stored schedule")
		}
		hs[at[emp]].Schedule = &sch
	}
	if err := srows.Err(); err != nil {
		return apperr.Wrap(err, apperr.Internal, "read holder schedules")
	}
	return nil
}
