package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

// RebuildReplica rebuilds the Security System Service's replica (the
// replicate strategy's local copy of the organization services' facts) from
// scratch by replaying the event streams, and reports what it applied. The
// service must be stopped: its consumer would compete with the replay.
// With the embedded defaults this means `realguardio up` must not be
// running, since the replay reads the embedded NATS store in the data
// directory.
func RebuildReplica(ctx context.Context, cfg Config, logger *slog.Logger, out io.Writer) error {
	s := &System{cfg: cfg, logger: logger, URLs: map[string]string{}}
	s.cancel = func() {}
	defer s.Stop()

	js, err := s.rebuildNATS(ctx, ServiceSecuritySystem)
	if err != nil {
		return err
	}
	db, err := s.openDB(ctx, ServiceSecuritySystem)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Rebuilding the Security System Service's replica from the event streams...")
	pp := newProgressPrinter(out)
	report, err := securitysystem.RebuildReplica(ctx, securitysystem.Config{
		Issuer:   cfg.Endpoints[ServiceIAM].URL,
		Audience: iam.AudienceSecuritySystem,
		Strategy: "replicate",
	}, securitysystem.Deps{Logger: logger.With("service", ServiceSecuritySystem), DB: db, JS: js},
		securitysystem.WithRebuildProgress(pp.interval(), pp.update))
	if err != nil {
		pp.abort()
		if errors.Is(err, context.Canceled) {
			return errors.New("rebuild interrupted; run it again to start over")
		}
		return err
	}
	printApplied(out, report.Applied, report.Took)
	return nil
}

// RebuildOpenFGA rebuilds the delegate strategy's OpenFGA tuples from
// scratch by replaying the event streams through the authorization sync
// (authzsync.Rebuild): it deletes only the tuples the sync derives from
// events, keeps every other one, and reports what it replayed. The sync
// must be stopped; a running one holds its stream leases and the rebuild is
// refused. With the embedded defaults `realguardio up` must not be running,
// since the rebuild opens the embedded NATS and OpenFGA stores in the data
// directory.
func RebuildOpenFGA(ctx context.Context, cfg Config, logger *slog.Logger, out io.Writer) error {
	s := &System{cfg: cfg, logger: logger, URLs: map[string]string{}}
	s.cancel = func() {}
	defer s.Stop()

	js, err := s.rebuildNATS(ctx, ServiceAuthzSync)
	if err != nil {
		return err
	}
	db, err := s.openDB(ctx, ServiceAuthzSync)
	if err != nil {
		return err
	}
	fgaURL, err := s.startOpenFGA(ctx)
	if err != nil {
		return err
	}
	client, err := fga.New(fga.Config{URL: fgaURL, APIToken: s.fgaToken, Timeout: cfg.OpenFGATimeout, MaxTuplesPerWrite: s.fgaWriteLimit()}, nil, nil)
	if err != nil {
		return fmt.Errorf("openfga: %w", err)
	}
	fmt.Fprintln(out, "Rebuilding the authorization sync's OpenFGA tuples from the event streams...")
	pp := newProgressPrinter(out)
	report, err := authzsync.Rebuild(ctx, authzsync.Config{},
		authzsync.Deps{Logger: logger.With("service", ServiceAuthzSync), DB: db, JS: js, FGA: client},
		authzsync.WithRebuildProgress(pp.interval(), pp.update))
	if err != nil {
		pp.abort()
		if errors.Is(err, context.Canceled) {
			return errors.New("rebuild interrupted; run it again to start over")
		}
		return err
	}
	fmt.Fprintf(out, "  %d tuples written, %d deleted, %d unchanged; %d tuples the sync does not derive kept\n",
		report.Written, report.Deleted, report.Unchanged, report.Kept)
	printApplied(out, report.Applied, report.Took)
	return nil
}

