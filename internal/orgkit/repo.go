package orgkit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
)

// Repo is the SQL repository of the kit's tables. It is stateless: every
// method takes the sqldb.Querier to run on, so a service can call it inside
// its own transaction (a *sqldb.Tx) next to its own statements, or on the
// *sqldb.DB for a read. The zero value is ready to use.
//
// Reads return active rows only: pending rows (an account being
// provisioned) and removed rows are invisible, and an invisible row is an
// apperr.NotFound, never a partial result.
type Repo struct{}

const employeeColumns = `id, org_id, user_id, email, first_name, last_name, status`

func scanEmployee(row interface{ Scan(...any) error }) (Employee, error) {
	var e Employee
	var status string
	err := row.Scan(&e.ID, &e.OrgID, &e.UserID, &e.Email, &e.FirstName, &e.LastName, &status)
	e.Status = Status(status)
	return e, err
}

func notFoundOr(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.New(apperr.NotFound, "%s not found", what)
	}
	return apperr.Wrap(err, apperr.Internal, "read %s", what)
}

// Organization returns the active organization id.
func (Repo) Organization(ctx context.Context, q sqldb.Querier, id string) (Organization, error) {
	var o Organization
	err := q.QueryRowContext(ctx, `SELECT id, name FROM organizations WHERE id = ? AND status = ?`, id, StatusActive).Scan(&o.ID, &o.Name)
	if err != nil {
		return Organization{}, notFoundOr(err, "organization")
	}
	return o, nil
}

// Employee returns the active employee employeeID of organization orgID.
// An employee of another organization is NotFound, exactly like an unknown
// id, so a path can never reach into a foreign organization.
func (Repo) Employee(ctx context.Context, q sqldb.Querier, orgID, employeeID string) (Employee, error) {
	e, err := scanEmployee(q.QueryRowContext(ctx, `SELECT `+employeeColumns+` FROM employees WHERE id = ? AND org_id = ? AND status = ?`, employeeID, orgID, StatusActive))
	if err != nil {
		return Employee{}, notFoundOr(err, "employee")
	}
	return e, nil
}

// EmployeeByUserID returns the active employee whose IAM account is userID,
// in whatever organization; NotFound when the user is nobody's employee.
func (Repo) EmployeeByUserID(ctx context.Context, q sqldb.Querier, userID string) (Employee, error) {
	e, err := scanEmployee(q.QueryRowContext(ctx, `SELECT `+employeeColumns+` FROM employees WHERE user_id = ? AND status = ?`, userID, StatusActive))
	if err != nil {
		return Employee{}, notFoundOr(err, "employee")
	}
	return e, nil
}

// Roles returns the organization roles of employeeID, sorted by name.
func (Repo) Roles(ctx context.Context, q sqldb.Querier, employeeID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT role FROM employee_roles WHERE employee_id = ? ORDER BY role`, employeeID)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read roles")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "read roles")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read roles")
	}
	return out, nil
}

// HasRole reports whether employeeID holds the organization role role.
func (Repo) HasRole(ctx context.Context, q sqldb.Querier, employeeID, role string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM employee_roles WHERE employee_id = ? AND role = ?`, employeeID, role).Scan(&n); err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "read roles")
	}
	return n > 0, nil
}

// SetRoles replaces the organization roles of employeeID with roles.
func (Repo) SetRoles(ctx context.Context, q sqldb.Querier, employeeID string, roles []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM employee_roles WHERE employee_id = ?`, employeeID); err != nil {
		return apperr.Wrap(err, apperr.Internal, "replace roles")
	}
	for _, r := range roles {
		if _, err := q.ExecContext(ctx, `INSERT INTO employee_roles (employee_id, role) VALUES (?, ?)`, employeeID, r); err != nil {
			return apperr.Wrap(err, apperr.Internal, "replace roles")
		}
	}
	return nil
}

// Schedule returns the schedule of employeeID, nil when unrestricted.
func (Repo) Schedule(ctx context.Context, q sqldb.Querier, employeeID string) (*policy.Schedule, error) {
	var raw string
	err := q.QueryRowContext(ctx, `SELECT schedule FROM employee_schedules WHERE employee_id = ?`, employeeID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read schedule")
	}
	var s policy.Schedule
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "decode stored schedule")
	}
	return &s, nil
}

// SetSchedule stores s as the schedule of employeeID, replacing any.
func (Repo) SetSchedule(ctx context.Context, q sqldb.Querier, employeeID string, s policy.Schedule, now time.Time) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "encode schedule")
	}
	// Delete then insert is portable (no dialect-specific upsert) and runs
	// inside the caller's transaction, so it is atomic.
	if _, err := q.ExecContext(ctx, `DELETE FROM employee_schedules WHERE employee_id = ?`, employeeID); err != nil {
		return apperr.Wrap(err, apperr.Internal, "store schedule")
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO employee_schedules (employee_id, schedule, updated_at) VALUES (?, ?, ?)`, employeeID, string(raw), sqldb.Micros(now)); err != nil {
		return apperr.Wrap(err, apperr.Internal, "store schedule")
	}
	return nil
}

