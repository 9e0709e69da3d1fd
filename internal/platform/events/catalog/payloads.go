package catalog

// Schedule is the schedule an employee_schedule_set event carries, in the
// JSON form of API.md: {"timezone","shifts":[{"weekdays","start","end"}]}.
// It mirrors policy.Schedule field by field (the catalogue imports nothing
// of the project); ScheduleOf and ConvertShifts convert.
type Schedule struct {
	// TimeZone is an IANA time zone name such as "Europe/Berlin".
	TimeZone string `json:"timezone"`
	// Shifts are the periods in which the employee is on duty.
	Shifts []Shift `json:"shifts"`
}

// Shift is one shift of a Schedule: weekdays ("MON") and a start and end
// wall-clock time ("08:00").
type Shift struct {
	Weekdays []string `json:"weekdays"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
}

// ShiftFields is the shape of Shift, fields and tags: any struct type of
// exactly this shape (policy.Shift) converts to and from a Shift, so a
// change to either breaks the build instead of the wire format.
type ShiftFields interface {
	~struct {
		Weekdays []string `json:"weekdays"`
		Start    string   `json:"start"`
		End      string   `json:"end"`
	}
}

// ScheduleOf returns the schedule of zone with shifts, converted shift by
// shift (nil shifts stay nil, as on the wire).
func ScheduleOf[S ShiftFields](zone string, shifts []S) *Schedule {
	return &Schedule{TimeZone: zone, Shifts: ConvertShifts[Shift](shifts)}
}

// ConvertShifts converts shifts between Shift and another type of its shape
// (nil stays nil).
func ConvertShifts[To, From ShiftFields](shifts []From) []To {
	if shifts == nil {
		return nil
	}
	out := make([]To, len(shifts))
	for i, sh := range shifts {
		out[i] = To(sh)
	}
	return out
}

// CustomerCreatedPayload is the payload of customer.created.
type CustomerCreatedPayload struct {
	CustomerID string `json:"customerId"`
	Name       string `json:"name"`
}

// CustomerEmployeeCreatedPayload is the payload of
// customer.employee_created.
type CustomerEmployeeCreatedPayload struct {
	CustomerID string `json:"customerId"`
	Email      string `json:"email"`
	EmployeeID string `json:"employeeId"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	UserID     string `json:"userId"`
}

