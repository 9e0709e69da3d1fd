package policy

import "slices"

// Scope is the set of security systems a subject may view, stated as the
// grant roots the rule reads (AUTHZ.md, "Lists and access review"): a
// system is in the scope when its location is one of LocationIDs, or the
// location's customer, dealer or the dealer's monitoring provider is one of
// CustomerIDs, DealerIDs or MonitoringProviderIDs; All means every system
// (REALGUARDIO_ADMIN). It is the rule asked the other way: Covers(r) is
// exactly IsAllowed(s, OpView, r, now).Allowed, whatever the instant, since
// schedules never restrict view. Strategies turn a Scope into a query over
// the facts they hold instead of deciding system by system.
type Scope struct {
	All                   bool
	LocationIDs           []string
	CustomerIDs           []string
	DealerIDs             []string
	MonitoringProviderIDs []string
}

// ViewScope returns the scope of what s may view: every location where s
// holds a view role (ARMER, DISARMER or VIEWER) directly or through a team,
// and its organization when s holds a view role there as an organization
// role. The id lists are sorted and free of duplicates, so equal facts give
// equal scopes. It does no I/O.
func ViewScope(s Subject) Scope {
	var sc Scope
	if slices.Contains(s.AppRoles, AppRoleAdmin) {
		sc.All = true
	}
	for loc, roles := range s.LocationRoles {
		if loc != "" && holdsAny(roles, wantedView) {
			sc.LocationIDs = append(sc.LocationIDs, loc)
		}
	}
	slices.Sort(sc.LocationIDs)
	if s.Org != nil && s.Org.ID != "" && holdsAny(s.Org.Roles, wantedView) {
		switch s.Org.Kind {
		case OrgCustomer:
			sc.CustomerIDs = []string{s.Org.ID}
		case OrgDealer:
			sc.DealerIDs = []string{s.Org.ID}
		case OrgMonitoringProvider:
			sc.MonitoringProviderIDs = []string{s.Org.ID}
		}
	}
	return sc
}

// Empty reports whether the scope covers no system at all, so a list can
// answer without a query.
func (sc Scope) Empty() bool {
	return !sc.All && len(sc.LocationIDs) == 0 && len(sc.CustomerIDs) == 0 &&
		len(sc.DealerIDs) == 0 && len(sc.MonitoringProviderIDs) == 0
}

// Covers reports whether the system with the resource facts r is in the
// scope: the pure filter every strategy's list query must agree with.
func (sc Scope) Covers(r Resource) bool {
	if sc.All {
		return true
	}
	in := func(ids []string, id string) bool { return id != "" && slices.Contains(ids, id) }
	return in(sc.LocationIDs, r.LocationID) || in(sc.CustomerIDs, r.CustomerID) ||
		in(sc.DealerIDs, r.DealerID) || in(sc.MonitoringProviderIDs, r.MonitoringProviderID)
}
