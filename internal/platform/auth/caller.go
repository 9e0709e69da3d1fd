package auth

import (
	"context"

	"github.com/realguardio/realguardio/internal/platform/principal"
)

// The caller and the application roles live in platform/principal, which
// use cases import without linking this package's transport (net/http,
// metrics). These names remain so that the handlers and strategies that
// already say auth.Caller keep compiling while they move over; new code
// imports principal.

// Caller is principal.Caller: the authenticated principal of a request.
type Caller = principal.Caller

// The application roles, as principal defines them.
const (
	RoleAdmin               = principal.RoleAdmin
	RoleDealerAdministrator = principal.RoleDealerAdministrator
	RoleCustomerEmployee    = principal.RoleCustomerEmployee
	RoleDealerEmployee      = principal.RoleDealerEmployee
	RoleMonitoringEmployee  = principal.RoleMonitoringEmployee
)

// ApplicationRoles is principal.ApplicationRoles, the closed set of
// application roles.
var ApplicationRoles = principal.ApplicationRoles

// IsApplicationRole reports whether r is one of ApplicationRoles.
func IsApplicationRole(r string) bool { return principal.IsApplicationRole(r) }

// WithCaller returns ctx carrying c (principal.WithCaller).
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return principal.WithCaller(ctx, c)
}

// CallerFrom returns the caller of the request, if the middleware set one
// (principal.CallerFrom).
func CallerFrom(ctx context.Context) (*Caller, bool) { return principal.CallerFrom(ctx) }

// MustCaller returns the caller or an Unauthenticated error
// (principal.MustCaller).
func MustCaller(ctx context.Context) (*Caller, error) { return principal.MustCaller(ctx) }

// RequireRole returns the caller when it holds role r, else Forbidden
// (principal.RequireRole).
func RequireRole(ctx context.Context, r string) (*Caller, error) {
	return principal.RequireRole(ctx, r)
}

// RequireScope returns the caller when its token was granted scope s, else
// Forbidden with reason "insufficient_scope" (principal.RequireScope).
func RequireScope(ctx context.Context, s string) (*Caller, error) {
	return principal.RequireScope(ctx, s)
}
