// Package none is the no-authorization baseline: it allows every operation
// to every caller. It exists only so benchmarks can measure what the real
// strategies cost; the service accepts it only when Config.AllowNoAuthz is
// set, which no production path does.
package none

import (
	"context"
	"time"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Authorizer allows everything without looking at any fact.
type Authorizer struct{}

var _ authz.Authorizer = Authorizer{}

// New returns the allow-all authorizer.
func New() Authorizer { return Authorizer{} }

// Name returns "none".
func (Authorizer) Name() string { return authz.StrategyNone }

// Decide allows op.
func (Authorizer) Decide(context.Context, *auth.Caller, policy.Op, authz.SystemRef, time.Time) (policy.Decision, error) {
	return policy.Decision{Allowed: true}, nil
}

// Filter returns every system with both actions.
func (Authorizer) Filter(_ context.Context, _ *auth.Caller, systems []authz.SystemRef, _ time.Time) ([]authz.Permitted, error) {
	out := make([]authz.Permitted, len(systems))
	for i, s := range systems {
		out[i] = authz.Permitted{System: s, Actions: []string{authz.ActionArm, authz.ActionDisarm}}
	}
	return out, nil
}

// Scope is every system.
func (Authorizer) Scope(context.Context, *auth.Caller, time.Time) (policy.Scope, error) {
	return policy.Scope{All: true}, nil
}

// AuthorizeCreate allows creation at any location; with no source of
// location facts it records none, so the location is taken on trust.
func (Authorizer) AuthorizeCreate(_ context.Context, _ *auth.Caller, locationID string) (authz.CreateCheck, error) {
	return authz.CreateCheck{Found: true, Location: authz.Location{LocationID: locationID}, Decision: policy.Decision{Allowed: true}}, nil
}
