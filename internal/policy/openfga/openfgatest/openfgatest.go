// Package openfgatest runs the model of package openfga in an in-process
// OpenFGA server over the memory datastore, and maps a policytest.World to
// its tuples, for conformance tests of the model and of the delegate
// strategy.
package openfgatest

import (
	"context"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/openfga/openfga/pkg/server"
	"github.com/openfga/openfga/pkg/storage/memory"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// Store is a store holding the model in an in-process server.
type Store struct {
	Server  *server.Server
	StoreID string
	ModelID string
}

// Start starts a server over a fresh memory datastore, creates a store and
// writes the model; everything is closed when tb ends.
func Start(tb testing.TB) *Store {
	tb.Helper()
	ctx := context.Background()
	ds := memory.New()
	tb.Cleanup(ds.Close)
	srv := server.MustNewServerWithOpts(server.WithDatastore(ds))
	tb.Cleanup(srv.Close)
	st, err := srv.CreateStore(ctx, &openfgav1.CreateStoreRequest{Name: "realguardio-test"})
	if err != nil {
		tb.Fatalf("create store: %v", err)
	}
	req, err := openfga.WriteModelRequest(st.GetId())
	if err != nil {
		tb.Fatal(err)
	}
	m, err := srv.WriteAuthorizationModel(ctx, req)
	if err != nil {
		tb.Fatalf("write model: %v", err)
	}
	return &Store{Server: srv, StoreID: st.GetId(), ModelID: m.GetAuthorizationModelId()}
}

// maxTuplesPerWrite is the server's default limit on one Write.
const maxTuplesPerWrite = 100

// Write writes tuples in batches the server accepts.
func (s *Store) Write(tb testing.TB, tuples []*openfgav1.TupleKey) {
	tb.Helper()
	for len(tuples) > 0 {
		n := min(len(tuples), maxTuplesPerWrite)
		_, err := s.Server.Write(context.Background(), &openfgav1.WriteRequest{
			StoreId: s.StoreID, AuthorizationModelId: s.ModelID,
			Writes: &openfgav1.WriteRequestWrites{TupleKeys: tuples[:n]},
		})
		if err != nil {
			tb.Fatalf("write tuples: %v", err)
		}
		tuples = tuples[n:]
	}
}

// Decide asks the server as the delegate strategy would: Check the op's
// relation and, when denied, the granted relation for the reason.
func (s *Store) Decide(ctx context.Context, userID string, appRoles []string, op policy.Op, securitySystemID string, now time.Time) (policy.Decision, error) {
	check := func(req *openfgav1.CheckRequest) (bool, error) {
		req.StoreId, req.AuthorizationModelId = s.StoreID, s.ModelID
		resp, err := s.Server.Check(ctx, req)
		return resp.GetAllowed(), err
	}
	if openfga.Relation(op) == "" {
		return openfga.DecisionOf(false, false), nil
	}
	allowed, err := check(openfga.CheckRequest(userID, appRoles, op, securitySystemID, now))
	if err != nil || allowed {
		return openfga.DecisionOf(allowed, false), err
	}
	granted, err := check(openfga.GrantedCheckRequest(userID, appRoles, op, securitySystemID, now))
	return openfga.DecisionOf(false, granted), err
}

// CanCreate asks the server as the delegate strategy does whether userID,
// whose token carries appRoles, may create a security system at
// locationID (openfga.CreateCheckRequest).
func (s *Store) CanCreate(ctx context.Context, userID string, appRoles []string, locationID string) (bool, error) {
	req := openfga.CreateCheckRequest(userID, appRoles, locationID)
	req.StoreId, req.AuthorizationModelId = s.StoreID, s.ModelID
	resp, err := s.Server.Check(ctx, req)
	return resp.GetAllowed(), err
}

// Tuples maps every fact of w to its tuples, through the same functions the
// authorization-sync service uses. Admins are not written: their role
// comes from the token as a contextual tuple (openfga.CheckRequest).
func Tuples(w *policytest.World) ([]*openfgav1.TupleKey, error) {
	var out []*openfgav1.TupleKey
	for _, e := range w.Employees {
		ts, err := openfga.OrgRoleTuples(e.OrgKind, e.OrgID, e.UserID, e.Roles)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
		d, err := openfga.OnDutyTuple(e.UserID, e.Schedule)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	for _, d := range w.Dealers {
		if d.MonitoringProviderID != "" {
			out = append(out, openfga.DealerProviderTuple(d.ID, d.MonitoringProviderID))
		}
	}
	for _, l := range w.Locations {
		out = append(out, openfga.LocationTuples(l.ID, l.CustomerID, l.DealerID)...)
	}
	for _, t := range w.Teams {
		for _, m := range t.Members {
			out = append(out, openfga.TeamMemberTuple(t.ID, m))
		}
	}
	for _, r := range w.EmployeeLocationRoles {
		out = append(out, openfga.EmployeeLocationRoleTuples(r.LocationID, r.UserID, r.Roles)...)
	}
	for _, r := range w.TeamLocationRoles {
		out = append(out, openfga.TeamLocationRoleTuples(r.LocationID, r.TeamID, r.Roles)...)
	}
	for _, s := range w.SecuritySystems {
		out = append(out, openfga.SecuritySystemTuples(s.ID, s.LocationID)...)
	}
	return out, nil
}
