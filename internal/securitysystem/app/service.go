package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Repository stores security systems and the audit. It owns its
// transactions: events and the audit entry of an allowed change are written
// in the same transaction as the change.
type Repository interface {
	// Create stores a new system together with its events.
	Create(ctx context.Context, ss SecuritySystem, evs []Event) error
	// Get returns the system, or a NotFound error.
	Get(ctx context.Context, id string) (SecuritySystem, error)
	// List returns every system, ordered by name then id.
	List(ctx context.Context) ([]SecuritySystem, error)
	// Update loads the system, lets fn change it and name the events of the
	// change, and stores the result, the events and audit in one
	// transaction. When fn returns no events the system is left untouched
	// but the audit entry is still written.
	Update(ctx context.Context, id string, audit AuditEntry, fn func(*SecuritySystem) ([]Event, error)) (SecuritySystem, error)
	// AppendAudit records a decision that changed nothing.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns audit entries, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// Service carries out the use cases of the Security System Service.
type Service struct {
	repo   Repository
	authz  authz.Authorizer
	now    func() time.Time
	logger *slog.Logger
}

// NewService returns the use cases over repo, deciding with az. now is the
// clock (time.Now when nil).
func NewService(repo Repository, az authz.Authorizer, now func() time.Time, logger *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{repo: repo, authz: az, now: now, logger: logger}
}

// Strategy returns the name of the authorization strategy in use.
func (s *Service) Strategy() string { return s.authz.Name() }

// View is a system as a caller sees it: with the actions the caller may
// take on it now.
type View struct {
	SecuritySystem
	Actions []string
}

// asUnavailable makes sure a strategy failure is reported as Unavailable:
// an error from an Authorizer always means no decision could be made, and
// that must never surface as anything but a 503.
func asUnavailable(err error) error {
	if apperr.Is(err, apperr.Unavailable) {
		return err
	}
	return apperr.Wrap(err, apperr.Unavailable, "the authorization decision cannot be made now")
}

// Create creates a disarmed system at a location. The caller must be a
// CUSTOMER_EMPLOYEE_ADMINISTRATOR of the location's customer or a
// REALGUARDIO_ADMIN; an unknown location is an invalid locationId.
func (s *Service) Create(ctx context.Context, caller *auth.Caller, locationID, name string) (SecuritySystem, error) {
	if _, err := uuid.Parse(locationID); err != nil || len(locationID) != 36 {
		return SecuritySystem{}, apperr.InvalidField("locationId", "must be a location id (UUID)")
	}
	name, err := validateName(name)
	if err != nil {
		return SecuritySystem{}, err
	}
	check, err := s.authz.AuthorizeCreate(ctx, caller, locationID)
	if err != nil {
		return SecuritySystem{}, asUnavailable(err)
	}
	if !check.Found {
		return SecuritySystem{}, apperr.InvalidField("locationId", "no location %s is known", locationID)
	}
	if !check.Decision.Allowed {
		return SecuritySystem{}, apperr.Denied(check.Decision.Reason, "only an administrator of the location's customer may create a security system there")
	}
	now := s.now().UTC()
	ss := SecuritySystem{
		ID:                   uuid.NewString(),
		Name:                 name,
		LocationID:           locationID,
		State:                StateDisarmed,
		CustomerID:           check.Location.CustomerID,
		DealerID:             check.Location.DealerID,
		MonitoringProviderID: check.Location.MonitoringProviderID,
		CreatedAt:            now,
		UpdatedAt:            now,
		Version:              1,
	}
	ev := Event{Type: EventCreated, Payload: CreatedPayload{
		SecuritySystemID: ss.ID, Name: ss.Name, LocationID: ss.LocationID,
		CustomerID: ss.CustomerID, ActorUserID: caller.Subject,
	}}
	if err := s.repo.Create(ctx, ss, []Event{ev}); err != nil {
		return SecuritySystem{}, err
	}
	return ss, nil
}

// List returns the systems the caller may view, each with the actions the
// caller may take now.
func (s *Service) List(ctx context.Context, caller *auth.Caller) ([]View, error) {
	all, err := s.repo.List(ctx)
	if err != nil {
		return nil, err
	}
	return s.filter(ctx, caller, all)
}

func (s *Service) filter(ctx context.Context, caller *auth.Caller, systems []SecuritySystem) ([]View, error) {
	refs := make([]authz.SystemRef, len(systems))
	byID := make(map[string]SecuritySystem, len(systems))
	for i, ss := range systems {
		refs[i] = ss.Ref()
		byID[ss.ID] = ss
	}
	permitted, err := s.authz.Filter(ctx, caller, refs, s.now())
	if err != nil {
		return nil, asUnavailable(err)
	}
	out := make([]View, 0, len(permitted))
	for _, p := range permitted {
		out = append(out, View{SecuritySystem: byID[p.System.ID], Actions: p.Actions})
	}
	return out, nil
}

// Get returns one system the caller may view; Forbidden when it exists
// and the caller may not view it.
func (s *Service) Get(ctx context.Context, caller *auth.Caller, id string) (View, error) {
	ss, err := s.repo.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	// Filter over one system asks for view, arm and disarm in a single
	// round of fact gathering.
	views, err := s.filter(ctx, caller, []SecuritySystem{ss})
	if err != nil {
		return View{}, err
	}
	if len(views) == 0 {
		return View{}, apperr.Denied(policy.ReasonNoRole, "you may not view this security system")
	}
	return views[0], nil
}

// Act arms or disarms a system. The decision is made before anything
// changes and is audited whatever its outcome; a denial and an unavailable
// decision change nothing. Asking for the state the system is already in is
// an authorized no-op that emits no event.
func (s *Service) Act(ctx context.Context, caller *auth.Caller, id string, action Action) (SecuritySystem, error) {
	ss, err := s.repo.Get(ctx, id)
	if err != nil {
		return SecuritySystem{}, err
	}
	now := s.now()
	entry := AuditEntry{
		ID:               newAuditID(),
		At:               now.UTC(),
		UserID:           caller.Subject,
		SecuritySystemID: id,
		Action:           action,
		Strategy:         s.authz.Name(),
	}
	dec, err := s.authz.Decide(ctx, caller, action.Op(), ss.Ref(), now)
	if err != nil {
		entry.Decision, entry.Reason = DecisionUnavailable, DecisionUnavailable
		s.audit(ctx, entry)
		return SecuritySystem{}, asUnavailable(err)
	}
	if !dec.Allowed {
		entry.Decision, entry.Reason = DecisionDenied, dec.Reason
		s.audit(ctx, entry)
		return SecuritySystem{}, apperr.Denied(dec.Reason, "you may not %s this security system%s", action.Op(), reasonSuffix(dec.Reason))
	}
	entry.Decision = DecisionAllowed
	return s.repo.Update(ctx, id, entry, func(cur *SecuritySystem) ([]Event, error) {
		target := action.Target()
		if cur.State == target {
			return nil, nil
		}
		cur.State = target
		cur.UpdatedAt = s.now().UTC()
		typ := EventArmed
		if target == StateDisarmed {
			typ = EventDisarmed
		}
		return []Event{{Type: typ, Payload: StateChangedPayload{
			SecuritySystemID: cur.ID, LocationID: cur.LocationID, ActorUserID: caller.Subject,
		}}}, nil
	})
}

func reasonSuffix(reason string) string {
	if reason == policy.ReasonOutsideSchedule {
		return " outside your schedule"
	}
	return ""
}

// audit records a decision that changed nothing. A failure to record it
// is logged but does not turn the answer into an allow or a 500: the
// caller's request was refused either way.
func (s *Service) audit(ctx context.Context, e AuditEntry) {
	if err := s.repo.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.logger.ErrorContext(ctx, "audit entry could not be written", "securitySystemId", e.SecuritySystemID, "decision", e.Decision, "err", err)
	}
}

// newAuditID returns a time-ordered UUID (v7), so ids sort like the
// entries they name.
func newAuditID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Default and largest number of audit entries returned at once.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Audit returns recorded decisions, newest first; only a REALGUARDIO_ADMIN
// may read them.
func (s *Service) Audit(ctx context.Context, caller *auth.Caller, q AuditQuery) ([]AuditEntry, error) {
	if !caller.HasRole(auth.RoleAdmin) {
		return nil, apperr.Denied(policy.ReasonNoRole, "only a %s may read the audit", auth.RoleAdmin)
	}
	if q.SecuritySystemID != "" {
		if _, err := uuid.Parse(q.SecuritySystemID); err != nil {
			return nil, apperr.InvalidField("securitySystemId", "must be a UUID")
		}
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	case q.Limit < 0 || q.Limit > MaxAuditLimit:
		return nil, apperr.InvalidField("limit", "must be between 1 and %d", MaxAuditLimit)
	}
	return s.repo.ListAudit(ctx, q)
}
