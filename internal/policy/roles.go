// Package policy holds RealGuardIO's authorization rule (AUTHZ.md) as pure
// functions of facts, with no I/O, and the role vocabulary every service
// validates against.
package policy

import "slices"

// Security system roles, held as organization roles or location roles.
const (
	RoleArmer    = "SECURITY_SYSTEM_ARMER"
	RoleDisarmer = "SECURITY_SYSTEM_DISARMER"
	RoleViewer   = "SECURITY_SYSTEM_VIEWER"
)

// Administrator roles, one per kind of organization.
const (
	RoleCustomerEmployeeAdministrator           = "CUSTOMER_EMPLOYEE_ADMINISTRATOR"
	RoleDealerEmployeeAdministrator             = "DEALER_EMPLOYEE_ADMINISTRATOR"
	RoleMonitoringProviderEmployeeAdministrator = "MONITORING_PROVIDER_EMPLOYEE_ADMINISTRATOR"
)

// OrgKind names a kind of organization.
type OrgKind string

// The kinds of organization.
const (
	OrgCustomer           OrgKind = "customer"
	OrgDealer             OrgKind = "dealer"
	OrgMonitoringProvider OrgKind = "monitoring_provider"
)

// SecuritySystemRoles are the roles a location role may be.
var SecuritySystemRoles = []string{RoleArmer, RoleDisarmer, RoleViewer}

// OrganizationRoles returns the closed set of organization roles of kind.
func OrganizationRoles(kind OrgKind) []string {
	switch kind {
	case OrgCustomer:
		return []string{RoleCustomerEmployeeAdministrator, RoleArmer, RoleDisarmer, RoleViewer}
	case OrgDealer:
		return []string{RoleDealerEmployeeAdministrator, RoleArmer, RoleDisarmer, RoleViewer}
	case OrgMonitoringProvider:
		return []string{RoleMonitoringProviderEmployeeAdministrator, RoleArmer, RoleDisarmer, RoleViewer}
	}
	return nil
}

// IsOrganizationRole reports whether r is an organization role of kind.
func IsOrganizationRole(kind OrgKind, r string) bool {
	return slices.Contains(OrganizationRoles(kind), r)
}

// IsLocationRole reports whether r may be held at a location.
func IsLocationRole(r string) bool { return slices.Contains(SecuritySystemRoles, r) }

// AppRoleAdmin is the application role that may view every security system
// (the same name as auth.RoleAdmin; repeated here so the rule has no
// dependency beyond the standard library and apperr).
const AppRoleAdmin = "REALGUARDIO_ADMIN"
