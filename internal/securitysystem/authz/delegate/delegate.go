// Package delegate is the delegate authorization strategy (AUTHZ.md,
// docs/delegate.md): the Security System Service holds none of the facts
// of the rule and asks OpenFGA, which the authorization sync
// (internal/authzsync) keeps up to date from the owners' events. The model
// and the encoding of facts and Check requests are internal/policy/openfga;
// the instant of the decision goes in the Check context as current_time,
// which the model's schedule condition reads.
//
// Round trips: a decision is one Check when allowed; a denied arm or
// disarm costs a second Check of the role-only relation (arm_granted,
// disarm_granted) to tell no_role from outside_schedule, so the allowed
// path, the common one, pays for no reason it does not need. A list is one
// BatchCheck of three checks per system (view, arm, disarm), split by
// OpenFGA's batch limit into calls of 50 checks made in parallel; never one
// call per system. ListObjects is not used: its answer is capped (1000
// objects by default), which would silently truncate an administrator's
// list.
package delegate

import (
	"context"
	"strings"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// CreateAuthorizer decides the creation of a system (authz.CanCreate needs
// the caller's CUSTOMER_EMPLOYEE_ADMINISTRATOR role, which the OpenFGA
// model does not hold). The fetch and replicate strategies implement it.
type CreateAuthorizer interface {
	AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error)
}

// Option configures the strategy.
type Option func(*Authorizer)

// WithCreateAuthorizer makes AuthorizeCreate ask c (for example the fetch
// strategy) instead of OpenFGA, so a customer's employee administrators
// may create systems as under every other strategy. Without it only a
// REALGUARDIO_ADMIN may create systems.
func WithCreateAuthorizer(c CreateAuthorizer) Option {
	return func(a *Authorizer) { a.create = c }
}

// Authorizer is the delegate strategy. It is safe for concurrent use.
type Authorizer struct {
	fga    *fga.Client
	create CreateAuthorizer
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New returns the strategy asking the OpenFGA server of client. The client
// bootstraps the store and model on first use, so New makes no call.
func New(client *fga.Client, opts ...Option) *Authorizer {
	a := &Authorizer{fga: client}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Name returns "delegate".
func (a *Authorizer) Name() string { return authz.StrategyDelegate }

// Ready reports whether OpenFGA answers with the store and model in place;
// the service may add it to /readyz.
func (a *Authorizer) Ready(ctx context.Context) error { return a.fga.Ready(ctx) }

// Decide asks OpenFGA whether the caller may perform op on the system at
// now, and on a denied arm or disarm asks again for the reason.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	s := authz.Subject(caller)
	if s.UserID == "" || openfga.Relation(op) == "" || ss.ID == "" {
		// A service token holds no roles, and an unknown op is no role.
		return policy.Decision{Reason: policy.ReasonNoRole}, nil
	}
	allowed, err := a.fga.Check(ctx, openfga.CheckRequest(s.UserID, s.AppRoles, op, ss.ID, now))
	if err != nil {
		return policy.Decision{}, err
	}
	if allowed || op == policy.OpView {
		// View is not scheduled: its role-only relation is itself.
		return openfga.DecisionOf(allowed, false), nil
	}
	granted, err := a.fga.Check(ctx, openfga.GrantedCheckRequest(s.UserID, s.AppRoles, op, ss.ID, now))
	if err != nil {
		return policy.Decision{}, err
	}
	return openfga.DecisionOf(false, granted), nil
}

// Filter asks view, arm and disarm for every system in one batch and
// returns, in input order, the systems the caller may view with the
// actions allowed now.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	s := authz.Subject(caller)
	out := make([]authz.Permitted, 0, len(systems))
	if s.UserID == "" || len(systems) == 0 {
		return out, nil
	}
	ops := []policy.Op{policy.OpView, policy.OpArm, policy.OpDisarm}
	reqs := make([]*openfgav1.CheckRequest, 0, len(ops)*len(systems))
	for _, ss := range systems {
		for _, op := range ops {
			reqs = append(reqs, openfga.CheckRequest(s.UserID, s.AppRoles, op, ss.ID, now))
		}
	}
	got, err := a.fga.BatchCheck(ctx, reqs)
	if err != nil {
		return nil, err
	}
	for i, ss := range systems {
		view, arm, disarm := got[3*i], got[3*i+1], got[3*i+2]
		if !view {
			continue
		}
		actions := []string{}
		if arm {
			actions = append(actions, authz.ActionArm)
		}
		if disarm {
			actions = append(actions, authz.ActionDisarm)
		}
		out = append(out, authz.Permitted{System: ss, Actions: actions})
	}
	return out, nil
}

// AuthorizeCreate decides the creation of a system at locationID. With a
// CreateAuthorizer it asks that; otherwise it reads the location's
// customer, dealer and the dealer's provider from OpenFGA's tuples (an
// unknown location is one the sync has not seen) and allows
// REALGUARDIO_ADMIN only, since the model does not know who administers a
// customer.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	if a.create != nil {
		return a.create.AuthorizeCreate(ctx, caller, locationID)
	}
	loc := openfga.Object(openfga.TypeLocation, locationID)
	customer, err := a.related(ctx, loc, "customer")
	if err != nil {
		return authz.CreateCheck{}, err
	}
	if customer == "" {
		return authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}, nil
	}
	l := authz.Location{LocationID: locationID, CustomerID: customer}
	if l.DealerID, err = a.related(ctx, loc, "dealer"); err != nil {
		return authz.CreateCheck{}, err
	}
	if l.DealerID != "" {
		if l.MonitoringProviderID, err = a.related(ctx, openfga.Object(openfga.TypeDealer, l.DealerID), "monitoring_provider"); err != nil {
			return authz.CreateCheck{}, err
		}
	}
	return authz.CreateCheck{Found: true, Location: l, Decision: authz.CanCreate(authz.Subject(caller), l.CustomerID)}, nil
}

// related returns the id of the one object related to object by relation
// ("" when none), for the single-valued relations of the model.
func (a *Authorizer) related(ctx context.Context, object, relation string) (string, error) {
	tuples, err := a.fga.Read(ctx, &openfgav1.ReadRequestTupleKey{Object: object, Relation: relation})
	if err != nil {
		return "", err
	}
	if len(tuples) == 0 {
		return "", nil
	}
	_, id, ok := strings.Cut(tuples[0].GetKey().GetUser(), ":")
	if !ok {
		return "", apperr.New(apperr.Internal, "unexpected tuple in the authorization server")
	}
	return id, nil
}