// ClearSchedule removes the schedule of employeeID (unrestricted).
func (Repo) ClearSchedule(ctx context.Context, q sqldb.Querier, employeeID string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM employee_schedules WHERE employee_id = ?`, employeeID); err != nil {
		return apperr.Wrap(err, apperr.Internal, "clear schedule")
	}
	return nil
}

// Details returns e with its roles and schedule.
func (r Repo) Details(ctx context.Context, q sqldb.Querier, e Employee) (EmployeeDetails, error) {
	roles, err := r.Roles(ctx, q, e.ID)
	if err != nil {
		return EmployeeDetails{}, err
	}
	s, err := r.Schedule(ctx, q, e.ID)
	if err != nil {
		return EmployeeDetails{}, err
	}
	return EmployeeDetails{Employee: e, Roles: roles, Schedule: s}, nil
}

// The provisioning statements below see pending rows on purpose: they are
// the only code that creates, completes or abandons them.

// insertOrganization inserts an organization in the given state.
func (Repo) insertOrganization(ctx context.Context, q sqldb.Querier, o Organization, status Status, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO organizations (id, name, status, created_at) VALUES (?, ?, ?, ?)`, o.ID, o.Name, status, sqldb.Micros(now))
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "insert organization")
	}
	return nil
}

// organizationStatus returns the state of organization id, or "" when
// there is none.
func (Repo) organizationStatus(ctx context.Context, q sqldb.Querier, id string) (Status, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT status FROM organizations WHERE id = ?`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "read organization")
	}
	return Status(s), nil
}

// emailHolder is the live employee holding an e-mail address, with the
// instant (Unix microseconds) of its last change: for a pending employee,
// of the last provisioning attempt, which tells an abandoned one.
type emailHolder struct {
	Employee
	updatedAt int64
}

// liveEmployeeByEmail returns the pending or active employee with the
// (lower-cased) e-mail address, if any.
func (Repo) liveEmployeeByEmail(ctx context.Context, q sqldb.Querier, email string) (emailHolder, bool, error) {
	var h emailHolder
	var status string
	err := q.QueryRowContext(ctx, `SELECT `+employeeColumns+`, updated_at FROM employees WHERE lower(email) = ? AND status <> ?`, email, StatusRemoved).
		Scan(&h.ID, &h.OrgID, &h.UserID, &h.Email, &h.FirstName, &h.LastName, &status, &h.updatedAt)
	h.Status = Status(status)
	if errors.Is(err, sql.ErrNoRows) {
		return emailHolder{}, false, nil
	}
	if err != nil {
		return emailHolder{}, false, apperr.Wrap(err, apperr.Internal, "read employee")
	}
	return h, true, nil
}

// removedEmployeeByEmail returns the removed employee with the
// (lower-cased) e-mail address, if any; the most recently removed one
// should there be several.
func (Repo) removedEmployeeByEmail(ctx context.Context, q sqldb.Querier, email string) (Employee, bool, error) {
	e, err := scanEmployee(q.QueryRowContext(ctx, `SELECT `+employeeColumns+` FROM employees WHERE lower(email) = ? AND status = ?
		ORDER BY updated_at DESC, id LIMIT 1`, email, StatusRemoved))
	if errors.Is(err, sql.ErrNoRows) {
		return Employee{}, false, nil
	}
	if err != nil {
		return Employee{}, false, apperr.Wrap(err, apperr.Internal, "read employee")
	}
	return e, true, nil
}

// reactivateEmployee makes the removed employee e pending again with e's
// names, for a re-hire, and reports whether it did: false means a
// concurrent request got there first. A live employee with the same
// address is errEmailTaken (the unique index decides).
func (Repo) reactivateEmployee(ctx context.Context, q sqldb.Querier, e Employee, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE employees SET status = ?, first_name = ?, last_name = ?, updated_at = ? WHERE id = ? AND status = ?`,
		StatusPending, e.FirstName, e.LastName, sqldb.Micros(now), e.ID, StatusRemoved)
	if sqldb.IsUniqueViolation(err) {
		return false, errEmailTaken
	}
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "reactivate employee")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "reactivate employee")
	}
	return n == 1, nil
}

