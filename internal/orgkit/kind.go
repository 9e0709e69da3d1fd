package orgkit

import (
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
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
	// every event type ("dealer" gives "dealer.employee_created"), the same
	// as Events.Producer.
	Producer string
	// Events is the kind's event vocabulary in the catalogue of
	// docs/events.md: the event types, their aggregate type and the
	// payloads the kit writes.
	Events catalog.Organization
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
		Producer:          catalog.Customer.Producer,
		Events:            catalog.Customer,
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
		Producer:          catalog.Dealer.Producer,
		Events:            catalog.Dealer,
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
		Producer:          catalog.MonitoringProvider.Producer,
		Events:            catalog.MonitoringProvider,
		AdministratorRole: policy.RoleMonitoringProviderEmployeeAdministrator,
		EmployeeAppRole:   auth.RoleMonitoringEmployee,
		CreatorRole:       auth.RoleAdmin,
		PublicDirectory:   true,
		PathPrefix:        "/monitoring-providers",
		PathParam:         "providerId",
		CollectionKey:     "monitoringProviders",
	}
)
