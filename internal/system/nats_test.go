package system

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
)

var updateDeploy = flag.Bool("update-deploy", false, "rewrite deploy/nats/nats.conf from NATSGrants")

// natsConfHeader precedes the generated users in deploy/nats/nats.conf.
const natsConfHeader = `# NATS server configuration of the distributed deployment (compose.yaml).
# The authorization block is generated from internal/system.NATSGrants, the
# permissions the embedded server of ` + "`up`" + ` enforces, and checked by
# TestDeployNATSConfig: regenerate it with
#   go test ./internal/system -run TestDeployNATSConfig -update-deploy
# Each service connects as its own user (REALGUARDIO_NATS_USER and
# REALGUARDIO_NATS_PASSWORD); the passwords come from the server's
# environment (NATS_PASSWORD_<SERVICE>), never from this file.
port: 4222
jetstream {
  store_dir: /data
}
`

// TestDeployNATSConfig checks that the NATS configuration shipped in
// deploy/ grants each service exactly what NATSGrants says, so the external
// server enforces the same permissions as the embedded one.
func TestDeployNATSConfig(t *testing.T) {
	want := natsConfHeader + events.NATSConfigUsers("", NATSGrants(), natsPasswordVar)
	path := filepath.Join("..", "..", "deploy", "nats", "nats.conf")
	if *updateDeploy {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with NATSGrants; regenerate it with -update-deploy", path)
	}
	// nats-server itself accepts it (-t checks the configuration), with
	// every password variable set.
	cmd := exec.Command(eventstest.ServerBinary(t), "-c", path, "-t")
	cmd.Env = os.Environ()
	for _, g := range NATSGrants() {
		cmd.Env = append(cmd.Env, natsPasswordVar(g.Identity)+"=test-password-of-"+g.Identity)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nats-server rejects %s: %v\n%s", path, err, out)
	}
}

// natsPasswordVar names the environment variable of the NATS server that
// holds identity's password.
func natsPasswordVar(identity string) string { return "NATS_PASSWORD_" + strings.ToUpper(identity) }

// TestServeConnectsAsItsOwnIdentity runs the NATS wiring of `serve
// customer` against a server configured with NATSGrants: the service
// connects with --nats-user/--nats-password, creates its own stream and no
// other, may publish its own events and not the dealer's; a wrong password
// fails the start at once, naming the setting.
func TestServeConnectsAsItsOwnIdentity(t *testing.T) {
	passwords := map[string]string{}
	var users []events.EmbeddedUser
	for _, g := range append(NATSGrants(), events.Grant{Identity: "admin", Admin: true}) {
		passwords[g.Identity] = events.RandomPassword()
		users = append(users, events.EmbeddedUser{Name: g.Identity, Password: passwords[g.Identity], Permissions: g.Permissions("")})
	}
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	start := func(user, password string) (*System, *natsBus, error) {
		s := &System{cfg: Config{Only: ServiceCustomer, NATSURL: srv.ClientURL(), NATSUser: user, NATSPassword: password},
			logger: slog.New(slog.DiscardHandler), URLs: map[string]string{}, cancel: func() {}}
		t.Cleanup(func() { _ = s.Stop() })
		bus, err := s.startNATS(ctx)
		return s, bus, err
	}
	began := time.Now()
	if _, _, err := start(ServiceCustomer, "wrong"); err == nil || !strings.Contains(err.Error(), "--nats-url") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("a refused password took %v to fail the start", took)
	}
	_, bus, err := start(ServiceCustomer, passwords[ServiceCustomer])
	if err != nil {
		t.Fatal(err)
	}
	js := bus.js(ServiceCustomer)
	if _, err := js.Stream(ctx, events.StreamName("", events.ProducerCustomer)); err != nil {
		t.Fatalf("the customer stream was not created: %v", err)
	}
	if _, err := js.Publish(ctx, events.Subject("", "customer.created"), []byte(`{}`)); err != nil {
		t.Errorf("customer cannot publish its own event: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, events.Subject("", "dealer.created"), []byte(`{}`)); err == nil {
		t.Error("customer published a dealer event")
	}
	anc, admin, err := events.Connect(ctx, srv.ClientURL(), "admin", nil,
		events.WithCredentials(events.Credentials{Identity: "admin", User: "admin", Password: passwords["admin"]}))
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	if _, err := admin.Stream(ctx, events.StreamName("", events.ProducerDealer)); err == nil {
		t.Error("serve customer created the dealer's stream")
	}
}

// TestStreamsWaitForTheCluster: a service started while its NATS cluster
// lacks the servers for three replicas waits (its /readyz saying so) and
// creates its stream once they are back, instead of failing the start
// with a timeout, as the fault suite's Security System Service did on a
// cluster that had just started.
func TestStreamsWaitForTheCluster(t *testing.T) {
	c := eventstest.StartCluster(t, 3)
	c.Kill(1)
	c.Kill(2)
	s := &System{cfg: Config{Only: ServiceCustomer, NATSURL: c.URL(), NATSReplicas: 3},
		logger: slog.New(slog.DiscardHandler), URLs: map[string]string{}, cancel: func() {}}
	t.Cleanup(func() { _ = s.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.startNATS(ctx)
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for s.waits.checks()["nats"] != "creating the event streams (retrying)" {
		select {
		case err := <-done:
			t.Fatalf("the start ended with one server of three: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start does not say it waits for the streams: %v", s.waits.checks())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Start(1)
	c.Start(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start once the cluster is whole: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the streams were not created once the cluster was whole")
	}
	if _, ok := s.waits.checks()["nats"]; ok {
		t.Errorf("/readyz still names nats after the start: %v", s.waits.checks())
	}
}
