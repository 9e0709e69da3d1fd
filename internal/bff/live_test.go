package bff

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/realguardio/realguardio/internal/platform/events"
)

// liveNATS starts an embedded NATS server with the BFF's identity (the
// permissions of a listener on the Security System Service's stream) and
// a publisher standing in for that service's relay.
func liveNATS(t *testing.T) (srv *events.EmbeddedNATS, bffPassword string, pub *nats.Conn) {
	t.Helper()
	bffPassword, pubPassword := events.RandomPassword(), events.RandomPassword()
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: []events.EmbeddedUser{
		{Name: "bff", Password: bffPassword, Permissions: events.Grant{Identity: "bff", Listen: []string{events.ProducerSecuritySystem}}.Permissions("")},
		{Name: "securitysystem", Password: pubPassword, Permissions: events.Grant{Identity: "securitysystem", Producer: events.ProducerSecuritySystem}.Permissions("")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	pub, err = nats.Connect(srv.ClientURL(), nats.UserInfo("securitysystem", pubPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	return srv, bffPassword, pub
}

// publishEvent publishes an event envelope as the Security System
// Service's relay does (docs/events.md).
func publishEvent(t *testing.T, nc *nats.Conn, producer, typ, systemID string) {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"id": randomToken(8), "type": typ, "producer": producer, "aggregateType": "security_system",
		"aggregateId": systemID, "sequence": 1, "payload": map[string]any{"securitySystemId": systemID, "locationId": fakeLoc1, "actorUserId": "someone-else"}})
	if err := nc.Publish("realguardio."+typ, data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct{ name, data string }

// openStream opens GET path as the client and returns its events.
func openStream(t *testing.T, c *http.Client, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": live"):
				out <- sseEvent{name: "open"}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event from the stream")
	}
	return sseEvent{}
}

// TestLiveStream follows the live state from an event on NATS to the
// browser's stream: the user hears of a system they may view, with its
// current state and their actions; never of one they may not view; and
// the stream ends when the session does.
func TestLiveStream(t *testing.T) {
	srv, pw, pub := liveNATS(t)
	bnc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("bff", pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bnc.Close)
	world := newFakeWorld("user-1")
	b := startBFF(t, "", "", world.start(t), []string{newKey(t)}, func(_ *Config, d *Deps) { d.Events = bnc })
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	c := b.client(t, b.mintSession(t, sess))
	if resp, body := b.do(t, c, "GET", "/readyz", "", nil); resp.StatusCode != 200 || !strings.Contains(body, `"nats"`) {
		t.Errorf("readyz = %d %s, want the NATS connection reported", resp.StatusCode, body)
	}
	stream := openStream(t, c, b.srv.URL+"/events/securitysystems")
	if ev := next(t, stream); ev.name != "open" {
		t.Fatalf("first %+v", ev)
	}

	// Another user disarms the main entrance.
	world.mu.Lock()
	world.systems[0].State = "DISARMED"
	world.mu.Unlock()
	publishEvent(t, pub, "securitysystem", "securitysystem.disarmed", world.systems[0].ID)
	ev := next(t, stream)
	var got liveUpdate
	if err := json.Unmarshal([]byte(ev.data), &got); ev.name != "system" || err != nil {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	if got.ID != world.systems[0].ID || got.State != "DISARMED" || strings.Join(got.Actions, ",") != "ARM" {
		t.Fatalf("update %+v, want the main entrance DISARMED with ARM", got)
	}

	// The warehouse is at a location the user has no role at: its change
	// is never told. The server room's change then is, and one more
	// round shows nothing about the warehouse came in between.
	publishEvent(t, pub, "securitysystem", "securitysystem.armed", world.systems[2].ID)
	publishEvent(t, pub, "securitysystem", "securitysystem.armed", world.systems[1].ID)
	publishEvent(t, pub, "securitysystem", "securitysystem.armed", world.systems[0].ID)
	seen := map[string]bool{}
	for !seen[world.systems[0].ID] || !seen[world.systems[1].ID] {
		ev := next(t, stream)
		var u liveUpdate
		_ = json.Unmarshal([]byte(ev.data), &u)
		if u.ID == world.systems[2].ID {
			t.Fatalf("the stream told of a system the user may not view: %s", ev.data)
		}
		seen[u.ID] = true
	}

	// Logging out elsewhere ends the stream at its next event.
	if err := b.svc.store.delete(context.Background(), hashID(sess.ID)); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, pub, "securitysystem", "securitysystem.armed", world.systems[0].ID)
	if ev := next(t, stream); ev.name != "ended" {
		t.Fatalf("after logout: %+v", ev)
	}
}

// TestLiveWatchAndAttribution checks which messages reach a stream: only
// the Security System Service's own event types on their own subjects,
// only for the systems the stream watches.
func TestLiveWatchAndAttribution(t *testing.T) {
	h := &liveHub{prefix: "realguardio", subs: map[*liveSub]struct{}{}}
	watching := &liveSub{watch: map[string]bool{"50000000-0000-0000-0000-000000000001": true}, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	all := &liveSub{watch: map[string]bool{}, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	h.subs[watching], h.subs[all] = struct{}{}, struct{}{}
	msg := func(subject, producer, typ, id string) *nats.Msg {
		data, _ := json.Marshal(map[string]any{"type": typ, "producer": producer, "payload": map[string]any{"securitySystemId": id}})
		return &nats.Msg{Subject: subject, Data: data}
	}
	id1, id2 := "50000000-0000-0000-0000-000000000001", "50000000-0000-0000-0000-000000000002"
	for _, m := range []*nats.Msg{
		msg("realguardio.securitysystem.armed", "customer", "securitysystem.armed", id2),           // not its producer
		msg("realguardio.securitysystem.disarmed", "securitysystem", "securitysystem.armed", id2),  // not its subject
		msg("realguardio.securitysystem.deleted", "securitysystem", "securitysystem.deleted", id2), // not a type it shows
		msg("realguardio.securitysystem.armed", "securitysystem", "securitysystem.armed", "../x"),  // not an id
		{Subject: "realguardio.securitysystem.armed", Data: []byte("not json")},
	} {
		h.onMessage(m)
	}
	if ids, _ := all.take(); len(ids) != 0 {
		t.Fatalf("unattributable messages queued %v", ids)
	}
	h.onMessage(msg("realguardio.securitysystem.armed", "securitysystem", "securitysystem.armed", id2))
	h.onMessage(msg("realguardio.securitysystem.created", "securitysystem", "securitysystem.created", id1))
	if ids, _ := watching.take(); strings.Join(ids, ",") != id1 {
		t.Errorf("the watching stream has %v, want only %s", ids, id1)
	}
	if ids, _ := all.take(); len(ids) != 2 {
		t.Errorf("the stream of all systems has %v, want both", ids)
	}
	for i := 0; i < liveMaxPending+5; i++ {
		all.offer(fmt.Sprintf("60000000-0000-0000-0000-%012d", i))
	}
	if ids, overrun := all.take(); !overrun || len(ids) != liveMaxPending {
		t.Errorf("after a flood: %d pending, overrun %v; want %d and a reload", len(ids), overrun, liveMaxPending)
	}
}

// TestLiveIdentityIsSubscribeOnly checks the BFF's NATS permissions: it
// hears the Security System Service's events, may not publish one, and
// may not listen to another stream.
func TestLiveIdentityIsSubscribeOnly(t *testing.T) {
	srv, pw, pub := liveNATS(t)
	violations := make(chan error, 4)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("bff", pw), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	heard := make(chan *nats.Msg, 1)
	if _, err := nc.Subscribe("realguardio.securitysystem.>", func(m *nats.Msg) { heard <- m }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, pub, "securitysystem", "securitysystem.armed", "50000000-0000-0000-0000-000000000001")
	select {
	case <-heard:
	case <-time.After(20 * time.Second):
		t.Fatal("the BFF's identity did not hear the event")
	}
	wantViolation := func(what string) {
		t.Helper()
		select {
		case err := <-violations:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s was not refused", what)
		}
	}
	_ = nc.Publish("realguardio.securitysystem.armed", []byte("{}"))
	_ = nc.Flush()
	wantViolation("publishing an event")
	_, _ = nc.Subscribe("realguardio.customer.>", func(*nats.Msg) {})
	_ = nc.Flush()
	wantViolation("listening to the customer stream")
}
