package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestStore is the repository suite, on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	sets := []sqldb.Migrations{store.Migrations(), events.Migrations()}
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := store.New(db, events.NewOutbox(events.ProducerSecuritySystem))
		now := time.Date(2026, 3, 10, 9, 0, 0, 123456000, time.UTC)
		ss := app.SecuritySystem{ID: "6d0c5f53-6a7e-4b0e-9a43-6f3e0d1c2b11", Name: "Front", LocationID: "loc", State: app.StateDisarmed,
			CustomerID: "c", DealerID: "d", CreatedAt: now, UpdatedAt: now, Version: 1}
		if err := s.Create(ctx, ss, []app.Event{{Type: app.EventCreated, Payload: app.CreatedPayload{SecuritySystemID: ss.ID}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, ss, nil); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("duplicate create: %v", err)
		}
		got, err := s.Get(ctx, ss.ID)
		if err != nil || got != ss {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, ss)
		}
		if _, err := s.Get(ctx, "00000000-0000-0000-0000-000000000000"); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("Get unknown: %v", err)
		}
		audit := func(id string, at time.Time, decision string) app.AuditEntry {
			return app.AuditEntry{ID: id, At: at, UserID: "u", SecuritySystemID: ss.ID, Action: app.ActionArm, Decision: decision, Strategy: "fetch"}
		}
		// An update that returns an error changes nothing, not even the audit.
		if _, err := s.Update(ctx, ss.ID, audit("a0", now, app.DecisionAllowed), func(*app.SecuritySystem) ([]app.Event, error) {
			return nil, apperr.New(apperr.Conflict, "no")
		}); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("failing update: %v", err)
		}
		updated, err := s.Update(ctx, ss.ID, audit("a1", now.Add(time.Second), app.DecisionAllowed), func(cur *app.SecuritySystem) ([]app.Event, error) {
			cur.State = app.StateArmed
			cur.UpdatedAt = now.Add(time.Second)
			return []app.Event{{Type: app.EventArmed, Payload: app.StateChangedPayload{SecuritySystemID: cur.ID}}}, nil
		})
		if err != nil || updated.State != app.StateArmed || updated.Version != 2 {
			t.Fatalf("update: %+v, %v", updated, err)
		}
		// A no-op update writes the audit entry but neither row nor event.
		if _, err := s.Update(ctx, ss.ID, audit("a2", now.Add(2*time.Second), app.DecisionAllowed), func(*app.SecuritySystem) ([]app.Event, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, audit("a3", now.Add(3*time.Second), app.DecisionDenied)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get(ctx, ss.ID)
		if got.Version != 2 || got.State != app.StateArmed {
			t.Errorf("after no-op: %+v", got)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox WHERE aggregate_id = ?`, ss.ID).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d events in the outbox, want 2 (%v)", n, err)
		}
		entries, err := s.SearchAudit(ctx, app.AuditFilter{SecuritySystemID: ss.ID, Limit: 10})
		if err != nil || len(entries) != 3 || entries[0].ID != "a3" || entries[2].ID != "a1" || !entries[0].At.Equal(now.Add(3*time.Second)) {
			t.Errorf("audit = %+v, %v", entries, err)
		}
		// The store returns one entry more than the limit, so the reader
		// knows whether a page follows.
		if entries, _ := s.SearchAudit(ctx, app.AuditFilter{Limit: 1}); len(entries) != 2 {
			t.Errorf("limit 1: %d entries, want 2 (the page and the look-ahead)", len(entries))
		}
		list, err := s.ListPage(ctx, app.PageQuery{Scope: policy.Scope{All: true}, Limit: 10})
		if err != nil || len(list.Systems) != 1 || list.More {
			t.Errorf("ListPage = %+v, %v", list, err)
		}
	})
}