// CustomerEmployeeRemovedPayload is the payload of
// customer.employee_removed.
type CustomerEmployeeRemovedPayload struct {
	CustomerID string `json:"customerId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// CustomerEmployeeRolesSetPayload is the payload of
// customer.employee_roles_set; Roles is the whole new set of organization
// roles.
type CustomerEmployeeRolesSetPayload struct {
	CustomerID string   `json:"customerId"`
	EmployeeID string   `json:"employeeId"`
	Roles      []string `json:"roles"`
	UserID     string   `json:"userId"`
}

// CustomerEmployeeScheduleSetPayload is the payload of
// customer.employee_schedule_set.
type CustomerEmployeeScheduleSetPayload struct {
	CustomerID string    `json:"customerId"`
	EmployeeID string    `json:"employeeId"`
	Schedule   *Schedule `json:"schedule"`
	UserID     string    `json:"userId"`
}

// CustomerEmployeeScheduleClearedPayload is the payload of
// customer.employee_schedule_cleared.
type CustomerEmployeeScheduleClearedPayload struct {
	CustomerID string `json:"customerId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// LocationCreatedPayload is the payload of customer.location_created;
// DealerID is null when the location has no dealer.
type LocationCreatedPayload struct {
	CustomerID string  `json:"customerId"`
	LocationID string  `json:"locationId"`
	Name       string  `json:"name"`
	DealerID   *string `json:"dealerId"`
}

// LocationDealerChangedPayload is the payload of
// customer.location_dealer_changed; a null DealerID clears the dealer.
type LocationDealerChangedPayload struct {
	CustomerID       string  `json:"customerId"`
	LocationID       string  `json:"locationId"`
	DealerID         *string `json:"dealerId"`
	PreviousDealerID *string `json:"previousDealerId"`
}

// LocationEmployeeRolesSetPayload is the payload of
// customer.location_employee_roles_set; Roles is the whole new set ([]
// revokes every role at the location).
type LocationEmployeeRolesSetPayload struct {
	CustomerID string   `json:"customerId"`
	LocationID string   `json:"locationId"`
	EmployeeID string   `json:"employeeId"`
	UserID     string   `json:"userId"`
	Roles      []string `json:"roles"`
}

// TeamCreatedPayload is the payload of customer.team_created.
type TeamCreatedPayload struct {
	CustomerID string `json:"customerId"`
	TeamID     string `json:"teamId"`
	Name       string `json:"name"`
}

// TeamMemberPayload is the payload of customer.team_member_added and
// customer.team_member_removed.
type TeamMemberPayload struct {
	CustomerID string `json:"customerId"`
	TeamID     string `json:"teamId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// LocationTeamRolesSetPayload is the payload of
// customer.location_team_roles_set; Roles is the whole new set.
type LocationTeamRolesSetPayload struct {
	CustomerID string   `json:"customerId"`
	LocationID string   `json:"locationId"`
	TeamID     string   `json:"teamId"`
	Roles      []string `json:"roles"`
}

// TeamDeletedPayload is the payload of customer.team_deleted. The events
// that revoke what the team gave (team_member_removed for each member,
// location_team_roles_set with [] for each location) precede it in the
// same transaction, so a consumer that ignores it derives no access from
// the team either.
type TeamDeletedPayload struct {
	CustomerID string `json:"customerId"`
	TeamID     string `json:"teamId"`
}

// LocationDeletedPayload is the payload of customer.location_deleted. A
// location is deleted only without security systems, and the events that
// revoke what was held there (location_employee_roles_set and
// location_team_roles_set with [], location_dealer_changed to null)
// precede it in the same transaction.
type LocationDeletedPayload struct {
	CustomerID string `json:"customerId"`
	LocationID string `json:"locationId"`
}

// DealerCreatedPayload is the payload of dealer.created.
type DealerCreatedPayload struct {
	DealerID string `json:"dealerId"`
	Name     string `json:"name"`
}

// DealerEmployeeCreatedPayload is the payload of dealer.employee_created.
type DealerEmployeeCreatedPayload struct {
	DealerID   string `json:"dealerId"`
	Email      string `json:"email"`
	EmployeeID string `json:"employeeId"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	UserID     string `json:"userId"`
}

// DealerEmployeeRemovedPayload is the payload of dealer.employee_removed.
type DealerEmployeeRemovedPayload struct {
	DealerID   string `json:"dealerId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// DealerEmployeeRolesSetPayload is the payload of
// dealer.employee_roles_set; Roles is the whole new set.
type DealerEmployeeRolesSetPayload struct {
	DealerID   string   `json:"dealerId"`
	EmployeeID string   `json:"employeeId"`
	Roles      []string `json:"roles"`
	UserID     string   `json:"userId"`
}

// DealerEmployeeScheduleSetPayload is the payload of
// dealer.employee_schedule_set.
type DealerEmployeeScheduleSetPayload struct {
	DealerID   string    `json:"dealerId"`
	EmployeeID string    `json:"employeeId"`
	Schedule   *Schedule `json:"schedule"`
	UserID     string    `json:"userId"`
}

// DealerEmployeeScheduleClearedPayload is the payload of
// dealer.employee_schedule_cleared.
type DealerEmployeeScheduleClearedPayload struct {
	DealerID   string `json:"dealerId"`
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
}

// DealerMonitoringProviderSetPayload is the payload of
// dealer.monitoring_provider_set; a null MonitoringProviderID clears the
// provider.
type DealerMonitoringProviderSetPayload struct {
	DealerID                     string  `json:"dealerId"`
	MonitoringProviderID         *string `json:"monitoringProviderId"`
	PreviousMonitoringProviderID *string `json:"previousMonitoringProviderId"`
}

// MonitoringProviderCreatedPayload is the payload of
// monitoring.provider_created.
type MonitoringProviderCreatedPayload struct {
	MonitoringProviderID string `json:"monitoringProviderId"`
	Name                 string `json:"name"`
}

// MonitoringEmployeeCreatedPayload is the payload of
// monitoring.employee_created.
type MonitoringEmployeeCreatedPayload struct {
	Email                string `json:"email"`
	EmployeeID           string `json:"employeeId"`
	FirstName            string `json:"firstName"`
	LastName             string `json:"lastName"`
	MonitoringProviderID string `json:"monitoringProviderId"`
	UserID               string `json:"userId"`
}

// MonitoringEmployeeRemovedPayload is the payload of
// monitoring.employee_removed.
type MonitoringEmployeeRemovedPayload struct {
	EmployeeID           string `json:"employeeId"`
	MonitoringProviderID string `json:"monitoringProviderId"`
	UserID               string `json:"userId"`
}

// MonitoringEmployeeRolesSetPayload is the payload of
// monitoring.employee_roles_set; Roles is the whole new set.
type MonitoringEmployeeRolesSetPayload struct {
	EmployeeID           string   `json:"employeeId"`
	MonitoringProviderID string   `json:"monitoringProviderId"`
	Roles                []string `json:"roles"`
	UserID               string   `json:"userId"`
}

// MonitoringEmployeeScheduleSetPayload is the payload of
// monitoring.employee_schedule_set.
type MonitoringEmployeeScheduleSetPayload struct {
	EmployeeID           string    `json:"employeeId"`
	MonitoringProviderID string    `json:"monitoringProviderId"`
	Schedule             *Schedule `json:"schedule"`
	UserID               string    `json:"userId"`
}

// MonitoringEmployeeScheduleClearedPayload is the payload of
// monitoring.employee_schedule_cleared.
type MonitoringEmployeeScheduleClearedPayload struct {
	EmployeeID           string `json:"employeeId"`
	MonitoringProviderID string `json:"monitoringProviderId"`
	UserID               string `json:"userId"`
}

// SecuritySystemCreatedPayload is the payload of securitysystem.created.
type SecuritySystemCreatedPayload struct {
	SecuritySystemID string `json:"securitySystemId"`
	Name             string `json:"name"`
	LocationID       string `json:"locationId"`
	CustomerID       string `json:"customerId"`
	ActorUserID      string `json:"actorUserId"`
}

// SecuritySystemStateChangedPayload is the payload of securitysystem.armed
// and securitysystem.disarmed.
type SecuritySystemStateChangedPayload struct {
	SecuritySystemID string `json:"securitySystemId"`
	LocationID       string `json:"locationId"`
	ActorUserID      string `json:"actorUserId"`
}
