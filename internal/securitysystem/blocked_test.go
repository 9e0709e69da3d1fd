package securitysystem_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestAuthorizationConsumerBlocksInsteadOfParking feeds the replica (and
// the provide strategy's resource facts) an event its handler cannot
// apply. The consumer must not park it and move on, which would keep the
// access a revocation behind it withdraws: it blocks, the event after it
// waits, and /readyz reports the blocked consumer.
func TestAuthorizationConsumerBlocksInsteadOfParking(t *testing.T) {
	for _, tc := range []struct{ strategy, check, consumer string }{
		{"replicate", "replica-consumer", securitysystem.ReplicaConsumerName},
		{"provide", "resource-facts-consumer", securitysystem.ResourceFactsConsumerName},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, js := eventstest.Connect(t, eventstest.NATS(t))
			prefix := eventstest.Streams(t, js)
			db := sqldbtest.OpenSQLite(t)
			svc, err := securitysystem.New(ctx, securitysystem.Config{Strategy: tc.strategy, EventPrefix: prefix},
				securitysystem.Deps{DB: db, JS: js, Authenticate: sstest.Authenticate})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			eventually(t, "ready", func() bool { return get(t, svc.Handler(), "/readyz") == http.StatusOK })

			customer := uuid.NewString()
			publish := func(seq int64, payload string) string {
				ev := events.Event{ID: uuid.NewString(), Type: "customer.location_created", AggregateType: "customer",
					AggregateID: customer, Sequence: seq, OccurredAt: time.Now().UTC(), Producer: events.ProducerCustomer,
					Payload: json.RawMessage(payload)}
				body, _ := json.Marshal(ev)
				msg := nats.NewMsg(events.Subject(prefix, ev.Type))
				msg.Data = body
				msg.Header.Set(nats.MsgIdHdr, ev.ID)
				if _, err := js.PublishMsg(ctx, msg); err != nil {
					t.Fatalf("publish: %v", err)
				}
				return ev.ID
			}
			publish(1, `["not", "an", "object"]`)
			after := publish(2, `{"customerId":"`+customer+`","locationId":"`+uuid.NewString()+`","dealerId":null}`)

			eventually(t, "readyz reports the blocked consumer", func() bool {
				return strings.Contains(getBody(t, svc.Handler(), "/readyz"), "blocked")
			})
			if code := get(t, svc.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz = %d, want 503", code)
			}
			body := getBody(t, svc.Handler(), "/readyz")
			var ready struct {
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal([]byte(body), &ready); err != nil || !strings.Contains(ready.Checks[tc.check], "blocked") {
				t.Errorf("/readyz body %s (%v): want check %s blocked", body, err, tc.check)
			}
			if n := countRows(t, db, `SELECT COUNT(*) FROM event_parked`); n != 0 {
				t.Errorf("%d events parked, want none", n)
			}
			var applied int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_applied WHERE consumer = ? AND event_id = ?`, tc.consumer, after).Scan(&applied); err != nil || applied != 0 {
				t.Errorf("the event behind the failing one was applied (%d, %v)", applied, err)
			}
		})
	}
}
