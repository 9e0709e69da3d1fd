package replicate

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema of the replica tables.
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "securitysystem_replica", FS: migrationFS, Dir: "migrations"}
}

// The source streams of the replica (docs/events.md), one per producer,
// without the subject prefix: the names the lag gauge and a rebuild's
// report use.
const (
	StreamCustomer   = "REALGUARDIO_CUSTOMER"
	StreamDealer     = "REALGUARDIO_DEALER"
	StreamMonitoring = "REALGUARDIO_MONITORING"
)

// Streams lists the source streams in a fixed order.
var Streams = []string{StreamCustomer, StreamDealer, StreamMonitoring}

// replicaTables are truncated by a rebuild, children first.
var replicaTables = []string{
	"replica_location_roles", "replica_team_members", "replica_team_roles",
	"replica_employees", "replica_locations", "replica_dealers",
}

// Projection applies the organization services' events to the replica
// tables. Handle (one event) and HandleBatch (a batch's events) are the
// handlers of the events consumer: they run inside the consumer's
// transaction, which also records the event ids and the streams' progress
// (event_consumer_streams: the lag and a rebuild's counts), so each event
// is applied exactly once even when JetStream redelivers it.
type Projection struct{}

// NewProjection returns the replica's projection.
func NewProjection() *Projection { return &Projection{} }

