// Package provide is the provide authorization strategy (AUTHZ.md,
// docs/provide.md): the user-side facts come from the access token's
// claims, put there by the IAM Service at issue and refresh (format:
// internal/contract/tokenclaims), and the resource-side facts are kept on
// each security system record, updated from the organization services'
// events (Handle). A decision therefore needs no remote call and no query
// beyond reading the record; the price is staleness: a revoked role keeps
// working until the token expires.
package provide

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Authorizer is the provide strategy. It is safe for concurrent use.
type Authorizer struct {
	db     *sqldb.DB
	logger *slog.Logger

	absentOnce, malformedOnce sync.Once
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New returns the strategy over db (migrated with Migrations), which holds
// the location and dealer facts used when a system is created.
func New(db *sqldb.DB, logger *slog.Logger) *Authorizer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Authorizer{db: db, logger: logger}
}

// Name returns "provide".
func (a *Authorizer) Name() string { return authz.StrategyProvide }

// Subject returns the caller's subject facts from the token's claims.
//
// A user token without the claims means the IAM does not run the provide
// strategy (a configuration mismatch): the caller gets no facts, so
// everything beyond what the application roles allow is denied (no_role),
// and it is logged once. Malformed claims in a token our IAM signed are a
// bug or a version mismatch: they are treated the same way, fail closed,
// rather than 401 (a new token would be just as malformed, so the client
// would loop) or 503 (retrying cannot help).
func (a *Authorizer) Subject(caller *auth.Caller) policy.Subject {
	s := authz.Subject(caller)
	if caller == nil || caller.IsService {
		return s
	}
	f, err := tokenclaims.Decode(caller.Claims)
	switch {
	case errors.Is(err, tokenclaims.ErrAbsent):
		a.absentOnce.Do(func() {
			a.logger.Warn("an access token carries no provide claims: is the IAM configured for the provide strategy? Such callers hold no security system roles", "sub", caller.Subject)
		})
		return s
	case err != nil:
		a.malformedOnce.Do(func() {
			a.logger.Error("an access token carries malformed provide claims; the caller holds no security system roles", "sub", caller.Subject, "err", err)
		})
		return s
	}
	f.Apply(&s)
	return s
}

// Decide applies the rule to the token's facts and the record's facts.
func (a *Authorizer) Decide(_ context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	return policy.IsAllowed(a.Subject(caller), op, ss.Resource(), now), nil
}

// Filter applies the rule to every record; it reads nothing.
func (a *Authorizer) Filter(_ context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	s := a.Subject(caller)
	out := make([]authz.Permitted, 0, len(systems))
	for _, ref := range systems {
		if p, ok := authz.Permit(s, ref, ref.Resource(), now); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Scope is the rule's view scope of the token's facts. The records' dealer
// and monitoring provider are kept current by the resource facts consumer,
// so the scope's organization ids are matched against them as they are.
func (a *Authorizer) Scope(_ context.Context, caller *auth.Caller, _ time.Time) (policy.Scope, error) {
	return policy.ViewScope(a.Subject(caller)), nil
}

// AuthorizeCreate reads the location's facts from the event-fed table and
// applies authz.CanCreate to the token's facts. A location no event has
// named yet is unknown (an invalid locationId), as under replicate.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	l, ok, err := location(ctx, a.db, locationID)
	if err != nil {
		return authz.CreateCheck{}, apperr.Wrap(err, apperr.Unavailable, "the location's facts cannot be read")
	}
	if !ok {
		return authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}, nil
	}
	return authz.CreateCheck{Found: true, Location: l, Decision: authz.CanCreate(a.Subject(caller), l.CustomerID)}, nil
}
