// Package monitoring is the Monitoring Provider Service: monitoring
// providers and their employees with organization roles and schedules, all
// built on package orgkit, and the subject facts the Security System
// Service fetches (docs/fetch-api.md). Its events (monitoring.*) also feed
// the dealer service's replica of known providers.
package monitoring

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithost"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithttp"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Name is the service's name in logs, metrics and event envelopes.
const Name = "monitoring"

// DefaultAudience is the audience the service's access tokens must carry,
// and the IAM client id it authenticates as.
const DefaultAudience = principal.AudienceMonitoring

// Config holds the service's settings: those every organization service
// shares, with DefaultAudience as the audience and IAM client id.
type Config = orgkithost.Config

// Deps are the resources the service uses, opened by internal/system.
type Deps struct {
	// Logger receives the service's logs (slog.Default() when nil).
	Logger *slog.Logger
	// DB is the service's own database; New migrates it.
	DB *sqldb.DB
	// JS publishes the outbox. When nil, Run does not relay (unit tests
	// only: events then stay in the outbox).
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

// Migrations returns every migration set of the service, in order. The
// service owns no tables beyond the kit's and the outbox.
func Migrations() []sqldb.Migrations {
	return []sqldb.Migrations{events.Migrations(), orgkit.Migrations()}
}

// Service is the running Monitoring Provider Service.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	host    *orgkithost.Host
	outbox  *events.Outbox
	kit     *orgkit.Service
	handler http.Handler
}

// New migrates the database and builds the service. It contacts neither
// the IAM Service nor NATS: both may come up later.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	cfg = cfg.WithDefaults(DefaultAudience)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("monitoring: Deps.DB is required")
	}
	host, err := orgkithost.New(ctx,
		orgkithost.Host{Name: Name, Logger: deps.Logger, DB: deps.DB, Registry: deps.Registry, Validator: deps.Validator, Accounts: deps.Accounts},
		cfg.IAM(deps.HTTPClient),
		Migrations()...)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, js: deps.JS, host: host, outbox: events.NewOutbox(events.ProducerMonitoring)}
	s.kit = orgkit.NewService(orgkit.MonitoringProvider, host.DB, s.outbox, host.Accounts, host.Logger)

	mux := httpx.NewMux(Name)
	kh := orgkithttp.New(s.kit, orgkithttp.Options{})
	kh.Register(mux)
	kh.RegisterSubjectFacts(mux)
	kh.RegisterAccessFacts(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such resource"))
	})
	s.handler = host.Handler(mux)
	return s, nil
}

// Kit returns the organization use cases, for wiring demo data.
func (s *Service) Kit() *orgkit.Service { return s.kit }

// Handler returns the service's whole HTTP surface.
func (s *Service) Handler() http.Handler { return s.handler }

// Run relays the outbox to JetStream until ctx ends; it returns nil on
// cancellation. Without Deps.JS it only waits. The streams are created by
// the wiring (events.EnsureStreams, once per system), not here, so that one
// place decides their limits.
func (s *Service) Run(ctx context.Context) error {
	if s.js == nil {
		<-ctx.Done()
		return nil
	}
	return s.host.Relay(s.js, s.outbox, s.cfg.EventPrefix).Run(ctx)
}

// Close releases what New acquired. The database and NATS belong to the
// caller, so there is nothing to release today; Close exists so wiring
// treats every service alike.
func (s *Service) Close() error { return nil }
