package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// testGrants are the identities of the access tests: two producers, one of
// which also reads the other's stream, and an admin that creates streams.
func testGrants() []events.Grant {
	return []events.Grant{
		{Identity: "customer", Producer: events.ProducerCustomer},
		{Identity: "dealer", Producer: events.ProducerDealer},
		{Identity: "securitysystem", Producer: events.ProducerSecuritySystem, Consumers: []events.ConsumerGrant{
			{Durable: "replica", Producers: []string{events.ProducerCustomer, events.ProducerDealer}},
		}},
		{Identity: "admin", Admin: true},
	}
}

// securedNATS starts an embedded server that knows only the identities of
// grants, each with a fresh password and its permissions under prefix, and
// returns a function connecting as one of them.
func securedNATS(t *testing.T, prefix string, grants []events.Grant) func(identity string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	passwords := map[string]string{}
	var users []events.EmbeddedUser
	for _, g := range grants {
		pw := events.RandomPassword()
		passwords[g.Identity] = pw
		users = append(users, events.EmbeddedUser{Name: g.Identity, Password: pw, Permissions: g.Permissions(prefix)})
	}
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return func(identity string) (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, js, err := events.Connect(ctx, srv.ClientURL(), "test-"+identity, nil,
			events.WithCredentials(events.Credentials{Identity: identity, User: identity, Password: passwords[identity]}))
		if err != nil {
			t.Fatalf("connect as %s: %v", identity, err)
		}
		t.Cleanup(nc.Close)
		return nc, js
	}
}

