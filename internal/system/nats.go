package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/dealer"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

// natsAdminIdentity is the identity with which `up` creates every stream on
// its embedded server; no service connects with it.
const natsAdminIdentity = "realguardio"

// NATSGrants returns what each service may do on the event bus: publish its
// own stream and run its own durable consumers on the streams it reads.
// The embedded server of `up` enforces exactly these permissions, and
// deploy/nats/nats.conf is checked against them by a test, so an external
// server enforces the same.
func NATSGrants() []events.Grant {
	return []events.Grant{
		{Identity: ServiceCustomer, Producer: events.ProducerCustomer, Consumers: []events.ConsumerGrant{
			{Durable: customer.DealerConsumerName, Producers: []string{events.ProducerDealer}},
			{Durable: customer.SystemsConsumerName, Producers: []string{events.ProducerSecuritySystem}},
			{Durable: customer.DealerProvidersConsumerName, Producers: []string{events.ProducerDealer}},
		}},
		{Identity: ServiceDealer, Producer: events.ProducerDealer, Consumers: []events.ConsumerGrant{
			{Durable: dealer.MonitoringConsumerName, Producers: []string{events.ProducerMonitoring}},
		}},
		{Identity: ServiceMonitoring, Producer: events.ProducerMonitoring},
		{Identity: ServiceSecuritySystem, Producer: events.ProducerSecuritySystem, Consumers: []events.ConsumerGrant{
			{Durable: securitysystem.ReplicaConsumerName, Producers: []string{events.ProducerCustomer, events.ProducerDealer, events.ProducerMonitoring}},
			{Durable: securitysystem.ResourceFactsConsumerName, Producers: []string{events.ProducerCustomer, events.ProducerDealer}},
		}},
		{Identity: ServiceAuthzSync, Consumers: []events.ConsumerGrant{
			{Durable: authzsync.DefaultConsumerName, Producers: events.Producers},
		}},
		// The BFF only hears which systems changed, for the pages' live
		// state; it may publish nothing and consume no stream.
		{Identity: ServiceBFF, Listen: []string{events.ProducerSecuritySystem}},
	}
}

// natsBus is the event bus as the services see it: one JetStream handle per
// service, each on its own connection and identity when the bus knows
// them (the embedded server, or `serve` with its credentials).
type natsBus struct {
	shared jetstream.JetStream
	per    map[string]jetstream.JetStream
}

// js returns the handle service must use.
func (b *natsBus) js(service string) jetstream.JetStream {
	if b == nil {
		return nil
	}
	if js, ok := b.per[service]; ok {
		return js
	}
	return b.shared
}

// conn returns the NATS connection of service's handle, or nil without a
// bus.
func (b *natsBus) conn(service string) *nats.Conn {
	if js := b.js(service); js != nil {
		return js.Conn()
	}
	return nil
}

// natsCredentials returns the configured credentials of an external
// server, for the identity of service ("" under `up`: every service shares
// the connection, so the identity must hold the union of their grants).
func (s *System) natsCredentials(service string) events.Credentials {
	c := s.cfg
	return events.Credentials{
		Identity:     service,
		User:         c.NATSUser,
		Password:     c.NATSPassword,
		CredsFile:    c.NATSCredsFile,
		NKeySeedFile: c.NATSNKeySeedFile,
		CAFile:       c.NATSCAFile,
		CertFile:     c.NATSCertFile,
		KeyFile:      c.NATSKeyFile,
	}
}

// startNATS connects to the configured NATS server, or starts the embedded
// one with one identity per service, checks the server's version, and
// makes sure the streams exist (with their replica count) before any
// producer or consumer runs.
func (s *System) startNATS(ctx context.Context) (*natsBus, error) {
	if s.cfg.NATSURL == "" {
		if s.cfg.Only != "" {
			return nil, errors.New("--nats-url (REALGUARDIO_NATS_URL): a service run alone needs an external NATS server; the embedded one is only started by `up`")
		}
		return s.startEmbeddedNATS(ctx)
	}
	url := s.cfg.NATSURL
	s.NATSURL = events.RedactURL(url)
	name := "realguardio"
	if s.cfg.Only != "" {
		name = "realguardio-" + s.cfg.Only
	}
	// Connect waits (and retries) until NATS answers; say so every few
	// seconds, or a process whose NATS is unreachable would sit silent
	// with its port bound and answering nothing.
	s.waits.set("nats", "not connected yet (retrying)")
	defer s.waits.set("nats", "")
	waited := make(chan struct{})
	go func() {
		start := time.Now()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-waited:
				return
			case <-t.C:
				s.log("nats").Warn("NATS does not answer yet; the services start once it does (retrying)",
					"url", events.RedactURL(url), "waited", time.Since(start).Round(time.Second))
			}
		}
	}()
	nc, js, err := events.Connect(ctx, url, name, s.log("nats"), events.WithCredentials(s.natsCredentials(s.cfg.Only)))
	close(waited)
	if err != nil {
		return nil, fmt.Errorf("--nats-url: %w", err)
	}
	s.onClose(func() error { nc.Close(); return nil })
	if err := events.CheckServerVersion(nc); err != nil {
		return nil, fmt.Errorf("--nats-url: %w", err)
	}
	// Under `serve` a service creates and updates only its own stream (it
	// may touch no other); the authorization sync owns none.
	var producers []string
	if s.cfg.Only != "" {
		for _, g := range NATSGrants() {
			if g.Identity == s.cfg.Only && g.Producer != "" {
				producers = []string{g.Producer}
			}
		}
		if len(producers) == 0 {
			return &natsBus{shared: js}, nil
		}
	}
	if err := s.ensureStreams(ctx, nc, js, producers); err != nil {
		return nil, err
	}
	return &natsBus{shared: js}, nil
}

