// Package sstest holds test doubles shared by the Security System Service's
// tests and benchmarks: organization services answering the facts endpoints
// of docs/fetch-api.md from a policytest.World, the translation of a World
// and its changes into the documented events (docs/events.md), and an
// authentication stand-in that trusts a plain "sub|ROLE,ROLE" bearer value.
//
// The facts servers are doubles of the remote API, not the real services:
// they let the fetch strategy be tested against exactly the World's facts;
// the conformance through the real services is a whole-system test.
package sstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// Token returns the bearer value Authenticate accepts for a user.
func Token(userID string, roles ...string) string {
	return userID + "|" + strings.Join(roles, ",")
}

// TokenWithClaims returns a bearer value whose caller also carries claims
// (JSON-encoded and decoded again, as a validated token's would be), for
// the provide strategy.
func TokenWithClaims(userID string, claims map[string]any, roles ...string) string {
	b, err := json.Marshal(claims)
	if err != nil {
		panic("sstest: claims: " + err.Error())
	}
	return Token(userID, roles...) + "|" + base64.RawURLEncoding.EncodeToString(b)
}

// ProvideClaims returns the provide claims the IAM would put in the token
// of the World's user, made by the IAM's own encoder.
func ProvideClaims(w *policytest.World, userID string) map[string]any {
	c, err := tokenclaims.Encode(w.Subject(userID, w.AppRoles(userID)))
	if err != nil {
		panic("sstest: encode claims: " + err.Error())
	}
	return c
}

// ProvideToken is TokenWithClaims for the World's user with the World's
// application roles and ProvideClaims.
func ProvideToken(w *policytest.World, userID string) string {
	return TokenWithClaims(userID, ProvideClaims(w, userID), w.AppRoles(userID)...)
}

// Authenticate stands in for the token validator's middleware: it trusts
// "Authorization: Bearer sub|ROLE,ROLE" (optionally followed by
// "|base64url(JSON claims)") and puts that caller in the context. Only
// tests and benchmarks use it.
func Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "an access token is required"))
			return
		}
		sub, roles, _ := strings.Cut(raw, "|")
		roles, claims, hasClaims := strings.Cut(roles, "|")
		c := &auth.Caller{Subject: sub, Token: raw, Claims: map[string]any{}}
		if roles != "" {
			c.Roles = strings.Split(roles, ",")
		}
		if hasClaims {
			b, err := base64.RawURLEncoding.DecodeString(claims)
			if err == nil {
				err = json.Unmarshal(b, &c.Claims)
			}
			if err != nil {
				httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "the test token's claims are malformed"))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), c)))
	})
}

// Caller returns the caller a token of the World's user would carry.
func Caller(w *policytest.World, userID string) *auth.Caller {
	return &auth.Caller{Subject: userID, Roles: w.AppRoles(userID)}
}

// EmployeeID derives the organization service's employee id of a World
// user; the World only knows users, the events carry both.
func EmployeeID(userID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("employee/"+userID)).String()
}

// Facts are three HTTP servers, one per organization service, answering the
// facts endpoints from a World. Requests are counted per route pattern, and
// Down makes a service answer 503 (or, with Hang, never answer until the
// client gives up).
type Facts struct {
	Customer, Dealer, Monitoring *httptest.Server

	mu    sync.RWMutex
	world *policytest.World
	down  map[policy.OrgKind]bool
	hang  bool

	counts sync.Map // "kind route" -> *atomic.Int64
}

// NewFacts starts the servers for w, closed when the test ends.
func NewFacts(t testing.TB, w *policytest.World) *Facts {
	f := &Facts{world: w, down: map[policy.OrgKind]bool{}}
	f.Customer = httptest.NewServer(f.handler(policy.OrgCustomer))
	f.Dealer = httptest.NewServer(f.handler(policy.OrgDealer))
	f.Monitoring = httptest.NewServer(f.handler(policy.OrgMonitoringProvider))
	t.Cleanup(func() { f.Customer.Close(); f.Dealer.Close(); f.Monitoring.Close() })
	return f
}

