package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// MaxImport bounds the items of one bulk import (API.md, "Bulk import"):
// enough to onboard a large customer in a few requests, small enough that
// one request is one transaction of a few seconds at most.
const MaxImport = 10000

// NewLocation is one item of a location import; DealerID is "" for none.
type NewLocation struct {
	Name     string
	DealerID string
}

// GrantInput is one item of a location-role import, as the client sent it.
type GrantInput struct {
	LocationID string
	EmployeeID string
	Roles      []string
}

// at prefixes the field of a validation error with the item's place in the
// request ("locations[17].name"), so the client knows which item to fix.
func at(err error, prefix string) error {
	ae := apperr.As(err)
	if ae == nil || ae.Field == "" {
		return err
	}
	return &apperr.Error{Code: ae.Code, Field: prefix + ae.Field, Message: prefix + ae.Message, Cause: ae.Cause}
}

func (s *Service) emitAll(ctx context.Context, tx Tx, customerID string, evs []PendingEvent) error {
	if err := tx.AppendAll(ctx, AggregateType, customerID, evs); err != nil {
		return apperr.Wrap(err, apperr.Internal, "could not record the events of the import")
	}
	return nil
}

func checkCount(field string, n int) error {
	if n > MaxImport {
		return apperr.InvalidField(field, "must hold at most %d items, got %d", MaxImport, n)
	}
	return nil
}

// ImportLocations creates the locations of customerID in one transaction,
// all or nothing, and returns their ids in input order. It is
// CreateLocation for many items: the same checks (the caller administers
// the customer; a dealer must be known) and the same
// customer.location_created event per location, written with multi-row
// inserts so a 10 000-location onboarding is one request.
func (s *Service) ImportLocations(ctx context.Context, caller *principal.Caller, customerID string, items []NewLocation) ([]string, error) {
	if items == nil {
		return nil, apperr.InvalidField("locations", "is required")
	}
	if err := checkCount("locations", len(items)); err != nil {
		return nil, err
	}
	locs := make([]Location, len(items))
	var dealers []string
	seenDealer := map[string]bool{}
	for i, it := range items {
		prefix := fmt.Sprintf("locations[%d].", i)
		name, err := ValidateName("name", it.Name)
		if err != nil {
			return nil, at(err, prefix)
		}
		locs[i] = Location{ID: uuid.NewString(), CustomerID: customerID, Name: name}
		if it.DealerID != "" {
			id, err := ValidateID("dealerId", it.DealerID)
			if err != nil {
				return nil, at(err, prefix)
			}
			locs[i].DealerID = id
			if !seenDealer[id] {
				seenDealer[id] = true
				dealers = append(dealers, id)
			}
		}
	}
	err := s.change(ctx, caller, customerID, func(tx Tx) error {
		known, err := tx.DealersKnown(ctx, dealers)
		if err != nil {
			return err
		}
		for i, l := range locs {
			if l.DealerID != "" && !known[l.DealerID] {
				return apperr.InvalidField(fmt.Sprintf("locations[%d].dealerId", i), "no dealer %s is known", l.DealerID)
			}
		}
		if err := tx.InsertLocations(ctx, locs); err != nil {
			return err
		}
		evs := make([]PendingEvent, len(locs))
		for i, l := range locs {
			evs[i] = PendingEvent{Type: string(catalog.LocationCreated), Payload: catalog.LocationCreatedPayload{
				CustomerID: customerID, LocationID: l.ID, Name: l.Name, DealerID: nullable(l.DealerID),
			}}
		}
		return s.emitAll(ctx, tx, customerID, evs)
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(locs))
	for i, l := range locs {
		ids[i] = l.ID
	}
	return ids, nil
}

// ImportEmployeeLocationRoles replaces, for every item, the roles the
// employee holds at the location ([] revokes), in one transaction, all or
// nothing. It is SetEmployeeLocationRoles for many items: the caller
// administers the customer, each location is the customer's, each
// employee an active employee of it, and each item writes the same
// customer.location_employee_roles_set event, in input order. A pair named
// twice is refused: which of its two sets was meant is the client's to say.
func (s *Service) ImportEmployeeLocationRoles(ctx context.Context, caller *principal.Caller, customerID string, items []GrantInput) (int, error) {
	if items == nil {
		return 0, apperr.InvalidField("grants", "is required")
	}
	if err := checkCount("grants", len(items)); err != nil {
		return 0, err
	}
	grants := make([]Grant, len(items))
	type pair struct{ loc, emp string }
	firstOf := map[pair]int{}
	var locIDs, empIDs []string
	seenLoc, seenEmp := map[string]bool{}, map[string]bool{}
	for i, it := range items {
		prefix := fmt.Sprintf("grants[%d].", i)
		loc, err := ValidateID("locationId", it.LocationID)
		if err != nil {
			return 0, at(err, prefix)
		}
		emp, err := ValidateID("employeeId", it.EmployeeID)
		if err != nil {
			return 0, at(err, prefix)
		}
		roles, err := ValidateLocationRoles(it.Roles)
		if err != nil {
			return 0, at(err, prefix)
		}
		p := pair{loc, emp}
		if j, dup := firstOf[p]; dup {
			return 0, apperr.InvalidField(fmt.Sprintf("grants[%d]", i), "names the location and employee of grants[%d] again", j)
		}
		firstOf[p] = i
		grants[i] = Grant{LocationID: loc, EmployeeID: emp, Roles: roles}
		if !seenLoc[loc] {
			seenLoc[loc] = true
			locIDs = append(locIDs, loc)
		}
		if !seenEmp[emp] {
			seenEmp[emp] = true
			empIDs = append(empIDs, emp)
		}
	}
	err := s.change(ctx, caller, customerID, func(tx Tx) error {
		locs, err := tx.LocationsOf(ctx, customerID, locIDs)
		if err != nil {
			return err
		}
		emps, err := tx.ActiveEmployees(ctx, customerID, empIDs)
		if err != nil {
			return err
		}
		for i := range grants {
			g := &grants[i]
			if !locs[g.LocationID] {
				return apperr.InvalidField(fmt.Sprintf("grants[%d].locationId", i), "no location %s of this customer is known", g.LocationID)
			}
			e, ok := emps[g.EmployeeID]
			if !ok {
				return apperr.InvalidField(fmt.Sprintf("grants[%d].employeeId", i), "no active employee %s of this customer is known", g.EmployeeID)
			}
			g.UserID = e.UserID
		}
		if err := tx.ReplaceEmployeeLocationRoles(ctx, customerID, grants); err != nil {
			return err
		}
		evs := make([]PendingEvent, len(grants))
		for i, g := range grants {
			evs[i] = PendingEvent{Type: string(catalog.LocationEmployeeRolesSet), Payload: catalog.LocationEmployeeRolesSetPayload{
				CustomerID: customerID, LocationID: g.LocationID, EmployeeID: g.EmployeeID, UserID: g.UserID, Roles: g.Roles,
			}}
		}
		return s.emitAll(ctx, tx, customerID, evs)
	})
	if err != nil {
		return 0, err
	}
	return len(grants), nil
}
