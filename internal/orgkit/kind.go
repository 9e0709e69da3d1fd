package orgkit

import (
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
)

// Kind describes one kind of organization: every name that differs between
// the customer, dealer and monitoring provider services. Use the predefined
// Customer, Dealer and MonitoringProvider values; a Kind is plain data so
// tests and wiring can read it.
type Kind struct {
	// Org is the policy kind, which also closes the set of organization
	// roles (policy.OrganizationRoles).
	Org policy.OrgKind
	// Producer is the service name of the event envelope and the prefix of
	// every event type ("dealer" gives "dealer.employee_created").
	Producer string
	// AggregateType is the aggregate type of every event of the kind.
	AggregateType string
	// CreatedEvent is the type of the organization-created event, whose name
	// does not follow the prefix rule for monitoring providers.
	CreatedEvent string
	// IDField is the payload key of the organization id ("dealerId").
	IDField string
	// AdministratorRole is the organization role that allows changes inside
	// an organization of this kind.
	AdministratorRole string
	// EmployeeAppRole is the application role every employee's IAM account
	// gets. A change inside an organization also requires it in the
	// caller's token (see Service.AuthorizeAdministrator): an administrator
	// acts as an employee of the kind, so a token issued without the role
	// (a user whose account was changed at the IAM, or a token of another
	// application) may not act as one even if its sub names an
	// administrator.
	EmployeeAppRole string
	// CreatorRole is the application role that alone allows creating an
	// organization of this kind (AUTHZ.md, "The other operations").
	CreatorRole string
	// PublicDirectory is true when any authenticated user may list the
	// organizations of this kind and read their ids and names: dealers and
	// monitoring providers are picked by other organizations' staff,
	// customers are private.
	PublicDirectory bool
	// PathPrefix is the collection path of the HTTP API ("/dealers").
	PathPrefix string
	// PathParam is the path parameter naming one organization ("dealerId").
	PathParam string
	// CollectionKey is the key of the list in the answer of
	// GET PathPrefix ({"dealers":[...]}).
	CollectionKey string
}

// The kinds of organization, as AUTHZ.md, API.md and docs/events.md name them.
var (
	Customer = Kind{
		Org:               policy.OrgCustomer,
		Producer:          "customer",
		AggregateType:     "customer",
		CreatedEvent:      "customer.created",
		IDField:           "customerId",
		AdministratorRole: policy.RoleCustomerEmployeeAdministrator,
		EmployeeAppRole:   auth.RoleCustomerEmployee,
		CreatorRole:       auth.RoleAdmin,
		PublicDirectory:   false,
		PathPrefix:        "/customers",
		PathParam:         "customerId",
		CollectionKey:     "customers",
	}
	Dealer = Kind{
		Org:               policy.OrgDealer,
		Producer:          "dealer",
		AggregateType:     "dealer",
		CreatedEvent:      "dealer.created",
		IDField:           "dealerId",
		AdministratorRole: policy.RoleDealerEmployeeAdministrator,
		EmployeeAppRole:   auth.RoleDealerEmployee,
		CreatorRole:       auth.RoleDealerAdministrator,
		PublicDirectory:   true,
		PathPrefix:        "/dealers",
		PathParam:         "dealerId",
		CollectionKey:     "dealers",
	}
	MonitoringProvider = Kind{
		Org:               policy.OrgMonitoringProvider,
		Producer:          "monitoring",
		AggregateType:     "monitoring_provider",
		CreatedEvent:      "monitoring.provider_created",
		IDField:           "monitoringProviderId",
		AdministratorRole: policy.RoleMonitoringProviderEmployeeAdministrator,
		EmployeeAppRole:   auth.RoleMonitoringEmployee,
		CreatorRole:       auth.RoleAdmin,
		PublicDirectory:   true,
		PathPrefix:        "/monitoring-providers",
		PathParam:         "providerId",
		CollectionKey:     "monitoringProviders",
	}
)

// The suffixes of the employee event types; EventType prefixes them.
const (
	EventEmployeeCreated         = "employee_created"
	EventEmployeeRemoved         = "employee_removed"
	EventEmployeeRolesSet        = "employee_roles_set"
	EventEmployeeScheduleSet     = "employee_schedule_set"
	EventEmployeeScheduleCleared = "employee_schedule_cleared"
)

// EventType returns the full event type of suffix for the kind, for example
// "dealer.employee_roles_set".
func (k Kind) EventType(suffix string) string { return k.Producer + "." + suffix }