// SetWorld replaces the facts served.
func (f *Facts) SetWorld(w *policytest.World) {
	f.mu.Lock()
	f.world = w
	f.mu.Unlock()
}

// Down makes the service of kind fail (503), or recover.
func (f *Facts) Down(kind policy.OrgKind, down bool) {
	f.mu.Lock()
	f.down[kind] = down
	f.mu.Unlock()
}

// Hang makes failing services hold requests until the client gives up,
// instead of answering 503, to exercise timeouts.
func (f *Facts) Hang(hang bool) {
	f.mu.Lock()
	f.hang = hang
	f.mu.Unlock()
}

// Count returns how many requests kind's service received on route (a
// pattern such as "GET /authz/subjects/{userId}"); "" counts all routes.
func (f *Facts) Count(kind policy.OrgKind, route string) int64 {
	var n int64
	f.counts.Range(func(k, v any) bool {
		kk := k.(string)
		if strings.HasPrefix(kk, string(kind)+" ") && (route == "" || kk == string(kind)+" "+route) {
			n += v.(*atomic.Int64).Load()
		}
		return true
	})
	return n
}

// Total returns the number of requests over all services.
func (f *Facts) Total() int64 {
	return f.Count(policy.OrgCustomer, "") + f.Count(policy.OrgDealer, "") + f.Count(policy.OrgMonitoringProvider, "")
}

// ResetCounts forgets every count.
func (f *Facts) ResetCounts() { f.counts.Clear() }

func (f *Facts) count(kind policy.OrgKind, route string) {
	v, _ := f.counts.LoadOrStore(string(kind)+" "+route, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (f *Facts) handler(kind policy.OrgKind) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authz/subjects/{userId}", func(w http.ResponseWriter, r *http.Request) {
		world := f.world
		uid := r.PathValue("userId")
		out := map[string]any{"userId": uid, "organization": nil, "locationRoles": map[string][]string{}, "schedule": nil}
		if e, ok := world.Employee(uid); ok && e.OrgKind == kind {
			s := world.Subject(uid, nil)
			roles := e.Roles
			if roles == nil {
				roles = []string{}
			}
			out["organization"] = map[string]any{"kind": string(kind), "id": e.OrgID, "roles": roles}
			if kind == policy.OrgCustomer && s.LocationRoles != nil {
				out["locationRoles"] = s.LocationRoles
			}
			if e.Schedule != nil {
				out["schedule"] = e.Schedule
			}
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
	f.accessRoutes(mux, kind)
	if kind == policy.OrgCustomer {
		mux.HandleFunc("GET /authz/locations/{locationId}", func(w http.ResponseWriter, r *http.Request) {
			l, ok := f.world.Location(r.PathValue("locationId"))
			if !ok {
				httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such location"))
				return
			}
			httpx.WriteJSON(w, http.StatusOK, locationJSON(l))
		})
		mux.HandleFunc("POST /authz/locations:byDealers", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				DealerIDs []string `json:"dealerIds"`
				Cursor    string   `json:"cursor"`
			}
			if err := httpx.DecodeJSON(r, &in); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			var ids []string
			for _, l := range f.world.Locations {
				if l.DealerID != "" && slices.Contains(in.DealerIDs, l.DealerID) {
					ids = append(ids, l.ID)
				}
			}
			writeIDPage(w, "locationIds", ids, in.Cursor)
		})
		mux.HandleFunc("POST /authz/locations:batch", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				LocationIDs []string `json:"locationIds"`
			}
			if err := httpx.DecodeJSON(r, &in); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			out := []any{}
			for _, id := range in.LocationIDs {
				if l, ok := f.world.Location(id); ok {
					out = append(out, locationJSON(l))
				}
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"locations": out})
		})
	}
	if kind == policy.OrgDealer {
		dealer := func(id string) (map[string]any, bool) {
			for _, d := range f.world.Dealers {
				if d.ID == id {
					return map[string]any{"dealerId": d.ID, "monitoringProviderId": nullable(d.MonitoringProviderID)}, true
				}
			}
			return nil, false
		}
		mux.HandleFunc("GET /authz/dealers/{dealerId}", func(w http.ResponseWriter, r *http.Request) {
			d, ok := dealer(r.PathValue("dealerId"))
			if !ok {
				httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such dealer"))
				return
			}
			httpx.WriteJSON(w, http.StatusOK, d)
		})
		mux.HandleFunc("POST /authz/dealers:byMonitoringProviders", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				ProviderIDs []string `json:"monitoringProviderIds"`
				Cursor      string   `json:"cursor"`
			}
			if err := httpx.DecodeJSON(r, &in); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			var ids []string
			for _, d := range f.world.Dealers {
				if d.MonitoringProviderID != "" && slices.Contains(in.ProviderIDs, d.MonitoringProviderID) {
					ids = append(ids, d.ID)
				}
			}
			writeIDPage(w, "dealerIds", ids, in.Cursor)
		})
		mux.HandleFunc("POST /authz/dealers:batch", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				DealerIDs []string `json:"dealerIds"`
			}
			if err := httpx.DecodeJSON(r, &in); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			out := []any{}
			for _, id := range in.DealerIDs {
				if d, ok := dealer(id); ok {
					out = append(out, d)
				}
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"dealers": out})
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "token required"))
			return
		}
		f.mu.RLock()
		down, hang := f.down[kind], f.hang
		f.mu.RUnlock()
		if down {
			f.count(kind, "down")
			if hang {
				select {
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
			}
			httpx.WriteError(w, r, apperr.New(apperr.Unavailable, "down for the test"))
			return
		}
		_, pattern := mux.Handler(r)
		f.count(kind, pattern)
		f.mu.RLock()
		defer f.mu.RUnlock()
		mux.ServeHTTP(w, r)
	})
}