// TestForgedEventRefusedByServer publishes a customer event as the dealer
// identity: the server refuses it and the customer stream stays as it was.
// The dealer cannot read the customer stream through the Security System
// Service's durable, nor through one of its own, nor sniff other inboxes;
// the owner publishes and the granted consumer reads as usual.
func TestForgedEventRefusedByServer(t *testing.T) {
	prefix := "tacl"
	connect := securedNATS(t, prefix, testGrants())
	ctx := context.Background()
	_, admin := connect("admin")
	if err := events.EnsureStreams(ctx, admin, events.StreamOptions{Prefix: prefix, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	customerStream := events.StreamName(prefix, events.ProducerCustomer)
	msgs := func() uint64 {
		s, err := admin.Stream(ctx, customerStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	forged, _ := json.Marshal(events.Event{ID: "forged-1", Type: "customer.location_employee_roles_set", AggregateType: "customer",
		AggregateID: "c1", Sequence: 1000, Producer: "customer", Payload: json.RawMessage(`{"roles":["DISARMER"]}`)})

	dnc, dealer := connect("dealer")
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := dealer.Publish(pctx, events.Subject(prefix, "customer.location_employee_roles_set"), forged)
	cancel()
	if err == nil {
		t.Fatal("the dealer identity published a customer event")
	}
	// Even a plain publish without waiting for JetStream must not land.
	if err := dnc.Publish(events.Subject(prefix, "customer.location_employee_roles_set"), forged); err != nil {
		t.Fatal(err)
	}
	_ = dnc.Flush()
	// A refused API request gets no answer: a short wait is enough.
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if _, err := dealer.CreateOrUpdateConsumer(short(), customerStream, jetstream.ConsumerConfig{Durable: "replica", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Error("the dealer identity created the Security System Service's durable on the customer stream")
	}
	if _, err := dealer.CreateOrUpdateConsumer(short(), customerStream, jetstream.ConsumerConfig{Durable: "dealer-spy", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Error("the dealer identity created a durable of its own on the customer stream")
	}
	if err := dealer.DeleteStream(short(), customerStream); err == nil {
		t.Error("the dealer identity deleted the customer stream")
	}
	if sub, err := dnc.SubscribeSync("_INBOX_securitysystem.>"); err == nil {
		_ = dnc.Flush()
		if _, err := sub.NextMsg(200 * time.Millisecond); err == nil || !strings.Contains(fmt.Sprint(dnc.LastError()), "Permissions Violation") {
			t.Errorf("the dealer identity subscribed to another identity's inbox (last error %v)", dnc.LastError())
		}
	}

	_, owner := connect("customer")
	real, _ := json.Marshal(events.Event{ID: "real-1", Type: "customer.created", AggregateType: "customer", AggregateID: "c1", Sequence: 1, Producer: "customer"})
	if _, err := owner.Publish(ctx, events.Subject(prefix, "customer.created"), real); err != nil {
		t.Fatalf("the owner cannot publish its own event: %v", err)
	}
	if _, err := owner.Publish(short(), events.Subject(prefix, "dealer.created"), real); err == nil {
		t.Error("the customer identity published on the dealer stream")
	}
	if n := msgs(); n != 1 {
		t.Fatalf("customer stream holds %d messages, want only the owner's one", n)
	}

	_, ss := connect("securitysystem")
	cons, err := ss.CreateOrUpdateConsumer(ctx, customerStream, jetstream.ConsumerConfig{Durable: "replica", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("the granted consumer: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("the granted consumer cannot read: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatalf("the granted consumer cannot ack: %v", err)
	}
}

// TestJumpedSequenceBlocksNotStale publishes, on the owner's own subject, an
// event whose sequence jumps far ahead of its aggregate (a forged grant
// that got into the stream, or a broken producer): a consumer with
// OnFailure Block does not apply it, reports itself blocked at once (Err,
// gauge, counter), and the owner's next real event is never treated as
// stale: once an operator removes the message from the stream, it applies.
// A message whose envelope names another producer than the stream's owner
// is refused the same way.
func TestJumpedSequenceBlocksNotStale(t *testing.T) {
	cases := map[string]func(real events.Event) (subject string, ev events.Event){
		"jumped sequence": func(real events.Event) (string, events.Event) {
			real.ID, real.Sequence = "forged-jump", real.Sequence+1000
			return "customer.thing_happened", real
		},
		"other producer": func(real events.Event) (string, events.Event) {
			real.ID, real.Producer, real.Type, real.Sequence = "forged-producer", "dealer", "dealer.thing_happened", real.Sequence+1
			return "customer.thing_happened", real
		},
		"other subject": func(real events.Event) (string, events.Event) {
			real.ID, real.Sequence, real.Type = "forged-subject", real.Sequence+1, "customer.other_thing"
			return "customer.thing_happened", real
		},
	}
	for name, forge := range cases {
		t.Run(name, func(t *testing.T) {
			sqldbtest.ForEachStore(t, allSets, func(t *testing.T, prod *sqldb.DB) {
				cons := secondDB(t, prod)
				ctx := context.Background()
				prefix := "tjump"
				connect := securedNATS(t, prefix, testGrants())
				_, admin := connect("admin")
				if err := events.EnsureStreams(ctx, admin, events.StreamOptions{Prefix: prefix, MaxAge: time.Hour}); err != nil {
					t.Fatal(err)
				}
				_, owner := connect("customer")
				_, ssjs := connect("securitysystem")
				log := testLogger(t)
				o := events.NewOutbox("customer")
				run(t, "relay", events.NewRelay(prod, owner, o, log, fastRelay(prefix)...).Run)
				reg := prometheus.NewRegistry()
				c, err := events.NewConsumer(events.ConsumerConfig{
					Name: "replica", Streams: []string{events.StreamName(prefix, events.ProducerCustomer)}, DB: cons, JS: ssjs,
					Handler: logHandler("replica"), Logger: log, OnFailure: events.Block, MaxDeliver: 2,
					Backoff: []time.Duration{50 * time.Millisecond}, Registry: reg,
				})
				if err != nil {
					t.Fatal(err)
				}
				run(t, "consumer", c.Run)

				want := map[string]events.Event{}
				var last events.Event
				for i := range 3 {
					ev, err := write(ctx, prod, o, "agg-a", i)
					if err != nil {
						t.Fatal(err)
					}
					want[ev.ID], last = ev, ev
				}
				waitFor(t, 20*time.Second, "the owner's events applied", func() (bool, string) {
					n := countLog(t, cons)
					return n == 3, fmt.Sprintf("%d applied", n)
				})

				subject, bad := forge(last)
				data, _ := json.Marshal(bad)
				ack, err := owner.Publish(ctx, events.Subject(prefix, subject), data)
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "the consumer to report the stream blocked", func() (bool, string) {
					return c.Err() != nil, "not blocked"
				})
				if v := metricSum(t, reg, "realguardio_events_consumer_blocked"); v != 1 {
					t.Errorf("blocked gauge = %v, want 1", v)
				}
				// The owner goes on; its next real event waits behind the
				// refused one instead of being applied around it.
				next, err := write(ctx, prod, o, "agg-a", 3)
				if err != nil {
					t.Fatal(err)
				}
				want[next.ID] = next
				time.Sleep(300 * time.Millisecond)
				if n := countLog(t, cons); n != 3 {
					t.Fatalf("%d events applied while blocked, want 3", n)
				}
				if c.Err() == nil {
					t.Fatal("the consumer reported itself healthy while blocked")
				}

				// The operator removes the message it cannot attribute.
				s, err := admin.Stream(ctx, events.StreamName(prefix, events.ProducerCustomer))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.DeleteMsg(ctx, ack.Sequence); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 20*time.Second, "the owner's next event applied", func() (bool, string) {
					n := countLog(t, cons)
					return n == 4, fmt.Sprintf("%d applied", n)
				})
				checkLog(t, cons, want)
				if v := metricSum(t, reg, "realguardio_events_stale_skipped_total"); v != 0 {
					t.Errorf("%v events skipped as stale, want 0", v)
				}
				waitFor(t, 10*time.Second, "the consumer healthy again", func() (bool, string) {
					err := c.Err()
					return err == nil, fmt.Sprint(err)
				})
			})
		})
	}
}