// insertEmployee inserts e; a live employee with the same e-mail is a
// Conflict (the unique index decides, so concurrent creations cannot both
// win).
func (Repo) insertEmployee(ctx context.Context, q sqldb.Querier, e Employee, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO employees (`+employeeColumns+`, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.OrgID, e.UserID, e.Email, e.FirstName, e.LastName, e.Status, sqldb.Micros(now), sqldb.Micros(now))
	if sqldb.IsUniqueViolation(err) {
		return errEmailTaken
	}
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "insert employee")
	}
	return nil
}

// errEmailTaken reports a unique-index collision on the e-mail address; the
// use case turns it into a Conflict naming its own field.
var errEmailTaken = errors.New("e-mail address taken by a live employee")

// updatePendingEmployee refreshes the names of a pending employee from a
// retried request, so the retry's values are the ones that become active.
func (Repo) updatePendingEmployee(ctx context.Context, q sqldb.Querier, e Employee, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE employees SET first_name = ?, last_name = ?, updated_at = ? WHERE id = ? AND status = ?`,
		e.FirstName, e.LastName, sqldb.Micros(now), e.ID, StatusPending)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "update employee")
	}
	return nil
}

// setEmployeeStatus moves employee id from state from to state to and
// reports whether it did: false means another request got there first.
func (Repo) setEmployeeStatus(ctx context.Context, q sqldb.Querier, id string, from, to Status, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE employees SET status = ?, updated_at = ? WHERE id = ? AND status = ?`, to, sqldb.Micros(now), id, from)
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "update employee")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "update employee")
	}
	return n == 1, nil
}

// deletePendingEmployee deletes employee id if it is still pending. A
// pending employee has no roles or schedule (a re-hired one lost them at
// its removal), so nothing of the kit refers to it; the caller deletes
// only rows whose IAM account does not exist.
func (Repo) deletePendingEmployee(ctx context.Context, q sqldb.Querier, id string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM employees WHERE id = ? AND status = ?`, id, StatusPending); err != nil {
		return apperr.Wrap(err, apperr.Internal, "delete pending employee")
	}
	return nil
}

// deleteAbandonedEmployee deletes the pending employee id if its last
// change is still at updatedAt, and reports whether it did. The instant
// is the guard against a concurrent retry, which refreshes it before it
// touches the IAM: a row somebody is completing is never deleted.
func (Repo) deleteAbandonedEmployee(ctx context.Context, q sqldb.Querier, id string, updatedAt int64) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM employees WHERE id = ? AND status = ? AND updated_at = ?`, id, StatusPending, updatedAt)
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "delete abandoned employee")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "delete abandoned employee")
	}
	return n == 1, nil
}

// updatePendingOrganization refreshes the name of a pending organization
// from a retried request.
func (Repo) updatePendingOrganization(ctx context.Context, q sqldb.Querier, o Organization) error {
	if _, err := q.ExecContext(ctx, `UPDATE organizations SET name = ? WHERE id = ? AND status = ?`, o.Name, o.ID, StatusPending); err != nil {
		return apperr.Wrap(err, apperr.Internal, "update organization")
	}
	return nil
}

// activateOrganization moves organization id from pending to active and
// reports whether it did.
func (Repo) activateOrganization(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE organizations SET status = ? WHERE id = ? AND status = ?`, StatusActive, id, StatusPending)
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "activate organization")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "activate organization")
	}
	return n == 1, nil
}

// deletePendingOrganization deletes organization id if it is still pending
// and has no employee left.
func (Repo) deletePendingOrganization(ctx context.Context, q sqldb.Querier, id string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM organizations WHERE id = ? AND status = ? AND NOT EXISTS (SELECT 1 FROM employees WHERE org_id = ?)`, id, StatusPending, id); err != nil {
		return apperr.Wrap(err, apperr.Internal, "delete pending organization")
	}
	return nil
}
