package app

import (
	"context"
	"maps"
	"slices"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// Service implements the Customer Service's own use cases. Every change
// runs in one transaction that checks the caller, checks every referenced
// entity belongs to the customer, writes the change and appends its event,
// so a refused request changes nothing and an accepted one is always
// published.
type Service struct {
	// Store opens the units of work: this package's data, the
	// organization kit's employees and checks, and the outbox receiving
	// the events of every change, in one transaction.
	Store Transactor
}

// change runs fn in a transaction after checking that caller administers
// customerID. The check comes first so that a caller without the right
// learns nothing about the existence of the entities named in the request.
func (s *Service) change(ctx context.Context, caller *principal.Caller, customerID string, fn func(tx Tx) error) error {
	return s.Store.Update(ctx, func(tx Tx) error {
		if err := tx.RequireAdministrator(ctx, caller, customerID); err != nil {
			return err
		}
		if err := tx.LockCustomer(ctx, customerID); err != nil {
			return err
		}
		return fn(tx)
	})
}

// RequireReader checks that caller may read customerID's locations and
// teams. The rule is the organization kit's, the same as for the
// customer's employees, so every read of one customer agrees.
func (s *Service) RequireReader(ctx context.Context, caller *principal.Caller, customerID string) error {
	return s.Store.View().AuthorizeReader(ctx, caller, customerID)
}

func (s *Service) emit(ctx context.Context, tx Tx, customerID string, eventType catalog.Type, payload any) error {
	if err := tx.Append(ctx, AggregateType, customerID, string(eventType), payload); err != nil {
		return apperr.Wrap(err, apperr.Internal, "could not record the %s event", eventType)
	}
	return nil
}

// location returns locationID when it belongs to customerID, else NotFound:
// another customer's location is indistinguishable from an unknown one.
func (s *Service) location(ctx context.Context, r Reader, customerID, locationID string) (Location, error) {
	l, err := r.Location(ctx, locationID)
	if err != nil {
		return Location{}, err
	}
	if l.CustomerID != customerID {
		return Location{}, apperr.New(apperr.NotFound, "location %s not found", locationID)
	}
	return l, nil
}

// team returns teamID when it belongs to customerID, else NotFound.
func (s *Service) team(ctx context.Context, r Reader, customerID, teamID string) (Team, error) {
	t, err := r.Team(ctx, teamID)
	if err != nil {
		return Team{}, err
	}
	if t.CustomerID != customerID {
		return Team{}, apperr.New(apperr.NotFound, "team %s not found", teamID)
	}
	return t, nil
}

// employee returns employeeID when it is an active employee of customerID.
// A pending or removed employee cannot be granted anything: its grants
// would silently become live if the account were ever activated again.
func (s *Service) employee(ctx context.Context, r Reader, customerID, employeeID string) (Employee, error) {
	e, err := r.Employee(ctx, customerID, employeeID)
	if err != nil {
		return Employee{}, err
	}
	if e.CustomerID != customerID {
		return Employee{}, apperr.New(apperr.NotFound, "employee %s not found", employeeID)
	}
	if !e.Active {
		return Employee{}, apperr.New(apperr.Conflict, "employee %s is not active", employeeID)
	}
	return e, nil
}

// checkDealer validates a dealer id from a request body and checks the
// dealer is known from the Dealer Service's events. An unknown dealer is
// the client's mistake (422), not a missing resource of this customer.
func (s *Service) checkDealer(ctx context.Context, r Reader, dealerID string) (string, error) {
	id, err := ValidateID("dealerId", dealerID)
	if err != nil {
		return "", err
	}
	ok, err := r.DealerExists(ctx, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", apperr.InvalidField("dealerId", "no dealer %s is known", id)
	}
	return id, nil
}

// CreateLocation creates a location of customerID, optionally serviced by
// dealerID ("" for none).
func (s *Service) CreateLocation(ctx context.Context, caller *principal.Caller, customerID, name, dealerID string) (Location, error) {
	name, err := ValidateName("name", name)
	if err != nil {
		return Location{}, err
	}
	l := Location{ID: uuid.NewString(), CustomerID: customerID, Name: name}
	err = s.change(ctx, caller, customerID, func(tx Tx) error {
		if dealerID != "" {
			if l.DealerID, err = s.checkDealer(ctx, tx, dealerID); err != nil {
				return err
			}
		}
		if err := tx.InsertLocation(ctx, l); err != nil {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.LocationCreated, catalog.LocationCreatedPayload{
			CustomerID: customerID, LocationID: l.ID, Name: l.Name, DealerID: nullable(l.DealerID),
		})
	})
	if err != nil {
		return Location{}, err
	}
	return l, nil
}

// SetLocationDealer makes dealerID service the location ("" clears it).
// Setting the dealer the location already has changes nothing and emits
// nothing: the event reports a change.
func (s *Service) SetLocationDealer(ctx context.Context, caller *principal.Caller, customerID, locationID, dealerID string) (Location, error) {
	var l Location
	err := s.change(ctx, caller, customerID, func(tx Tx) error {
		var err error
		if l, err = s.location(ctx, tx, customerID, locationID); err != nil {
			return err
		}
		if dealerID != "" {
			if dealerID, err = s.checkDealer(ctx, tx, dealerID); err != nil {
				return err
			}
		}
		if l.DealerID == dealerID {
			return nil
		}
		previous := l.DealerID
		l.DealerID = dealerID
		if err := tx.SetLocationDealer(ctx, locationID, dealerID); err != nil {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.LocationDealerChanged, catalog.LocationDealerChangedPayload{
			CustomerID: customerID, LocationID: locationID, DealerID: nullable(dealerID), PreviousDealerID: nullable(previous),
		})
	})
	return l, err
}

// SetEmployeeLocationRoles replaces the roles employeeID holds at
// locationID; an empty set revokes them all. The event is emitted even when
// the set is unchanged: it carries the whole value, so repeating it is
// harmless, and a client that retries gets the same outcome.
func (s *Service) SetEmployeeLocationRoles(ctx context.Context, caller *principal.Caller, customerID, locationID, employeeID string, roles []string) ([]string, error) {
	roles, err := ValidateLocationRoles(roles)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, caller, customerID, func(tx Tx) error {
		if _, err := s.location(ctx, tx, customerID, locationID); err != nil {
			return err
		}
		e, err := tx.Employee(ctx, customerID, employeeID)
		if err != nil {
			return err
		}
		if e.CustomerID != customerID {
			return apperr.New(apperr.NotFound, "employee %s not found", employeeID)
		}
		// Revoking is allowed for any employee of the customer, so that
		// grants of a deactivated employee can always be cleaned up.
		if len(roles) > 0 && !e.Active {
			return apperr.New(apperr.Conflict, "employee %s is not active", employeeID)
		}
		if err := tx.SetEmployeeLocationRoles(ctx, customerID, locationID, employeeID, e.UserID, roles); err != nil {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.LocationEmployeeRolesSet, catalog.LocationEmployeeRolesSetPayload{
			CustomerID: customerID, LocationID: locationID, EmployeeID: employeeID, UserID: e.UserID, Roles: roles,
		})
	})
	if err != nil {
		return nil, err
	}
	return roles, nil
}

