package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/cursor"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/principal"
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
	// ListPage returns one page of the systems in q's scope, in (name, id)
	// order. Its cost grows with the scope and the page, not with the
	// number of systems stored.
	ListPage(ctx context.Context, q PageQuery) (Page, error)
	// CreateMany stores new systems and their events, all or nothing, in
	// batched transactions.
	CreateMany(ctx context.Context, systems []SecuritySystem, evs [][]Event) error
	// Update loads the system, lets fn change it and name the events of the
	// change, and stores the result, the events and audit in one
	// transaction. When fn returns no events the system is left untouched
	// but the audit entry is still written.
	Update(ctx context.Context, id string, audit AuditEntry, fn func(*SecuritySystem) ([]Event, error)) (SecuritySystem, error)
	// AppendAudit records a decision that changed nothing.
	AppendAudit(ctx context.Context, e AuditEntry) error
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
func (s *Service) Create(ctx context.Context, caller *principal.Caller, locationID, name string) (SecuritySystem, error) {
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
	ev := Event{Type: string(catalog.SecuritySystemCreated), Payload: catalog.SecuritySystemCreatedPayload{
		SecuritySystemID: ss.ID, Name: ss.Name, LocationID: ss.LocationID,
		CustomerID: ss.CustomerID, ActorUserID: caller.Subject,
	}}
	if err := s.repo.Create(ctx, ss, []Event{ev}); err != nil {
		return SecuritySystem{}, err
	}
	return ss, nil
}

// MaxImport is the largest number of systems of one import (API.md, "Bulk
// import").
const MaxImport = 10000

// importParallelism bounds the creation checks of one import in flight:
// one per distinct location, so a strategy that asks remote owners is not
// flooded by a large import.
const importParallelism = 8

// ImportItem is one system of POST /securitysystems/import.
type ImportItem struct {
	LocationID string
	Name       string
}

// Import creates many disarmed systems at once, all or nothing (API.md,
// "Bulk import"): every item is validated first (an invalid one is a 422
// naming securitySystems[i] and its field), then authorized as POST
// /securitysystems once per distinct location (an unknown location is an
// invalid securitySystems[i].locationId, a denial a 403 naming the first
// item at that location), and only then are all of them stored, with the
// securitysystem.created event of each, in one transaction. It returns the
// new ids in input order.
func (s *Service) Import(ctx context.Context, caller *principal.Caller, items []ImportItem) ([]string, error) {
	switch {
	case items == nil:
		return nil, apperr.InvalidField("securitySystems", "is required")
	case len(items) == 0:
		return nil, apperr.InvalidField("securitySystems", "must hold at least one security system")
	case len(items) > MaxImport:
		return nil, apperr.InvalidField("securitySystems", "must hold at most %d security systems", MaxImport)
	}
	names := make([]string, len(items))
	first := map[string]int{} // location id -> index of its first item
	var locations []string
	for i, it := range items {
		field := fmt.Sprintf("securitySystems[%d]", i)
		if _, err := uuid.Parse(it.LocationID); err != nil || len(it.LocationID) != 36 {
			return nil, apperr.InvalidField(field+".locationId", "must be a location id (UUID)")
		}
		name, err := validateName(it.Name)
		if err != nil {
			return nil, apperr.InvalidField(field+".name", "%s", apperr.As(err).Message)
		}
		names[i] = name
		if _, ok := first[it.LocationID]; !ok {
			first[it.LocationID] = i
			locations = append(locations, it.LocationID)
		}
	}
	checks, err := s.authorizeCreates(ctx, caller, locations)
	if err != nil {
		return nil, asUnavailable(err)
	}
	byLocation := make(map[string]authz.Location, len(locations))
	for i, c := range checks {
		field := fmt.Sprintf("securitySystems[%d]", first[locations[i]])
		if !c.Found {
			return nil, apperr.InvalidField(field+".locationId", "no location %s is known", locations[i])
		}
		if !c.Decision.Allowed {
			return nil, apperr.Denied(c.Decision.Reason, "only an administrator of the location's customer may create a security system there (%s.locationId)", field)
		}
		byLocation[locations[i]] = c.Location
	}
	now := s.now().UTC()
	systems := make([]SecuritySystem, len(items))
	evs := make([][]Event, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		l := byLocation[it.LocationID]
		ss := SecuritySystem{
			ID: uuid.NewString(), Name: names[i], LocationID: it.LocationID, State: StateDisarmed,
			CustomerID: l.CustomerID, DealerID: l.DealerID, MonitoringProviderID: l.MonitoringProviderID,
			CreatedAt: now, UpdatedAt: now, Version: 1,
		}
		systems[i], ids[i] = ss, ss.ID
		evs[i] = []Event{{Type: string(catalog.SecuritySystemCreated), Payload: catalog.SecuritySystemCreatedPayload{
			SecuritySystemID: ss.ID, Name: ss.Name, LocationID: ss.LocationID,
			CustomerID: ss.CustomerID, ActorUserID: caller.Subject,
		}}}
	}
	if err := s.repo.CreateMany(ctx, systems, evs); err != nil {
		return nil, err
	}
	return ids, nil
}