// Handle applies one event in tx. Events the replica does not need are
// accepted and ignored, so new event types never block the stream; an
// event whose payload cannot be read is an error, so the consumer retries
// (and eventually parks) it instead of silently losing a fact.
func (p *Projection) Handle(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	step, err := stepOf(ev)
	if err != nil {
		return fmt.Errorf("replica: payload of %s %s: %w", ev.Type, ev.ID, err)
	}
	if err := step(ctx, tx); err != nil {
		return fmt.Errorf("replica: apply %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// step is what one event does to the replica, run in the consumer's
// transaction.
type step func(ctx context.Context, tx *sqldb.Tx) error

func nothing(context.Context, *sqldb.Tx) error { return nil }

// stepOf reads ev's payload, the catalogue's struct of its type, and
// returns what applying it does; events the replica does not need do
// nothing.
func stepOf(ev events.Event) (step, error) {
	t := catalog.Type(ev.Type)
	if org, ok := catalog.OrganizationOf(t); ok && org.IsEmployeeEvent(t) {
		return employeeStep(org, t, ev.Payload)
	}
	switch t {
	case catalog.LocationCreated:
		p, err := catalog.DecodePayload[catalog.LocationCreatedPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return upsertLocation(ctx, tx, p.LocationID, p.CustomerID, p.DealerID)
		}, err
	case catalog.LocationDealerChanged:
		p, err := catalog.DecodePayload[catalog.LocationDealerChangedPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return upsertLocation(ctx, tx, p.LocationID, p.CustomerID, p.DealerID)
		}, err
	case catalog.LocationEmployeeRolesSet:
		p, err := catalog.DecodePayload[catalog.LocationEmployeeRolesSetPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			if len(p.Roles) == 0 {
				return exec(ctx, tx, `DELETE FROM replica_location_roles WHERE location_id = ? AND employee_id = ?`, p.LocationID, p.EmployeeID)
			}
			roles, err := rolesJSON(p.Roles)
			if err != nil {
				return err
			}
			return exec(ctx, tx, `INSERT INTO replica_location_roles (location_id, employee_id, user_id, roles) VALUES (?, ?, ?, ?)
			ON CONFLICT (location_id, employee_id) DO UPDATE SET roles = excluded.roles, user_id = excluded.user_id`,
				p.LocationID, p.EmployeeID, p.UserID, roles)
		}, err
	case catalog.TeamMemberAdded:
		p, err := catalog.DecodePayload[catalog.TeamMemberPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return exec(ctx, tx, `INSERT INTO replica_team_members (team_id, employee_id, user_id) VALUES (?, ?, ?)
			ON CONFLICT (team_id, employee_id) DO UPDATE SET user_id = excluded.user_id`,
				p.TeamID, p.EmployeeID, p.UserID)
		}, err
	case catalog.TeamMemberRemoved:
		p, err := catalog.DecodePayload[catalog.TeamMemberPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return exec(ctx, tx, `DELETE FROM replica_team_members WHERE team_id = ? AND employee_id = ?`, p.TeamID, p.EmployeeID)
		}, err
	case catalog.LocationTeamRolesSet:
		p, err := catalog.DecodePayload[catalog.LocationTeamRolesSetPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			if len(p.Roles) == 0 {
				return exec(ctx, tx, `DELETE FROM replica_team_roles WHERE location_id = ? AND team_id = ?`, p.LocationID, p.TeamID)
			}
			roles, err := rolesJSON(p.Roles)
			if err != nil {
				return err
			}
			return exec(ctx, tx, `INSERT INTO replica_team_roles (location_id, team_id, roles) VALUES (?, ?, ?)
			ON CONFLICT (location_id, team_id) DO UPDATE SET roles = excluded.roles`,
				p.LocationID, p.TeamID, roles)
		}, err
	case catalog.TeamDeleted:
		p, err := catalog.DecodePayload[catalog.TeamDeletedPayload](ev.Payload)
		// The events before it removed the members and emptied the
		// team's role sets; what any of them missed (one parked, say)
		// goes with the team.
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return execAll(ctx, tx, teamDeletes, p.TeamID)
		}, err
	case catalog.LocationDeleted:
		p, err := catalog.DecodePayload[catalog.LocationDeletedPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return execAll(ctx, tx, locationDeletes, p.LocationID)
		}, err
	case catalog.DealerCreated:
		p, err := catalog.DecodePayload[catalog.DealerCreatedPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return exec(ctx, tx, `INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) VALUES (?, NULL)
			ON CONFLICT (dealer_id) DO NOTHING`, p.DealerID)
		}, err
	case catalog.DealerMonitoringProviderSet:
		p, err := catalog.DecodePayload[catalog.DealerMonitoringProviderSetPayload](ev.Payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return exec(ctx, tx, `INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) VALUES (?, ?)
			ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`,
				p.DealerID, nullable(p.MonitoringProviderID))
		}, err
	}
	return nothing, nil
}

// The statements that delete every row of a deleted team or location,
// each taking the entity's id.
var (
	teamDeletes = []string{
		`DELETE FROM replica_team_members WHERE team_id = ?`,
		`DELETE FROM replica_team_roles WHERE team_id = ?`,
	}
	locationDeletes = []string{
		`DELETE FROM replica_locations WHERE location_id = ?`,
		`DELETE FROM replica_location_roles WHERE location_id = ?`,
		`DELETE FROM replica_team_roles WHERE location_id = ?`,
	}
)

// execAll runs each of qs with the one argument arg.
func execAll(ctx context.Context, tx *sqldb.Tx, qs []string, arg string) error {
	for _, q := range qs {
		if err := exec(ctx, tx, q, arg); err != nil {
			return err
		}
	}
	return nil
}

func upsertLocation(ctx context.Context, tx *sqldb.Tx, locationID, customerID string, dealerID *string) error {
	return exec(ctx, tx, `INSERT INTO replica_locations (location_id, customer_id, dealer_id) VALUES (?, ?, ?)
			ON CONFLICT (location_id) DO UPDATE SET customer_id = excluded.customer_id, dealer_id = excluded.dealer_id`,
		locationID, customerID, nullable(dealerID))
}

// employeeStep is stepOf for the employee events of the three kinds of
// organization, which the replica treats alike.
func employeeStep(org catalog.Organization, t catalog.Type, payload []byte) (step, error) {
	kind := org.Kind
	switch t {
	case org.EmployeeCreated:
		e, err := org.DecodeEmployee(t, payload)
		// Upsert, keeping roles and schedule: creation carries neither,
		// and nothing may be lost if the row already exists.
		return func(ctx context.Context, tx *sqldb.Tx) error {
			return exec(ctx, tx, `INSERT INTO replica_employees (employee_id, org_kind, org_id, user_id, roles) VALUES (?, ?, ?, ?, '[]')
			ON CONFLICT (employee_id) DO UPDATE SET org_kind = excluded.org_kind, org_id = excluded.org_id, user_id = excluded.user_id`,
				e.EmployeeID, kind, e.OrgID, e.UserID)
		}, err
	case org.EmployeeRemoved:
		e, err := org.DecodeEmployee(t, payload)
		// Removing an employee revokes everything they held: organization
		// roles, schedule, location roles and team memberships.
		return func(ctx context.Context, tx *sqldb.Tx) error {
			for _, q := range []string{
				`DELETE FROM replica_employees WHERE employee_id = ?`,
				`DELETE FROM replica_location_roles WHERE employee_id = ?`,
				`DELETE FROM replica_team_members WHERE employee_id = ?`,
			} {
				if err := exec(ctx, tx, q, e.EmployeeID); err != nil {
					return err
				}
			}
			return nil
		}, err
	case org.EmployeeRolesSet:
		e, roleSet, err := org.DecodeEmployeeRolesSet(payload)
		return func(ctx context.Context, tx *sqldb.Tx) error {
			roles, err := rolesJSON(roleSet)
			if err != nil {
				return err
			}
			return exec(ctx, tx, `INSERT INTO replica_employees (employee_id, org_kind, org_id, user_id, roles) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (employee_id) DO UPDATE SET roles = excluded.roles, user_id = excluded.user_id`,
				e.EmployeeID, kind, e.OrgID, e.UserID, roles)
		}, err
	case org.EmployeeScheduleSet, org.EmployeeScheduleCleared:
		var e catalog.Employee
		var sch *catalog.Schedule
		var err error
		if t == org.EmployeeScheduleSet {
			e, sch, err = org.DecodeEmployeeScheduleSet(payload)
		} else {
			e, err = org.DecodeEmployee(t, payload)
		}
		return func(ctx context.Context, tx *sqldb.Tx) error {
			var sched any // NULL clears: the employee is unrestricted again
			if sch != nil {
				b, err := json.Marshal(sch)
				if err != nil {
					return err
				}
				sched = string(b)
			}
			return exec(ctx, tx, `INSERT INTO replica_employees (employee_id, org_kind, org_id, user_id, roles, schedule) VALUES (?, ?, ?, ?, '[]', ?)
			ON CONFLICT (employee_id) DO UPDATE SET schedule = excluded.schedule`,
				e.EmployeeID, kind, e.OrgID, e.UserID, sched)
		}, err
	}
	return nothing, nil
}

func exec(ctx context.Context, tx *sqldb.Tx, q string, args ...any) error {
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

func rolesJSON(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	return string(b), err
}

func nullable(p *string) any {
	if p == nil || *p == "" {
		return nil
	}
	return *p
}

// Truncate empties every replica table in one transaction.
func Truncate(ctx context.Context, db *sqldb.DB) error {
	return db.InTx(ctx, func(tx *sqldb.Tx) error { return TruncateTx(ctx, tx) })
}

// TruncateTx empties every replica table inside tx. It is the consumer's
// ResetState: the first step of a rebuild, committed together with the
// consumer forgetting which events it applied, before the streams are
// replayed from the start.
func TruncateTx(ctx context.Context, tx *sqldb.Tx) error {
	for _, t := range replicaTables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return fmt.Errorf("truncate %s: %w", t, err)
		}
	}
	return nil
}
