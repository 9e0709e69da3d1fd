package app

// AggregateType is the aggregate of every Customer Service event: the
// customer, so that all changes inside one customer are totally ordered
// (docs/events.md).
const AggregateType = "customer"

// The event types this package emits; docs/events.md is the catalogue
// consumers rely on, so names and payload fields must match it exactly.
const (
	EventLocationCreated          = "customer.location_created"
	EventLocationDealerChanged    = "customer.location_dealer_changed"
	EventLocationEmployeeRolesSet = "customer.location_employee_roles_set"
	EventTeamCreated              = "customer.team_created"
	EventTeamMemberAdded          = "customer.team_member_added"
	EventTeamMemberRemoved        = "customer.team_member_removed"
	EventLocationTeamRolesSet     = "customer.location_team_roles_set"
	// EventDealerCreated is consumed, not emitted: it feeds the dealer
	// replica that location dealer assignments are checked against.
	EventDealerCreated = "dealer.created"
)

// LocationCreated is the payload of customer.location_created.
type LocationCreated struct {
	CustomerID string  `json:"customerId"`
	LocationID string  `json:"locationId"`
	Name       string  `json:"name"`
	DealerID   *string `json:"dealerId"`
}

// LocationDealerChanged is the payload of customer.location_dealer_changed.
type LocationDealerChanged struct {
	CustomerID       string  `json:"customerId"`
	LocationID       string  `json:"locationId"`
	DealerID         *string `json:"dealerId"`
	PreviousDealerID *string `json:"previousDealerId"`
}

// LocationEmployeeRolesSet is the payload of
// customer.location_employee_roles_set; Roles is the whole new set.
type LocationEmployeeRolesSet struct {
	CustomerID string   `json:"customerId"`
	LocationID string   `json:"locationId"`
	EmployeeID string   `json:"employeeId"`
	UserID     string   `json:"userId"`
	Roles      []string `json:"roles"`
}

// TeamCreated is the payload of customer.team_created.
type TeamCreated struct {
	CustomerID string `json:"customerId"`
	TeamID     string `json:"teamId"`
	Name       string `json:"name"`
}

// TeamMemberChanged is the payload of customer.team_member_added and
// customer.team_member_removed.
type TeamMemberChanged struct {
	CustomerID string `json:"customerId"`
	TeamID     string `json:"teamId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// LocationTeamRolesSet is the payload of customer.location_team_roles_set;
// Roles is the whole new set.
type LocationTeamRolesSet struct {
	CustomerID string   `json:"customerId"`
	LocationID string   `json:"locationId"`
	TeamID     string   `json:"teamId"`
	Roles      []string `json:"roles"`
}

// DealerCreated is the payload of the Dealer Service's dealer.created, the
// only dealer event this service consumes.
type DealerCreated struct {
	DealerID string `json:"dealerId"`
	Name     string `json:"name"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