// authorizeCreates decides the creations at locations: in one bulk call
// when the strategy has one (a remote authorization server answers many
// checks per round trip), else one AuthorizeCreate per location, at most
// importParallelism in flight.
func (s *Service) authorizeCreates(ctx context.Context, caller *principal.Caller, locations []string) ([]authz.CreateCheck, error) {
	if bulk, ok := s.authz.(authz.BulkCreateAuthorizer); ok {
		// A wrapper (observed) has the method whatever it wraps, and
		// says whether the strategy beneath has a bulk path.
		if w, ok := s.authz.(interface{ Bulk() bool }); !ok || w.Bulk() {
			return bulk.AuthorizeCreates(ctx, caller, locations)
		}
	}
	checks := make([]authz.CreateCheck, len(locations))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(importParallelism)
	for i, loc := range locations {
		g.Go(func() error {
			var err error
			checks[i], err = s.authz.AuthorizeCreate(gctx, caller, loc)
			return err
		})
	}
	return checks, g.Wait()
}

// Default and largest page size of GET /securitysystems (API.md, "Lists").
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// MaxSearchLength bounds the q filter: no name is longer.
const MaxSearchLength = MaxNameLength

// ListQuery is one request of GET /securitysystems: the filters, the page
// size (0 for the default) and the previous page's cursor ("" for the
// first page).
type ListQuery struct {
	LocationID string
	CustomerID string
	// State is "", "ARMED" or "DISARMED".
	State string
	// Q keeps the systems whose name contains it, ignoring case.
	Q      string
	Limit  int
	Cursor string
}

// ListResult is one page of the list and the cursor of the next one ("" on
// the last page).
type ListResult struct {
	Systems    []View
	NextCursor string
}

// List returns one page of the systems the caller may view, each with the
// actions the caller may take now. The strategy states the caller's view
// as a scope (Authorizer.Scope), the repository returns the page of the
// systems in it, and the actions are decided for that page only; a system
// of the page that the decision does not confirm (facts changed between
// the two reads) is left out, and the cursor still moves past it, so
// paging neither repeats nor skips. The cost grows with the caller's view
// and the page, never with the number of systems stored.
func (s *Service) List(ctx context.Context, caller *principal.Caller, q ListQuery) (ListResult, error) {
	pq, err := pageQuery(q)
	if err != nil {
		return ListResult{}, err
	}
	now := s.now()
	// Scope and the page's Filter share the facts they read: one request,
	// one read of the caller's facts.
	ctx = authz.WithRequestMemo(ctx)
	if pq.Scope, err = s.authz.Scope(ctx, caller, now); err != nil {
		return ListResult{}, asUnavailable(err)
	}
	page, err := s.repo.ListPage(ctx, pq)
	if err != nil {
		return ListResult{}, err
	}
	views, err := s.filter(ctx, caller, page.Systems, now)
	if err != nil {
		return ListResult{}, err
	}
	out := ListResult{Systems: views}
	if page.More && len(page.Systems) > 0 {
		last := page.Systems[len(page.Systems)-1]
		out.NextCursor = EncodeCursor(Key{Name: last.Name, ID: last.ID})
	}
	return out, nil
}