// CreateTeam creates a team of customerID.
func (s *Service) CreateTeam(ctx context.Context, caller *principal.Caller, customerID, name string) (Team, error) {
	name, err := ValidateName("name", name)
	if err != nil {
		return Team{}, err
	}
	t := Team{ID: uuid.NewString(), CustomerID: customerID, Name: name}
	err = s.change(ctx, caller, customerID, func(tx Tx) error {
		if err := tx.InsertTeam(ctx, t); err != nil {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.TeamCreated, catalog.TeamCreatedPayload{CustomerID: customerID, TeamID: t.ID, Name: t.Name})
	})
	if err != nil {
		return Team{}, err
	}
	return t, nil
}

// AddTeamMember makes employeeID a member of teamID. Adding a member again
// succeeds without a second event.
func (s *Service) AddTeamMember(ctx context.Context, caller *principal.Caller, customerID, teamID, employeeID string) error {
	return s.change(ctx, caller, customerID, func(tx Tx) error {
		if _, err := s.team(ctx, tx, customerID, teamID); err != nil {
			return err
		}
		e, err := s.employee(ctx, tx, customerID, employeeID)
		if err != nil {
			return err
		}
		added, err := tx.AddMember(ctx, customerID, teamID, employeeID, e.UserID)
		if err != nil || !added {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.TeamMemberAdded, catalog.TeamMemberPayload{
			CustomerID: customerID, TeamID: teamID, EmployeeID: employeeID, UserID: e.UserID,
		})
	})
}