// IDPageSize is the page size of the doubles' id lists; small, so that
// every list test pages through them.
const IDPageSize = 2

// writeIDPage answers one page of an id list (docs/fetch-api.md): ids in
// ascending order after cursor, the last one as nextCursor when more
// follow.
func writeIDPage(w http.ResponseWriter, key string, ids []string, cursor string) {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	page := []string{}
	for _, id := range ids {
		if id > cursor {
			page = append(page, id)
		}
	}
	var next any
	if len(page) > IDPageSize {
		page = page[:IDPageSize]
		next = page[IDPageSize-1]
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{key: page, "nextCursor": next})
}

func locationJSON(l policytest.Location) map[string]any {
	return map[string]any{"locationId": l.ID, "customerId": l.CustomerID, "dealerId": nullable(l.DealerID)}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// IAM is a stand-in for the IAM Service's discovery and token endpoint:
// it issues an opaque client-credentials token and counts token requests.
type IAM struct {
	*httptest.Server
	// Tokens counts the tokens issued.
	Tokens atomic.Int64
}

// NewIAM starts the stand-in, closed when the test ends.
func NewIAM(t testing.TB) *IAM {
	iam := &IAM{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"issuer": iam.URL, "token_endpoint": iam.URL + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if id, _, ok := r.BasicAuth(); !ok || id == "" || r.FormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		iam.Tokens.Add(1)
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"access_token": uuid.NewString(), "token_type": "Bearer", "expires_in": 3600, "scope": r.FormValue("scope")})
	})
	iam.Server = httptest.NewServer(mux)
	t.Cleanup(iam.Close)
	return iam
}

// Events builds documented events with increasing sequence numbers per
// aggregate and increasing occurrence times.
type Events struct {
	seq  map[string]int64
	at   time.Time
	list []events.Event
}

// NewEvents returns an empty event builder whose first event occurs at at.
func NewEvents(at time.Time) *Events { return &Events{seq: map[string]int64{}, at: at} }

// List returns the events built so far.
func (b *Events) List() []events.Event { return b.list }

// Add appends one event of typ about the organization of kind and id.
// payload is marshalled as it is: a map, for an event outside the
// catalogue or one a test shapes itself; World and Change use Typed.
func (b *Events) Add(kind policy.OrgKind, orgID, typ string, payload any) events.Event {
	o, ok := catalog.OrganizationOfKind(string(kind))
	if !ok {
		panic("sstest: unknown organization kind " + string(kind))
	}
	return b.add(o.Producer, o.AggregateType, orgID, typ, payload)
}