// pageQuery validates a list request and turns it into the repository's
// query, scope aside. Each error names its parameter.
func pageQuery(q ListQuery) (PageQuery, error) {
	pq := PageQuery{Limit: q.Limit, NameContains: q.Q}
	switch {
	case q.Limit == 0:
		pq.Limit = DefaultListLimit
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return PageQuery{}, apperr.InvalidField("limit", "must be between 1 and %d", MaxListLimit)
	}
	for _, f := range []struct {
		name string
		in   string
		out  *string
	}{{"locationId", q.LocationID, &pq.LocationID}, {"customerId", q.CustomerID, &pq.CustomerID}} {
		if f.in == "" {
			continue
		}
		id, err := uuid.Parse(f.in)
		if err != nil || len(f.in) != 36 {
			return PageQuery{}, apperr.InvalidField(f.name, "must be a UUID")
		}
		*f.out = id.String()
	}
	switch State(q.State) {
	case "", StateArmed, StateDisarmed:
		pq.State = State(q.State)
	default:
		return PageQuery{}, apperr.InvalidField("state", "must be ARMED or DISARMED, got %q", truncate(q.State, 32))
	}
	if len([]rune(q.Q)) > MaxSearchLength {
		return PageQuery{}, apperr.InvalidField("q", "must be at most %d characters", MaxSearchLength)
	}
	if q.Cursor != "" {
		k, err := DecodeCursor(q.Cursor)
		if err != nil {
			return PageQuery{}, err
		}
		pq.After = &k
	}
	return pq, nil
}

// cursorJSON is the content of a cursor: the (name, id) of the previous
// page's last row. Keyset, not offset: rows inserted or removed meanwhile
// never shift the pages.
type cursorJSON struct {
	Name string `json:"n"`
	ID   string `json:"i"`
}

// EncodeCursor returns the opaque cursor continuing after k.
func EncodeCursor(k Key) string { return cursor.Encode(cursorJSON(k)) }

// DecodeCursor reads a cursor made by EncodeCursor; anything else is a
// malformed cursor parameter.
func DecodeCursor(s string) (Key, error) {
	c, err := cursor.Decode(s, func(c cursorJSON) bool { return c.ID != "" })
	return Key(c), err
}

func (s *Service) filter(ctx context.Context, caller *principal.Caller, systems []SecuritySystem, now time.Time) ([]View, error) {
	out := make([]View, 0, len(systems))
	if len(systems) == 0 {
		return out, nil
	}
	refs := make([]authz.SystemRef, len(systems))
	byID := make(map[string]SecuritySystem, len(systems))
	for i, ss := range systems {
		refs[i] = ss.Ref()
		byID[ss.ID] = ss
	}
	permitted, err := s.authz.Filter(ctx, caller, refs, now)
	if err != nil {
		return nil, asUnavailable(err)
	}
	for _, p := range permitted {
		out = append(out, View{SecuritySystem: byID[p.System.ID], Actions: p.Actions})
	}
	return out, nil
}

// Get returns one system the caller may view; Forbidden when it exists
// and the caller may not view it.
func (s *Service) Get(ctx context.Context, caller *principal.Caller, id string) (View, error) {
	ss, err := s.repo.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	// Filter over one system asks for view, arm and disarm in a single
	// round of fact gathering.
	views, err := s.filter(ctx, caller, []SecuritySystem{ss}, s.now())
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
func (s *Service) Act(ctx context.Context, caller *principal.Caller, id string, action Action) (SecuritySystem, error) {
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
		typ := catalog.SecuritySystemArmed
		if target == StateDisarmed {
			typ = catalog.SecuritySystemDisarmed
		}
		return []Event{{Type: string(typ), Payload: catalog.SecuritySystemStateChangedPayload{
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