// RemoveTeamMember removes employeeID from teamID. Removing a non-member
// succeeds without an event, so DELETE is idempotent.
func (s *Service) RemoveTeamMember(ctx context.Context, caller *principal.Caller, customerID, teamID, employeeID string) error {
	return s.change(ctx, caller, customerID, func(tx Tx) error {
		if _, err := s.team(ctx, tx, customerID, teamID); err != nil {
			return err
		}
		e, err := tx.Employee(ctx, customerID, employeeID)
		if err != nil {
			return err
		}
		if e.CustomerID != customerID {
			return apperr.New(apperr.NotFound, "employee %s not found", employeeID)
		}
		removed, err := tx.RemoveMember(ctx, teamID, employeeID)
		if err != nil || !removed {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.TeamMemberRemoved, catalog.TeamMemberPayload{
			CustomerID: customerID, TeamID: teamID, EmployeeID: employeeID, UserID: e.UserID,
		})
	})
}

// SetTeamLocationRoles replaces the roles teamID holds at locationID; an
// empty set revokes them all.
func (s *Service) SetTeamLocationRoles(ctx context.Context, caller *principal.Caller, customerID, locationID, teamID string, roles []string) ([]string, error) {
	roles, err := ValidateLocationRoles(roles)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, caller, customerID, func(tx Tx) error {
		if _, err := s.location(ctx, tx, customerID, locationID); err != nil {
			return err
		}
		if _, err := s.team(ctx, tx, customerID, teamID); err != nil {
			return err
		}
		if err := tx.SetTeamLocationRoles(ctx, customerID, locationID, teamID, roles); err != nil {
			return err
		}
		return s.emit(ctx, tx, customerID, catalog.LocationTeamRolesSet, catalog.LocationTeamRolesSetPayload{
			CustomerID: customerID, LocationID: locationID, TeamID: teamID, Roles: roles,
		})
	})
	if err != nil {
		return nil, err
	}
	return roles, nil
}

// DeleteTeam deletes teamID of customerID (its administrators only). What
// the team gave is first taken away in the events consumers already apply
// (docs/events.md): one team_member_removed per member and one
// location_team_roles_set with [] per location where it held roles; then
// customer.team_deleted. All of it is one transaction.
func (s *Service) DeleteTeam(ctx context.Context, caller *principal.Caller, customerID, teamID string) error {
	return s.change(ctx, caller, customerID, func(tx Tx) error {
		if _, err := s.team(ctx, tx, customerID, teamID); err != nil {
			return err
		}
		gone, err := tx.DeleteTeam(ctx, teamID)
		if err != nil {
			return err
		}
		for _, m := range gone.Members {
			if err := s.emit(ctx, tx, customerID, catalog.TeamMemberRemoved, catalog.TeamMemberPayload{
				CustomerID: customerID, TeamID: teamID, EmployeeID: m.EmployeeID, UserID: m.UserID,
			}); err != nil {
				return err
			}
		}
		for _, locationID := range gone.Locations {
			if err := s.emit(ctx, tx, customerID, catalog.LocationTeamRolesSet, catalog.LocationTeamRolesSetPayload{
				CustomerID: customerID, LocationID: locationID, TeamID: teamID, Roles: []string{},
			}); err != nil {
				return err
			}
		}
		return s.emit(ctx, tx, customerID, catalog.TeamDeleted, catalog.TeamDeletedPayload{CustomerID: customerID, TeamID: teamID})
	})
}

// DeleteLocation deletes locationID of customerID (its administrators
// only), which must have no security system: one that has is a Conflict
// naming why, and nothing changes. The Customer Service learns of systems
// from the Security System Service's securitysystem.created events, so a
// system created a moment ago may not be known yet. What was held at the
// location is first taken away in the events consumers already apply: one
// location_employee_roles_set and location_team_roles_set with [] per
// holder, location_dealer_changed to null when it had a dealer; then
// customer.location_deleted, in one transaction.
func (s *Service) DeleteLocation(ctx context.Context, caller *principal.Caller, customerID, locationID string) error {
	return s.change(ctx, caller, customerID, func(tx Tx) error {
		l, err := s.location(ctx, tx, customerID, locationID)
		if err != nil {
			return err
		}
		has, err := tx.LocationHasSystems(ctx, locationID)
		if err != nil {
			return err
		}
		if has {
			return apperr.New(apperr.Conflict, "the location %q still has security systems; only a location without any can be deleted", l.Name)
		}
		gone, err := tx.DeleteLocation(ctx, locationID)
		if err != nil {
			return err
		}
		for _, m := range gone.Employees {
			if err := s.emit(ctx, tx, customerID, catalog.LocationEmployeeRolesSet, catalog.LocationEmployeeRolesSetPayload{
				CustomerID: customerID, LocationID: locationID, EmployeeID: m.EmployeeID, UserID: m.UserID, Roles: []string{},
			}); err != nil {
				return err
			}
		}
		for _, teamID := range gone.Teams {
			if err := s.emit(ctx, tx, customerID, catalog.LocationTeamRolesSet, catalog.LocationTeamRolesSetPayload{
				CustomerID: customerID, LocationID: locationID, TeamID: teamID, Roles: []string{},
			}); err != nil {
				return err
			}
		}
		if l.DealerID != "" {
			if err := s.emit(ctx, tx, customerID, catalog.LocationDealerChanged, catalog.LocationDealerChangedPayload{
				CustomerID: customerID, LocationID: locationID, DealerID: nil, PreviousDealerID: nullable(l.DealerID),
			}); err != nil {
				return err
			}
		}
		return s.emit(ctx, tx, customerID, catalog.LocationDeleted, catalog.LocationDeletedPayload{CustomerID: customerID, LocationID: locationID})
	})
}

