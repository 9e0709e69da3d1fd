// Package dealer is the Security System Dealer Service: dealers, their
// employees with organization roles and schedules (built on package
// orgkit), the monitoring provider each dealer uses, and the facts the
// Security System Service fetches about them (docs/fetch-api.md).
//
// The monitoring provider a dealer names must exist. The dealer service
// does not call the Monitoring Provider Service for that: it keeps a small
// replica of provider ids fed by monitoring.provider_created events, so a
// dealer's change never depends on another service being up, at the price
// of a provider being usable here only once its creation event arrived
// (normally milliseconds). A provider id not (yet) known is a 422.
package dealer

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithost"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithttp"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Name is the service's name in logs, metrics and event envelopes.
const Name = "dealer"

// MonitoringConsumerName is the durable consumer that keeps the monitoring
// provider replica; the NATS permissions of the service name it.
const MonitoringConsumerName = "dealer-monitoring-provider-replica"

// DefaultAudience is the audience the service's access tokens must carry,
// and the IAM client id it authenticates as.
const DefaultAudience = principal.AudienceDealer

// Config holds the service's settings: those every organization service
// shares, with DefaultAudience as the audience and IAM client id.
type Config = orgkithost.Config

// Deps are the resources the service uses, opened by internal/system.
type Deps struct {
	// Logger receives the service's logs (slog.Default() when nil).
	Logger *slog.Logger
	// DB is the service's own database; New migrates it.
	DB *sqldb.DB
	// JS publishes the outbox and feeds the monitoring provider replica.
	// When nil, Run neither relays nor consumes (unit tests only: events
	// then stay in the outbox).
	JS jetstream.JetStream
	// Validator validates access tokens; when nil New builds one from
	// Config.Issuer and Config.Audience.
	Validator *auth.Validator
	// Accounts provisions employees' IAM accounts; when nil New uses the
	// IAM client with Config's client credentials.
	Accounts orgkit.Accounts
	// Registry receives the service's metrics (a new one when nil).
	Registry *prometheus.Registry
	// HTTPClient calls the IAM Service (a client with a 10 s timeout when
	// nil).
	HTTPClient *http.Client
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns every migration set of the service, in order.
func Migrations() []sqldb.Migrations {
	return []sqldb.Migrations{events.Migrations(), orgkit.Migrations(), {Set: "dealer", FS: migrationFS, Dir: "migrations"}}
}

// Service is the running Security System Dealer Service.
type Service struct {
	cfg       Config
	js        jetstream.JetStream
	host      *orgkithost.Host
	outbox    *events.Outbox
	kit       *orgkit.Service
	providers *providers
	handler   http.Handler
}

// New migrates the database and builds the service. It contacts neither
// the IAM Service nor NATS: both may come up later.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	cfg = cfg.WithDefaults(DefaultAudience)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("dealer: Deps.DB is required")
	}
	host, err := orgkithost.New(ctx,
		orgkithost.Host{Name: Name, Logger: deps.Logger, DB: deps.DB, Registry: deps.Registry, Validator: deps.Validator, Accounts: deps.Accounts},
		cfg.IAM(deps.HTTPClient),
		Migrations()...)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, js: deps.JS, host: host, outbox: events.NewOutbox(events.ProducerDealer)}
	s.kit = orgkit.NewService(orgkit.Dealer, host.DB, s.outbox, host.Accounts, host.Logger)
	s.providers = &providers{kit: s.kit, now: time.Now}
	s.handler = s.buildHandler()
	return s, nil
}

// Kit returns the organization use cases, for wiring demo data.
func (s *Service) Kit() *orgkit.Service { return s.kit }

func (s *Service) buildHandler() http.Handler {
	mux := httpx.NewMux(Name)
	kh := orgkithttp.New(s.kit, orgkithttp.Options{OrganizationView: s.providers.view})
	kh.Register(mux)
	kh.RegisterSubjectFacts(mux)
	kh.RegisterAccessFacts(mux)
	h := &handlers{kit: kh, providers: s.providers}
	mux.Handle("PUT /dealers/{dealerId}/monitoring-provider", httpx.HandlerFunc(h.setMonitoringProvider))
	mux.Handle("GET /authz/dealers/{dealerId}", httpx.HandlerFunc(h.dealerFacts))
	mux.Handle("POST /authz/dealers:batch", httpx.HandlerFunc(h.dealerFactsBatch))
	mux.Handle("POST /authz/dealers:byMonitoringProviders", httpx.HandlerFunc(h.dealersByProviders))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such resource"))
	})
	return s.host.Handler(mux)
}

// Handler returns the service's whole HTTP surface.
func (s *Service) Handler() http.Handler { return s.handler }

// Run relays the outbox to JetStream and keeps the monitoring provider
// replica up to date until ctx ends; it returns nil on cancellation. Without
// Deps.JS it only waits. The streams are created by the wiring
// (events.EnsureStreams, once per system), not here, so that one place
// decides their limits.
func (s *Service) Run(ctx context.Context) error {
	if s.js == nil {
		<-ctx.Done()
		return nil
	}
	relay := s.host.Relay(s.js, s.outbox, s.cfg.EventPrefix)
	consumer, err := events.NewConsumer(events.ConsumerConfig{
		Name:           MonitoringConsumerName,
		Streams:        []string{events.StreamName(s.cfg.EventPrefix, events.ProducerMonitoring)},
		FilterSubjects: []string{events.Subject(s.cfg.EventPrefix, string(catalog.MonitoringProviderCreated))},
		DB:             s.host.DB,
		JS:             s.js,
		Handler:        applyMonitoringEvent,
		Logger:         s.host.Logger,
		Registry:       s.host.Registry,
		ResetState: func(ctx context.Context, tx *sqldb.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM monitoring_provider_replica`)
			return err
		},
	})
	if err != nil {
		return err
	}
	return orgkithost.RunAll(ctx, relay.Run, consumer.Run)
}

// Close releases what New acquired. The database and NATS belong to the
// caller, so there is nothing to release today; Close exists so wiring
// treats every service alike.
func (s *Service) Close() error { return nil }
