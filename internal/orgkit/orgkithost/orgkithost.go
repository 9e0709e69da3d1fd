// Package orgkithost is the wiring the three organization services
// (customer, dealer, monitoring provider) share around package orgkit: the
// defaults of their dependencies (logger, metrics registry, token validator,
// IAM accounts), the operational HTTP surface and the outbox relay. Each
// service keeps its own Config, Deps and New, and calls these so that what
// is the same in all three is written once; what differs (its own tables,
// routes, consumers and checks) stays in the service.
package orgkithost

import (
	"context"
	"golang.org/x/sync/errgroup"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/contract/iamaccounts"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// IAM says how a service reaches the IAM Service when it has to build its
// own validator or accounts client.
type IAM struct {
	// Issuer is the IAM's issuer URL; Audience the service's token
	// audience.
	Issuer   string
	Audience string
	// ClientID and ClientSecret are the service's client credentials for
	// the IAM user API.
	ClientID     string
	ClientSecret string
	// HTTPClient calls the IAM (nil means each client's own default).
	HTTPClient *http.Client
}

// Host holds the resources an organization service runs with. The
// service's caller may supply any of Logger, Registry, Validator and
// Accounts; New builds the missing ones. DB is required.
type Host struct {
	// Name is the service's name in logs and metrics.
	Name string
	// Logger is the service's logger, tagged with the service name by New.
	Logger *slog.Logger
	// DB is the service's own database.
	DB *sqldb.DB
	// Registry receives the service's metrics.
	Registry *prometheus.Registry
	// Validator validates the access tokens of incoming requests.
	Validator *auth.Validator
	// Accounts provisions employees' IAM accounts.
	Accounts orgkit.Accounts

	iamReachable func(ctx context.Context) error
	// relay is the outbox relay Relay built, for readiness; a pointer so
	// that Host values are copied freely before New.
	relay *atomic.Pointer[events.Relay]
}

// New completes h and migrates h.DB with migrations, in the order every
// organization service needs: the logger and registry first (the validator
// reports into them), then the migrations, then the validator and the IAM
// accounts client, neither of which contacts the IAM yet, so a service can
// start while the IAM Service is still down.
func New(ctx context.Context, h Host, iam IAM, migrations ...sqldb.Migrations) (*Host, error) {
	if h.Logger == nil {
		h.Logger = slog.Default()
	}
	h.Logger = h.Logger.With("service", h.Name)
	h.relay = new(atomic.Pointer[events.Relay])
	if h.Registry == nil {
		h.Registry = httpx.NewRegistry()
	}
	if err := h.DB.Migrate(ctx, migrations...); err != nil {
		return nil, err
	}
	if h.Validator == nil {
		v, err := auth.NewValidator(auth.Options{Issuer: iam.Issuer, Audience: iam.Audience, HTTPClient: iam.HTTPClient, Logger: h.Logger, Registry: h.Registry})
		if err != nil {
			return nil, err
		}
		h.Validator = v
	}
	h.iamReachable = httpx.Reachable("the IAM Service", strings.TrimRight(iam.Issuer, "/")+"/.well-known/openid-configuration", iam.HTTPClient)
	if h.Accounts == nil {
		h.Accounts = orgkit.IAMAccounts{Client: iamaccounts.New(iam.Issuer, iam.ClientID, iam.ClientSecret, iam.HTTPClient)}
	}
	return &h, nil
}

// Handler returns the service's whole HTTP surface: routes behind the
// token validator, wrapped by the operational endpoints, which report
// ready only while the database answers, the IAM's keys are known and the
// outbox relay publishes (a relay that cannot leaves the service's changes
// committed but reaching no consumer), and degraded while the IAM cannot
// be reached (tokens are still validated with the keys held, but no
// employee can be created or disabled).
func (h *Host) Handler(routes http.Handler) http.Handler {
	ops := &httpx.Ops{
		Service:  h.Name,
		Registry: h.Registry,
		Logger:   h.Logger,
		Ready: []httpx.ReadyCheck{
			{Name: "database", Check: h.DB.Ping},
			{Name: "iam-keys", Check: h.Validator.Ready},
			{Name: "iam", Check: h.reachable, Optional: true},
			{Name: "outbox-relay", Check: h.relayReady},
		},
	}
	return ops.Handler(h.Validator.Middleware(httpx.Routes(routes)))
}

func (h *Host) reachable(ctx context.Context) error {
	if h.iamReachable == nil {
		return nil // a Host built without New: no IAM to reach
	}
	return h.iamReachable(ctx)
}

// relayReady reports the relay's health (events.Relay.Err). Before Relay
// is called, and in a service run without JetStream, there is no relay and
// nothing to report.
func (h *Host) relayReady(context.Context) error {
	if h.relay == nil {
		return nil // a Host built without New
	}
	if r := h.relay.Load(); r != nil {
		return r.Err()
	}
	return nil
}

// Relay returns the relay publishing outbox to js under the subject prefix
// (events.DefaultPrefix when empty), with its metrics in the registry, and
// makes its health part of the readiness of Handler. Extra options (tests
// shorten the lease) follow the defaults.
func (h *Host) Relay(js jetstream.JetStream, outbox *events.Outbox, prefix string, opts ...events.RelayOption) *events.Relay {
	r := events.NewRelay(h.DB, js, outbox, h.Logger,
		append([]events.RelayOption{events.WithSubjectPrefix(prefix), events.WithRelayMetrics(h.Registry)}, opts...)...)
	if h.relay != nil {
		h.relay.Store(r)
	}
	return r
}

// RunAll runs every function until ctx ends or one fails, and then stops
// the others, so the caller sees the failure instead of a half-working
// service. It returns the first failure, or nil on cancellation.
func RunAll(ctx context.Context, fns ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, fn := range fns {
		g.Go(func() error {
			// An error caused by the caller's cancellation is the
			// shutdown, not a failure.
			if err := fn(gctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// Config is the configuration every organization service shares; each
// service's Config is this type, with its own default audience.
type Config struct {
	// Issuer is the IAM Service's issuer URL: tokens must come from it, and
	// the IAM user API is found through its discovery document.
	Issuer string
	// Audience is the service's token audience (the service's default when
	// empty).
	Audience string
	// IAMClientID and IAMClientSecret are the client credentials with which
	// the service creates and disables employees' IAM accounts. The client
	// id defaults to the audience, as the IAM names service clients. Unused
	// when the service is given its accounts port.
	IAMClientID     string
	IAMClientSecret string
	// EventPrefix replaces events.DefaultPrefix in event subjects and
	// stream names; tests sharing a NATS server isolate their streams with
	// it.
	EventPrefix string
}

// WithDefaults returns c with the audience and the IAM client id set to
// audience where they are empty.
func (c Config) WithDefaults(audience string) Config {
	if c.Audience == "" {
		c.Audience = audience
	}
	if c.IAMClientID == "" {
		c.IAMClientID = c.Audience
	}
	return c
}

// Validate reports every invalid setting, each named by its flag.
func (c Config) Validate() error {
	var p config.Problems
	p.CheckHTTPURL("issuer", c.Issuer)
	return p.Err()
}

// IAM returns how the service reaches the IAM Service with c.
func (c Config) IAM(httpClient *http.Client) IAM {
	return IAM{Issuer: c.Issuer, Audience: c.Audience, ClientID: c.IAMClientID, ClientSecret: c.IAMClientSecret, HTTPClient: httpClient}
}