// printApplied ends a rebuild's output: the events applied per stream, in
// stream order, and the time it took.
func printApplied(out io.Writer, applied map[string]int64, took time.Duration) {
	streams := make([]string, 0, len(applied))
	for st := range applied {
		streams = append(streams, st)
	}
	sort.Strings(streams)
	if len(streams) == 0 {
		fmt.Fprintln(out, "  the streams hold no events yet")
	}
	for _, st := range streams {
		fmt.Fprintf(out, "  %-28s %d events applied\n", st, applied[st])
	}
	fmt.Fprintf(out, "Done in %s.\n", took.Round(time.Millisecond))
}

// rebuildNATS connects to NATS for a rebuild as service, with its
// permissions only: to the configured server, or to an embedded server
// started on the data directory's store, which `realguardio up` must not
// be using.
func (s *System) rebuildNATS(ctx context.Context, service string) (jetstream.JetStream, error) {
	cfg, logger := s.cfg, s.logger
	natsURL := cfg.NATSURL
	creds := s.natsCredentials(service)
	if natsURL == "" {
		// The embedded server of `up` owns the store while it runs; a second
		// server on the same files would corrupt them.
		if conn, err := net.DialTimeout("tcp", cfg.NATSEmbeddedAddr, 500*time.Millisecond); err == nil {
			conn.Close()
			return nil, fmt.Errorf("something listens on the embedded NATS address %s: stop `realguardio up` first (or pass --nats-url to rebuild from an external server)", cfg.NATSEmbeddedAddr)
		}
		// The rebuild connects as the service it rebuilds for, with its
		// permissions only.
		var grant events.Grant
		for _, g := range NATSGrants() {
			if g.Identity == service {
				grant = g
			}
		}
		creds = events.Credentials{Identity: service, User: service, Password: events.RandomPassword()}
		admin := events.Credentials{Identity: natsAdminIdentity, User: natsAdminIdentity, Password: events.RandomPassword()}
		ns, err := events.StartEmbeddedNATS(events.EmbeddedOptions{
			StoreDir: filepath.Join(cfg.DataDir, "nats"),
			Port:     -1,
			Users: []events.EmbeddedUser{
				{Name: creds.User, Password: creds.Password, Permissions: grant.Permissions("")},
				{Name: admin.User, Password: admin.Password, Permissions: events.Grant{Identity: natsAdminIdentity, Admin: true}.Permissions("")},
			},
			Logger: slog.New(minLevel{logger.Handler(), slog.LevelWarn}),
		})
		if err != nil {
			return nil, fmt.Errorf("embedded NATS on the store in %s: %w", cfg.DataDir, err)
		}
		s.onClose(func() error { ns.Shutdown(); return nil })
		natsURL = ns.ClientURL()
		// A data directory without streams yet (nothing ever ran) gets
		// them, so the rebuild finds them empty instead of waiting.
		anc, ajs, err := events.Connect(ctx, natsURL, "realguardio-rebuild-admin", logger, events.WithCredentials(admin))
		if err != nil {
			return nil, fmt.Errorf("connect to the embedded NATS: %w", err)
		}
		s.onClose(func() error { anc.Close(); return nil })
		if err := s.ensureStreams(ctx, anc, ajs, nil); err != nil {
			return nil, err
		}
	}
	nc, js, err := events.Connect(ctx, natsURL, "realguardio-rebuild", logger, events.WithCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", events.RedactURL(natsURL), err)
	}
	s.onClose(func() error { nc.Close(); return nil })
	if err := events.CheckServerVersion(nc); err != nil {
		return nil, err
	}
	return js, nil
}

// RotateKeys rotates the IAM Service's signing key on command: it adds a
// new key to the IAM database that is published at once and signs after
// the configured publish-ahead time. A running IAM picks it up within a
// minute; the key it replaces stays published until its tokens expire.
func RotateKeys(ctx context.Context, cfg Config, out io.Writer) error {
	db, err := openDatabase(ctx, cfg, ServiceIAM)
	if err != nil {
		return err
	}
	defer db.Close()
	keks, err := cfg.keyEncryptionKeys()
	if err != nil {
		return err
	}
	id, activates, err := iam.RotateSigningKeys(ctx, db, cfg.KeyPublishAhead, keks)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "New signing key %s: published now, signs from %s.\n", id, activates.UTC().Format(time.RFC3339))
	return nil
}
