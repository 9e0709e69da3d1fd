// Package principal is who calls a service: the authenticated Caller a
// request carries in its context, and the vocabulary tokens speak in
// (application roles, scopes, audiences). It depends on no transport (no
// net/http, no metrics, no driver), so that use cases (the services' app
// packages) can take a Caller and check its roles without linking the
// token validator, which lives in platform/auth and fills the context.
package principal

import (
	"context"
	"slices"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
)

// Application roles, carried in the access token's "roles" claim
// (AUTHZ.md, "Principals").
const (
	RoleAdmin               = policy.AppRoleAdmin
	RoleDealerAdministrator = "REALGUARDIO_DEALER_ADMINISTRATOR"
	RoleCustomerEmployee    = "CUSTOMER_EMPLOYEE"
	RoleDealerEmployee      = "SECURITY_SYSTEM_DEALER_EMPLOYEE"
	RoleMonitoringEmployee  = "MONITORING_PROVIDER_EMPLOYEE"
)

// ScopeAuthzRead is the scope of the client-credentials tokens that may
// read the organization services' authorization facts
// (docs/fetch-api.md): the Security System Service's and the IAM's.
const ScopeAuthzRead = "authz:read"

// ScopeUsersWrite is the scope of the client-credentials tokens that may
// manage the IAM Service's users (the organization services' accounts).
const ScopeUsersWrite = "users:write"

// The audiences of the resource servers: each service accepts only access
// tokens whose "aud" lists its own, and the IAM Service issues tokens for
// them (the service clients' ids are these too).
const (
	AudienceIAM            = "realguardio-iam"
	AudienceCustomer       = "realguardio-customer"
	AudienceDealer         = "realguardio-dealer"
	AudienceMonitoring     = "realguardio-monitoring"
	AudienceSecuritySystem = "realguardio-securitysystem"
)

// ApplicationRoles is the closed set of application roles.
var ApplicationRoles = []string{RoleAdmin, RoleDealerAdministrator, RoleCustomerEmployee, RoleDealerEmployee, RoleMonitoringEmployee}

// IsApplicationRole reports whether r is one of ApplicationRoles.
func IsApplicationRole(r string) bool { return slices.Contains(ApplicationRoles, r) }

// Caller is the authenticated principal of a request, built from a
// validated access token.
type Caller struct {
	// Subject is the token's sub: a user's UUID, or for a client-credentials
	// token the client id.
	Subject string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Roles are the application roles of a user token.
	Roles []string
	// Scopes are the token's granted scopes.
	Scopes []string
	// IsService is true for client-credentials tokens, which act for a
	// service and not for a user.
	IsService bool
	// Claims holds every claim of the token, for strategies that read
	// authorization claims (provide).
	Claims map[string]any
	// Token is the raw access token, so a service can forward the caller's
	// own token to another service. Never log it.
	Token string
}

// HasRole reports whether the caller holds the application role r.
func (c *Caller) HasRole(r string) bool {
	return c != nil && !c.IsService && slices.Contains(c.Roles, r)
}

// HasScope reports whether the token was granted scope s.
func (c *Caller) HasScope(s string) bool { return c != nil && slices.Contains(c.Scopes, s) }

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of the request, if the middleware set one.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// MustCaller returns the caller or an Unauthenticated error; handlers behind
// the middleware always have one, so this guards wiring mistakes.
func MustCaller(ctx context.Context) (*Caller, error) {
	c, ok := CallerFrom(ctx)
	if !ok {
		return nil, apperr.New(apperr.Unauthenticated, "an access token is required")
	}
	return c, nil
}

// RequireRole returns the caller when it holds role r, else Forbidden.
func RequireRole(ctx context.Context, r string) (*Caller, error) {
	c, err := MustCaller(ctx)
	if err != nil {
		return nil, err
	}
	if !c.HasRole(r) {
		return nil, apperr.Denied("no_role", "the application role %s is required", r)
	}
	return c, nil
}

// RequireScope returns the caller when its token was granted scope s, else
// Forbidden with reason "insufficient_scope". Service-to-service endpoints
// use it: a client-credentials token carries scopes, not roles.
func RequireScope(ctx context.Context, s string) (*Caller, error) {
	c, err := MustCaller(ctx)
	if err != nil {
		return nil, err
	}
	if !c.HasScope(s) {
		return nil, apperr.Denied("insufficient_scope", "the scope %s is required", s)
	}
	return c, nil
}