// ApplySecuritySystemCreated records that a security system exists at the
// event's location, so the location cannot be deleted. It runs in the
// consumer's transaction and is idempotent.
func (s *Service) ApplySecuritySystemCreated(ctx context.Context, tx Tx, p catalog.SecuritySystemCreatedPayload) error {
	systemID, err := ValidateID("securitySystemId", p.SecuritySystemID)
	if err != nil {
		return err
	}
	locationID, err := ValidateID("locationId", p.LocationID)
	if err != nil {
		return err
	}
	return tx.RecordSystem(ctx, systemID, locationID)
}

// ApplyDealerProviderSet records the monitoring provider a dealer works
// with (dealer.monitoring_provider_set), for the location names its
// employees may read. It runs in the consumer's transaction.
func (s *Service) ApplyDealerProviderSet(ctx context.Context, tx Tx, p catalog.DealerMonitoringProviderSetPayload) error {
	id, err := ValidateID("dealerId", p.DealerID)
	if err != nil {
		return err
	}
	provider := ""
	if p.MonitoringProviderID != nil {
		if provider, err = ValidateID("monitoringProviderId", *p.MonitoringProviderID); err != nil {
			return err
		}
	}
	return tx.SetDealerProvider(ctx, id, provider)
}

// RevokeEmployee removes every location role and team membership of an
// employee who leaves the customer, emitting one event per revocation. It
// runs in the transaction tx of the removal itself (the organization
// kit's OnEmployeeRemoved hook), so no grant of a removed employee ever
// outlives it, and it takes the customer's lock like every other change of
// the customer, so a concurrent grant to the employee either commits
// before it (and is revoked here) or runs after it (and finds the employee
// gone).
func (s *Service) RevokeEmployee(ctx context.Context, tx Tx, e Employee) error {
	if err := tx.LockCustomer(ctx, e.CustomerID); err != nil {
		return err
	}
	direct, err := tx.DirectLocationRoles(ctx, e.ID)
	if err != nil {
		return err
	}
	for _, locationID := range slices.Sorted(maps.Keys(direct)) {
		if err := tx.SetEmployeeLocationRoles(ctx, e.CustomerID, locationID, e.ID, e.UserID, nil); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, e.CustomerID, catalog.LocationEmployeeRolesSet, catalog.LocationEmployeeRolesSetPayload{
			CustomerID: e.CustomerID, LocationID: locationID, EmployeeID: e.ID, UserID: e.UserID, Roles: []string{},
		}); err != nil {
			return err
		}
	}
	teams, err := tx.TeamsOfEmployee(ctx, e.ID)
	if err != nil {
		return err
	}
	for _, t := range teams {
		if _, err := tx.RemoveMember(ctx, t.ID, e.ID); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, e.CustomerID, catalog.TeamMemberRemoved, catalog.TeamMemberPayload{
			CustomerID: e.CustomerID, TeamID: t.ID, EmployeeID: e.ID, UserID: e.UserID,
		}); err != nil {
			return err
		}
	}
	return nil
}

// ApplyDealerCreated records a dealer announced by the Dealer Service. It
// runs in the consumer's transaction, which also records the event as
// applied, and is idempotent besides.
func (s *Service) ApplyDealerCreated(ctx context.Context, tx Tx, p catalog.DealerCreatedPayload) error {
	id, err := ValidateID("dealerId", p.DealerID)
	if err != nil {
		return err
	}
	return tx.UpsertDealer(ctx, id, p.Name)
}
