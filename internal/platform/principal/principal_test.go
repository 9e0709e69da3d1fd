package principal_test

import (
	"context"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// TestRequireRoleAndScope: a user caller passes the role checks of the
// roles it holds; a service caller holds no application role whatever its
// token lists, only scopes; a request without a caller is unauthenticated.
func TestRequireRoleAndScope(t *testing.T) {
	user := principal.WithCaller(context.Background(), &principal.Caller{Subject: "u", Roles: []string{principal.RoleAdmin}})
	service := principal.WithCaller(context.Background(), &principal.Caller{
		Subject: "c", IsService: true, Roles: []string{principal.RoleAdmin}, Scopes: []string{principal.ScopeAuthzRead},
	})
	if _, err := principal.RequireRole(user, principal.RoleAdmin); err != nil {
		t.Errorf("user with the role: %v", err)
	}
	if _, err := principal.RequireRole(user, principal.RoleCustomerEmployee); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("user without the role: %v, want forbidden", err)
	}
	if _, err := principal.RequireRole(service, principal.RoleAdmin); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("service caller: %v, want forbidden", err)
	}
	if _, err := principal.RequireScope(service, principal.ScopeAuthzRead); err != nil {
		t.Errorf("service caller with the scope: %v", err)
	}
	if _, err := principal.RequireScope(user, principal.ScopeAuthzRead); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("user without the scope: %v, want forbidden", err)
	}
	if _, err := principal.MustCaller(context.Background()); !apperr.Is(err, apperr.Unauthenticated) {
		t.Errorf("no caller: %v, want unauthenticated", err)
	}
	for _, r := range principal.ApplicationRoles {
		if !principal.IsApplicationRole(r) {
			t.Errorf("%s is not an application role", r)
		}
	}
	if principal.IsApplicationRole("CUSTOMER_EMPLOYEE_ADMINISTRATOR") {
		t.Error("an organization role is not an application role")
	}
}
