// Package customer is the Customer Service: customers and their employees,
// organization roles and schedules (through the shared organization kit),
// and what only customers have: locations and the dealer servicing each,
// teams, location roles of employees and teams, and profiles. It publishes
// every change the authorization rule depends on through its outbox, keeps
// a replica of the dealers it may assign from the Dealer Service's events,
// and serves the facts endpoints of the fetch strategy.
//
// This file is the wiring: configuration, dependencies, New, Handler, Run
// and Close, in the shape every service has (docs/development.md).
package customer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/customer/httpapi"
	"github.com/realguardio/realguardio/internal/customer/store"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithost"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Name is the service name: the event producer, the metrics label and the
// log attribute.
const Name = "customer"

// DefaultAudience is the audience access tokens must carry for this
// service.
const DefaultAudience = principal.AudienceCustomer

// DealerConsumerName is the durable name of the consumer that feeds the
// dealer replica from the Dealer Service's stream.
const DealerConsumerName = "customer-dealers"

// SystemsConsumerName is the durable name of the consumer that records,
// from the Security System Service's securitysystem.created events, which
// locations have security systems (such a location cannot be deleted).
const SystemsConsumerName = "customer-location-systems"

// DealerProvidersConsumerName is the durable name of the consumer that
// records each dealer's monitoring provider from the Dealer Service's
// dealer.monitoring_provider_set events (for GET /location-names).
const DealerProvidersConsumerName = "customer-dealer-providers"

// Config holds the service's settings: those every organization service
// shares, with DefaultAudience as the audience and IAM client id.
type Config = orgkithost.Config

// Deps are the resources the service uses, opened by its caller.
type Deps struct {
	// Logger is the service's logger (slog.Default() when nil).
	Logger *slog.Logger
	// DB is the service's own database.
	DB *sqldb.DB
	// JS is the JetStream handle for the relay and the dealer consumer;
	// nil runs the service without publishing or consuming (tests of the
	// HTTP surface alone), the outbox still being written.
	JS jetstream.JetStream
	// Validator validates access tokens; nil builds one from Issuer and
	// Audience.
	Validator *auth.Validator
	// Accounts provisions IAM accounts; nil builds the IAM client from
	// the configuration.
	Accounts orgkit.Accounts
	// Registry receives the service's metrics (a new one when nil).
	Registry *prometheus.Registry
	// Memberships tells which dealer and monitoring provider a caller of
	// GET /location-names works for (RelayMemberships); nil gives their
	// employees no names.
	Memberships app.Memberships
}

// Service is the running Customer Service.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	host    *orgkithost.Host
	outbox  *events.Outbox
	org     *orgkit.Service
	app     *app.Service
	units   store.Transactor // binds the consumers' transactions to units of work
	handler http.Handler
}

// New builds the service and migrates its database: the event tables, the
// organization kit's schema and the service's own.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if deps.DB == nil {
		return nil, errors.New("customer: Deps.DB is required")
	}
	cfg = cfg.WithDefaults(DefaultAudience)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Accounts == nil && cfg.IAMClientSecret == "" {
		return nil, errors.New("customer: the IAM client secret (Config.IAMClientSecret) is required to create employees' accounts")
	}
	host, err := orgkithost.New(ctx,
		orgkithost.Host{Name: Name, Logger: deps.Logger, DB: deps.DB, Registry: deps.Registry, Validator: deps.Validator, Accounts: deps.Accounts},
		cfg.IAM(nil),
		events.Migrations(), orgkit.Migrations(), store.Migrations())
	if err != nil {
		return nil, err
	}
	outbox := events.NewOutbox(Name)
	a := &app.Service{}
	units := &store.Transactor{DB: deps.DB, Outbox: outboxPort{outbox}}
	// The kit removes an employee and, in the same transaction, the
	// service revokes the employee's location roles and team memberships:
	// no grant of a removed employee can outlive the removal. The hook
	// runs only once New has returned, when units has its Org.
	org := orgkit.NewService(orgkit.Customer, deps.DB, outbox, host.Accounts, host.Logger,
		orgkit.OnEmployeeRemoved(func(ctx context.Context, tx *sqldb.Tx, e orgkit.Employee) error {
			return a.RevokeEmployee(ctx, units.Bind(tx), toEmployee(e))
		}))
	units.Org = orgPort{org: org}
	a.Store = *units
	s := &Service{cfg: cfg, js: deps.JS, host: host, outbox: outbox, org: org, app: a, units: *units}
	s.handler = host.Handler(httpapi.New(a, org).WithMemberships(deps.Memberships).Routes(Name))
	return s, nil
}

// Handler returns the service's whole HTTP surface.
func (s *Service) Handler() http.Handler { return s.handler }

