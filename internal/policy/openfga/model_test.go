package openfga_test

import (
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

func TestModelCompiles(t *testing.T) {
	m, err := openfga.Model()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.GetConditions()) != 1 || m.GetSchemaVersion() != "1.1" {
		t.Fatalf("conditions %v, schema %q", m.GetConditions(), m.GetSchemaVersion())
	}
}

// TestOrgRoles: a customer's CUSTOMER_EMPLOYEE_ADMINISTRATOR is in the
// model (it decides creation), the administrators of dealers and providers
// are not, so a role set naming them writes nothing for them.
func TestOrgRoles(t *testing.T) {
	want := map[policy.OrgKind][]string{
		policy.OrgCustomer:           {policy.RoleCustomerEmployeeAdministrator, policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer},
		policy.OrgDealer:             {policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer},
		policy.OrgMonitoringProvider: {policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer},
	}
	for kind, roles := range want {
		if got := openfga.OrgRoles(kind); !slices.Equal(got, roles) {
			t.Errorf("OrgRoles(%s) = %v, want %v", kind, got, roles)
		}
		all, err := openfga.OrgRoleTuples(kind, "o", "u", policy.OrganizationRoles(kind))
		if err != nil || len(all) != len(roles) {
			t.Errorf("%s: tuples of every organization role: %v %v", kind, all, err)
		}
	}
	ts, _ := openfga.OrgRoleTuples(policy.OrgCustomer, "acme", "u", []string{policy.RoleCustomerEmployeeAdministrator})
	if len(ts) != 1 || ts[0].GetObject() != "customer:acme" || ts[0].GetRelation() != "administrator" || ts[0].GetUser() != "user:u" {
		t.Errorf("customer administrator tuple: %v", ts)
	}
	if ts, _ := openfga.OrgRoleTuples(policy.OrgDealer, "d", "u", []string{policy.RoleDealerEmployeeAdministrator}); len(ts) != 0 {
		t.Errorf("dealer administrator tuples: %v", ts)
	}
}

// TestCreateCheckRequest: the admin and the location's platform link are
// contextual only when the token carries REALGUARDIO_ADMIN.
func TestCreateCheckRequest(t *testing.T) {
	r := openfga.CreateCheckRequest("u", []string{"CUSTOMER_EMPLOYEE"}, "l")
	if k := r.GetTupleKey(); k.GetObject() != "location:l" || k.GetRelation() != openfga.RelationCanCreateSecuritySystem || k.GetUser() != "user:u" ||
		len(r.GetContextualTuples().GetTupleKeys()) != 0 {
		t.Fatalf("employee: %v", r)
	}
	r = openfga.CreateCheckRequest("u", []string{policy.AppRoleAdmin}, "l")
	if ct := r.GetContextualTuples().GetTupleKeys(); len(ct) != 2 ||
		ct[0].GetObject() != "platform:realguardio" || ct[0].GetRelation() != "admin" ||
		ct[1].GetObject() != "location:l" || ct[1].GetRelation() != "platform" || ct[1].GetUser() != "platform:realguardio" {
		t.Fatalf("admin: %v", r)
	}
}