// Typed appends one event of the catalogue: type t, of the aggregate
// aggregateID of t's producer, with p, t's payload struct.
func (b *Events) Typed(t catalog.Type, aggregateID string, p any) events.Event {
	aggType, _ := catalog.AggregateTypeOf(t.Producer())
	return b.add(t.Producer(), aggType, aggregateID, string(t), p)
}

func (b *Events) add(producer, aggType, aggregateID, typ string, payload any) events.Event {
	b.seq[aggregateID]++
	b.at = b.at.Add(time.Millisecond)
	body, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	ev := events.Event{ID: uuid.NewString(), Type: typ, AggregateType: aggType, AggregateID: aggregateID,
		Sequence: b.seq[aggregateID], OccurredAt: b.at, Producer: producer, Payload: body}
	b.list = append(b.list, ev)
	return ev
}

// employee is the catalogue's name of userID's employment in an
// organization, and the organization's event vocabulary.
func employee(kind policy.OrgKind, orgID, userID string) (catalog.Organization, catalog.Employee) {
	o, ok := catalog.OrganizationOfKind(string(kind))
	if !ok {
		panic("sstest: unknown organization kind " + string(kind))
	}
	return o, catalog.Employee{OrgID: orgID, EmployeeID: EmployeeID(userID), UserID: userID}
}