// Run publishes the outbox, feeds the dealer replica and records the
// locations' security systems until ctx ends.
// Without JetStream it only waits.
func (s *Service) Run(ctx context.Context) error {
	if s.js == nil {
		<-ctx.Done()
		return nil
	}
	consumer, err := events.NewConsumer(events.ConsumerConfig{
		Name:           DealerConsumerName,
		Streams:        []string{events.StreamName(s.cfg.EventPrefix, events.ProducerDealer)},
		FilterSubjects: []string{events.Subject(s.cfg.EventPrefix, string(catalog.DealerCreated))},
		DB:             s.host.DB,
		JS:             s.js,
		Handler:        s.applyDealerEvent,
		Logger:         s.host.Logger,
		Registry:       s.host.Registry,
	})
	if err != nil {
		return err
	}
	systems, err := events.NewConsumer(events.ConsumerConfig{
		Name:           SystemsConsumerName,
		Streams:        []string{events.StreamName(s.cfg.EventPrefix, events.ProducerSecuritySystem)},
		FilterSubjects: []string{events.Subject(s.cfg.EventPrefix, string(catalog.SecuritySystemCreated))},
		DB:             s.host.DB,
		JS:             s.js,
		Handler:        s.applySystemEvent,
		Logger:         s.host.Logger,
		Registry:       s.host.Registry,
	})
	if err != nil {
		return err
	}
	providers, err := events.NewConsumer(events.ConsumerConfig{
		Name:           DealerProvidersConsumerName,
		Streams:        []string{events.StreamName(s.cfg.EventPrefix, events.ProducerDealer)},
		FilterSubjects: []string{events.Subject(s.cfg.EventPrefix, string(catalog.DealerMonitoringProviderSet))},
		DB:             s.host.DB,
		JS:             s.js,
		Handler:        s.applyDealerProviderEvent,
		Logger:         s.host.Logger,
		Registry:       s.host.Registry,
	})
	if err != nil {
		return err
	}
	return orgkithost.RunAll(ctx, s.host.Relay(s.js, s.outbox, s.cfg.EventPrefix).Run, consumer.Run, systems.Run, providers.Run)
}

// applyDealerProviderEvent records a dealer's monitoring provider.
func (s *Service) applyDealerProviderEvent(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	if ev.Type != string(catalog.DealerMonitoringProviderSet) {
		return nil
	}
	var p catalog.DealerMonitoringProviderSetPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return err
	}
	return s.app.ApplyDealerProviderSet(ctx, s.units.Bind(tx), p)
}

// applySystemEvent records the location of a created security system.
func (s *Service) applySystemEvent(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	if ev.Type != string(catalog.SecuritySystemCreated) {
		return nil
	}
	var p catalog.SecuritySystemCreatedPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return err
	}
	return s.app.ApplySecuritySystemCreated(ctx, s.units.Bind(tx), p)
}

// applyDealerEvent applies a Dealer Service event to the replica. Other
// dealer events are ignored: only a dealer's existence matters here.
func (s *Service) applyDealerEvent(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	if ev.Type != string(catalog.DealerCreated) {
		return nil
	}
	var p catalog.DealerCreatedPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return err
	}
	return s.app.ApplyDealerCreated(ctx, s.units.Bind(tx), p)
}

// Close releases what New acquired. The database and JetStream belong to
// the caller.
func (s *Service) Close() error { return nil }

// orgPort adapts the organization kit to the Org of the store's units of
// work.
type orgPort struct{ org *orgkit.Service }

var _ store.Org = orgPort{}

// RequireAdministrator is the kit's rule of every change inside an
// organization (the CUSTOMER_EMPLOYEE application role and
// CUSTOMER_EMPLOYEE_ADMINISTRATOR in the customer), so locations and teams
// are guarded exactly like the kit's own changes.
func (p orgPort) RequireAdministrator(ctx context.Context, q sqldb.Querier, caller *principal.Caller, customerID string) error {
	_, err := p.org.AuthorizeAdministrator(ctx, q, caller, customerID)
	return err
}

// AuthorizeReader is the kit's read rule.
func (p orgPort) AuthorizeReader(ctx context.Context, q sqldb.Querier, caller *principal.Caller, customerID string) error {
	return p.org.AuthorizeReader(ctx, q, caller, customerID)
}

// Employee returns an active employee of customerID.
func (p orgPort) Employee(ctx context.Context, q sqldb.Querier, customerID, employeeID string) (app.Employee, error) {
	e, err := p.org.Repo().Employee(ctx, q, customerID, employeeID)
	if err != nil {
		return app.Employee{}, err
	}
	return toEmployee(e), nil
}

// ActiveEmployees returns the active employees of customerID among ids.
func (p orgPort) ActiveEmployees(ctx context.Context, q sqldb.Querier, customerID string, ids []string) (map[string]app.Employee, error) {
	found, err := p.org.Repo().ActiveEmployees(ctx, q, customerID, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]app.Employee, len(found))
	for id, e := range found {
		out[id] = toEmployee(e)
	}
	return out, nil
}

// EmployeeByUser returns the active employee whose user is userID.
func (p orgPort) EmployeeByUser(ctx context.Context, q sqldb.Querier, userID string) (app.Employee, error) {
	e, err := p.org.Repo().EmployeeByUserID(ctx, q, userID)
	if err != nil {
		return app.Employee{}, err
	}
	return toEmployee(e), nil
}

func toEmployee(e orgkit.Employee) app.Employee {
	return app.Employee{ID: e.ID, CustomerID: e.OrgID, UserID: e.UserID, Email: e.Email, FirstName: e.FirstName,
		LastName: e.LastName, Active: e.Status == orgkit.StatusActive}
}

// outboxPort adapts *events.Outbox, whose Append also returns the event,
// to the Outbox of the store's units of work.
type outboxPort struct{ o *events.Outbox }

// Append appends the event inside tx.
func (p outboxPort) Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error {
	_, err := p.o.Append(ctx, tx, aggregateType, aggregateID, eventType, payload)
	return err
}

// AppendAll appends the events in one batch (events.Outbox.AppendBatch).
func (p outboxPort) AppendAll(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID string, evs []app.PendingEvent) error {
	batch := make([]events.Pending, len(evs))
	for i, ev := range evs {
		batch[i] = events.Pending{Type: ev.Type, Payload: ev.Payload}
	}
	_, err := p.o.AppendBatch(ctx, tx, aggregateType, aggregateID, batch)
	return err
}