// ensureStreams creates or updates the streams of producers (every stream
// when empty) with the configured replica count, or the default for the
// cluster's size.
func (s *System) ensureStreams(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, producers []string) error {
	replicas := s.cfg.NATSReplicas
	size := events.ClusterSize(nc)
	if replicas == 0 {
		replicas = events.DefaultReplicas(size)
	}
	// A cluster that has just started (or lost a server) answers stream
	// requests only once it has elected a JetStream leader and has enough
	// servers for the replicas; until then the request times out or is
	// refused as temporarily unavailable. That is a wait, not a failure:
	// keep trying, saying so in the log and in /readyz, as for a NATS that
	// does not answer at all. Any other refusal (permissions, a stream
	// configured otherwise) fails the start at once.
	s.waits.set("nats", "creating the event streams (retrying)")
	defer s.waits.set("nats", "")
	for attempt := 1; ; attempt++ {
		// Each attempt has its own bound: with the caller's deadline alone
		// one request to a cluster without a leader would use it all.
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := events.EnsureStreams(actx, js, events.StreamOptions{Replicas: replicas, Producers: producers})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || !transientJetStreamError(err) {
			return fmt.Errorf("create or update the event streams (%d replicas, %d NATS servers seen): %w", replicas, size, err)
		}
		s.log("nats").Warn("JetStream cannot create the event streams yet; retrying", "replicas", replicas, "servers", size, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("create or update the event streams (%d replicas, %d NATS servers seen): %w", replicas, size, ctx.Err())
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
		}
	}
	s.log("nats").Info("event streams ready", "replicas", replicas, "servers", size)
	return nil
}

// transientJetStreamError reports whether a JetStream request failed for a
// reason that passes by itself: no answer in time, no JetStream responder
// yet, or an answer of code 503 (no leader, too few servers for the
// replicas).
func transientJetStreamError(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// startEmbeddedNATS starts the embedded server of `up` with a fresh
// password for every service's identity at each start, connects each
// service as itself, and creates the streams as the admin identity.
func (s *System) startEmbeddedNATS(ctx context.Context) (*natsBus, error) {
	host, portStr, err := net.SplitHostPort(s.cfg.NATSEmbeddedAddr)
	if err != nil {
		return nil, fmt.Errorf("--nats-embedded-addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--nats-embedded-addr: port %q is not a number", portStr)
	}
	if port == 0 {
		port = -1
	}
	grants := append(NATSGrants(), events.Grant{Identity: natsAdminIdentity, Admin: true})
	users := make([]events.EmbeddedUser, 0, len(grants))
	passwords := map[string]string{}
	for _, g := range grants {
		pw := events.RandomPassword()
		passwords[g.Identity] = pw
		users = append(users, events.EmbeddedUser{Name: g.Identity, Password: pw, Permissions: g.Permissions("")})
	}
	ns, err := events.StartEmbeddedNATS(events.EmbeddedOptions{
		StoreDir: filepath.Join(s.cfg.DataDir, "nats"),
		Host:     host,
		Port:     port,
		Users:    users,
		// The embedded server's banner and notices are noise in the
		// system's log; its warnings and errors are not.
		Logger: slog.New(minLevel{s.log("nats").Handler(), slog.LevelWarn}),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS on %s: %w", s.cfg.NATSEmbeddedAddr, err)
	}
	s.onClose(func() error { ns.Shutdown(); return nil })
	s.NATSURL = ns.ClientURL()

	connect := func(identity string) (*nats.Conn, jetstream.JetStream, error) {
		nc, js, err := events.Connect(ctx, ns.ClientURL(), "realguardio-"+identity, s.log("nats"),
			events.WithCredentials(events.Credentials{Identity: identity, User: identity, Password: passwords[identity]}))
		if err != nil {
			return nil, nil, fmt.Errorf("embedded NATS, identity %s: %w", identity, err)
		}
		s.onClose(func() error { nc.Close(); return nil })
		return nc, js, nil
	}
	anc, ajs, err := connect(natsAdminIdentity)
	if err != nil {
		return nil, err
	}
	if err := s.ensureStreams(ctx, anc, ajs, nil); err != nil {
		return nil, err
	}
	bus := &natsBus{per: map[string]jetstream.JetStream{}}
	for _, g := range NATSGrants() {
		if !s.runs(g.Identity) {
			continue
		}
		_, js, err := connect(g.Identity)
		if err != nil {
			return nil, err
		}
		bus.per[g.Identity] = js
	}
	return bus, nil
}