func rolesOrEmpty(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// World appends the events that build w from nothing, in an order the
// owners could have produced them.
func (b *Events) World(w *policytest.World) {
	for _, p := range w.MonitoringProviders {
		b.Typed(catalog.MonitoringProviderCreated, p.ID, catalog.MonitoringProvider.CreatedPayload(p.ID, "p"))
	}
	for _, d := range w.Dealers {
		b.Typed(catalog.DealerCreated, d.ID, catalog.Dealer.CreatedPayload(d.ID, "d"))
		if d.MonitoringProviderID != "" {
			b.Typed(catalog.DealerMonitoringProviderSet, d.ID, catalog.DealerMonitoringProviderSetPayload{DealerID: d.ID, MonitoringProviderID: ptr(d.MonitoringProviderID)})
		}
	}
	for _, c := range w.Customers {
		b.Typed(catalog.CustomerCreated, c.ID, catalog.Customer.CreatedPayload(c.ID, "c"))
	}
	for _, l := range w.Locations {
		b.Typed(catalog.LocationCreated, l.CustomerID, catalog.LocationCreatedPayload{CustomerID: l.CustomerID, LocationID: l.ID, Name: "l", DealerID: ptr(l.DealerID)})
	}
	for _, e := range w.Employees {
		o, emp := employee(e.OrgKind, e.OrgID, e.UserID)
		b.Typed(o.EmployeeCreated, e.OrgID, o.EmployeeCreatedPayload(emp, e.UserID+"@example.com", "F", "L"))
		if len(e.Roles) > 0 {
			b.Typed(o.EmployeeRolesSet, e.OrgID, o.EmployeeRolesSetPayload(emp, e.Roles))
		}
		if e.Schedule != nil {
			b.Typed(o.EmployeeScheduleSet, e.OrgID, o.EmployeeScheduleSetPayload(emp, catalog.ScheduleOf(e.Schedule.TimeZone, e.Schedule.Shifts)))
		}
	}
	for _, t := range w.Teams {
		b.Typed(catalog.TeamCreated, t.CustomerID, catalog.TeamCreatedPayload{CustomerID: t.CustomerID, TeamID: t.ID, Name: "t"})
		for _, m := range t.Members {
			b.Typed(catalog.TeamMemberAdded, t.CustomerID, catalog.TeamMemberPayload{CustomerID: t.CustomerID, TeamID: t.ID, EmployeeID: EmployeeID(m), UserID: m})
		}
	}
	for _, r := range w.EmployeeLocationRoles {
		l, _ := w.Location(r.LocationID)
		b.Typed(catalog.LocationEmployeeRolesSet, l.CustomerID, catalog.LocationEmployeeRolesSetPayload{CustomerID: l.CustomerID, LocationID: r.LocationID, EmployeeID: EmployeeID(r.UserID), UserID: r.UserID, Roles: r.Roles})
	}
	for _, r := range w.TeamLocationRoles {
		l, _ := w.Location(r.LocationID)
		b.Typed(catalog.LocationTeamRolesSet, l.CustomerID, catalog.LocationTeamRolesSetPayload{CustomerID: l.CustomerID, LocationID: r.LocationID, TeamID: r.TeamID, Roles: r.Roles})
	}
}

// Change appends the event the owner emits for c, read against w, the World
// before the change (for previous values).
func (b *Events) Change(w *policytest.World, c policytest.Change) {
	switch c.Kind {
	case policytest.ChangeOrgRoles:
		o, emp := employee(c.OrgKind, c.OrgID, c.UserID)
		b.Typed(o.EmployeeRolesSet, c.OrgID, o.EmployeeRolesSetPayload(emp, rolesOrEmpty(c.Roles)))
	case policytest.ChangeSchedule:
		o, emp := employee(c.OrgKind, c.OrgID, c.UserID)
		if c.Schedule == nil {
			b.Typed(o.EmployeeScheduleCleared, c.OrgID, o.EmployeeScheduleClearedPayload(emp))
		} else {
			b.Typed(o.EmployeeScheduleSet, c.OrgID, o.EmployeeScheduleSetPayload(emp, catalog.ScheduleOf(c.Schedule.TimeZone, c.Schedule.Shifts)))
		}
	case policytest.ChangeEmployeeLocationRoles:
		b.Typed(catalog.LocationEmployeeRolesSet, c.CustomerID, catalog.LocationEmployeeRolesSetPayload{CustomerID: c.CustomerID, LocationID: c.LocationID, EmployeeID: EmployeeID(c.UserID), UserID: c.UserID, Roles: rolesOrEmpty(c.Roles)})
	case policytest.ChangeTeamLocationRoles:
		b.Typed(catalog.LocationTeamRolesSet, c.CustomerID, catalog.LocationTeamRolesSetPayload{CustomerID: c.CustomerID, LocationID: c.LocationID, TeamID: c.TeamID, Roles: rolesOrEmpty(c.Roles)})
	case policytest.ChangeLocationDealer:
		prev := ""
		if l, ok := w.Location(c.LocationID); ok {
			prev = l.DealerID
		}
		b.Typed(catalog.LocationDealerChanged, c.CustomerID, catalog.LocationDealerChangedPayload{CustomerID: c.CustomerID, LocationID: c.LocationID, DealerID: ptr(c.DealerID), PreviousDealerID: ptr(prev)})
	case policytest.ChangeTeamMemberAdded:
		b.Typed(catalog.TeamMemberAdded, c.CustomerID, catalog.TeamMemberPayload{CustomerID: c.CustomerID, TeamID: c.TeamID, EmployeeID: EmployeeID(c.UserID), UserID: c.UserID})
	case policytest.ChangeTeamMemberRemoved:
		b.Typed(catalog.TeamMemberRemoved, c.CustomerID, catalog.TeamMemberPayload{CustomerID: c.CustomerID, TeamID: c.TeamID, EmployeeID: EmployeeID(c.UserID), UserID: c.UserID})
	case policytest.ChangeDealerProvider:
		b.Typed(catalog.DealerMonitoringProviderSet, c.DealerID, catalog.DealerMonitoringProviderSetPayload{DealerID: c.DealerID, MonitoringProviderID: ptr(c.MonitoringProviderID)})
	default:
		panic("sstest: unknown change kind " + string(c.Kind))
	}
}

// Apply runs h for each event, each in its own transaction, as the consumer
// would.
func Apply(t testing.TB, db *sqldb.DB, h events.Handler, evs []events.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return h(ctx, tx, ev) }); err != nil {
			t.Fatalf("apply %s: %v", ev.Type, err)
		}
	}
}
