package system

import (
	"context"
	"fmt"
	"net/http"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/bff"
	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/dealer"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/iam/authzclaims"
	"github.com/realguardio/realguardio/internal/monitoring"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

// built is a service ready to serve: its whole HTTP surface and its
// background work (outbox relays, consumers).
type built struct {
	handler http.Handler
	run     func(context.Context) error
}

// wiring is what the builders of one start share: what start opened for
// every service, and the authorization strategy's part of the wiring.
type wiring struct {
	issuer   string
	secrets  map[string]string
	bus      *natsBus
	strategy strategyWiring

	// fgaURL is the OpenFGA server's URL once openFGA has started or
	// found it; empty before.
	fgaURL string
}

// serviceBuilder builds one service from the configuration and the wiring.
// A builder opens what its service alone uses (its database), registers
// what must be released at Stop, and returns errors naming the service.
type serviceBuilder struct {
	name string
	// nats reports whether the service needs NATS (to publish or consume
	// events, or for the BFF's live pages).
	nats  bool
	build func(s *System, ctx context.Context, w *wiring) (built, error)
}

// builders are the services in the order they are built: the IAM first,
// since every other service trusts it, then the organization services
// whose facts the others read, then the services reading them. Adding a
// service is one builder here and its name in ServiceNames.
var builders = []serviceBuilder{
	{name: ServiceIAM, build: (*System).buildIAM},
	{name: ServiceCustomer, nats: true, build: (*System).buildCustomer},
	{name: ServiceDealer, nats: true, build: (*System).buildDealer},
	{name: ServiceMonitoring, nats: true, build: (*System).buildMonitoring},
	{name: ServiceAuthzSync, nats: true, build: (*System).buildAuthzSync},
	{name: ServiceSecuritySystem, nats: true, build: (*System).buildSecuritySystem},
	{name: ServiceBFF, nats: true, build: (*System).buildBFF},
}

// strategyWiring is what one authorization strategy of the Security
// System Service changes in the wiring, so that the builders hold no
// branch on the strategy's name: each strategy's whole difference is its
// entry in strategies.
type strategyWiring struct {
	// services are the services only this strategy runs under `up`.
	services []string
	// iam adds the strategy's dependencies of the IAM Service.
	iam func(s *System, w *wiring, deps *iam.Deps) error
	// securitySystem adds the strategy's dependencies of the Security
	// System Service.
	securitySystem func(s *System, ctx context.Context, w *wiring, deps *securitysystem.Deps) error
}

// strategies holds the wiring of every strategy Config.Validate accepts
// ("none" only with AllowNoAuthz). The strategies without an entry's
// fields (fetch, replicate, none) need nothing beyond the common wiring:
// the Security System Service reads the facts endpoints or its replica.
var strategies = map[string]strategyWiring{
	"none":      {},
	"fetch":     {},
	"replicate": {},
	"provide": {
		// Only the provide strategy puts authorization data in the
		// token; with any other, logins must not depend on the
		// organization services.
		iam: func(s *System, w *wiring, deps *iam.Deps) error {
			hook, err := authzclaims.New(authzclaims.Config{
				CustomerURL:   s.URLs[ServiceCustomer],
				DealerURL:     s.URLs[ServiceDealer],
				MonitoringURL: s.URLs[ServiceMonitoring],
				Logger:        s.log(ServiceIAM),
			}, nil)
			if err != nil {
				return err
			}
			deps.AuthorizationClaims = hook
			return nil
		},
		securitySystem: func(s *System, _ context.Context, _ *wiring, _ *securitysystem.Deps) error {
			if s.cfg.Only != "" {
				// Served alone, so the IAM runs elsewhere. The claims
				// are minted by the IAM only when it runs with provide
				// too; otherwise every decision here is a 403 while
				// everything reports ready.
				s.log(ServiceSecuritySystem).Warn("the provide strategy reads the authorization claims the IAM Service adds only when it runs with REALGUARDIO_AUTHZ=provide (--authz=provide) too; without it every decision is a denial")
			}
			return nil
		},
	},
	"delegate": {
		// The authorization sync keeps OpenFGA's tuples up to date from
		// the events.
		services: []string{ServiceAuthzSync},
		securitySystem: func(s *System, ctx context.Context, w *wiring, deps *securitysystem.Deps) error {
			fgaURL, err := s.openFGA(ctx, w)
			if err != nil {
				return err
			}
			if deps.FGA, err = s.newFGAClient(fgaURL); err != nil {
				return fmt.Errorf("securitysystem: %w", err)
			}
			return nil
		},
	},
}

// strategyOnly reports whether service runs only with the strategies that
// list it (the authorization sync with delegate).
func strategyOnly(service string) bool {
	for _, st := range strategies {
		for _, name := range st.services {
			if name == service {
				return true
			}
		}
	}
	return false
}

func (s *System) buildIAM(ctx context.Context, w *wiring) (built, error) {
	cfg := s.cfg
	db, err := s.openDB(ctx, ServiceIAM)
	if err != nil {
		return built{}, err
	}
	keks, err := cfg.keyEncryptionKeys()
	if err != nil {
		return built{}, fmt.Errorf("iam: %w", err)
	}
	bffURL := s.URLs[ServiceBFF]
	svcSecrets := map[string]string{}
	for svc, id := range clientIDs {
		svcSecrets[id] = w.secrets[svc]
	}
	clients := iam.DefaultClients(bffURL+"/auth/callback", bffURL+"/", svcSecrets, w.secrets[ServiceBFF])
	for i := range clients {
		if clients[i].ID == iam.ClientBFF {
			// Back-channel logout ends the BFF's sessions when the IAM
			// ends the user's (docs/bff-sessions.md).
			clients[i].BackchannelLogoutURI = bffURL + bff.BackchannelLogoutPath
		}
	}
	deps := iam.Deps{Logger: s.log(ServiceIAM), DB: db}
	if w.strategy.iam != nil {
		if err := w.strategy.iam(s, w, &deps); err != nil {
			return built{}, fmt.Errorf("iam: %w", err)
		}
	}
	svc, err := iam.New(ctx, iam.Config{
		Issuer:                w.issuer,
		AdminPassword:         cfg.AdminPassword,
		Clients:               clients,
		AccessTokenLifetime:   cfg.AccessTokenLifetime,
		RefreshReuseGrace:     reuseGrace(cfg.RefreshReuseGrace),
		MaxAccessTokenBytes:   cfg.MaxAccessTokenBytes,
		KeyPublishAhead:       publishAhead(cfg.KeyPublishAhead),
		TrustedProxies:        cfg.trustedProxies,
		KeyEncryptionKeys:     keks,
		SessionLifetime:       cfg.SessionLifetime,
		SessionIdleTimeout:    cfg.SessionIdleTimeout,
		RequireMFAForAdmin:    cfg.RequireMFAForAdmin,
		PasswordResetLifetime: cfg.PasswordResetLifetime,
	}, deps)
	if err != nil {
		return built{}, fmt.Errorf("iam: %w", err)
	}
	s.IAM = svc
	s.AdminPassword = svc.GeneratedAdminPassword()
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildCustomer(ctx context.Context, w *wiring) (built, error) {
	db, err := s.openDB(ctx, ServiceCustomer)
	if err != nil {
		return built{}, err
	}
	svc, err := customer.New(ctx, customer.Config{
		Issuer:          w.issuer,
		IAMClientID:     clientIDs[ServiceCustomer],
		IAMClientSecret: w.secrets[ServiceCustomer],
	}, customer.Deps{Logger: s.log(ServiceCustomer), DB: db, JS: w.bus.js(ServiceCustomer),
		Memberships: customer.RelayMemberships{DealerURL: s.URLs[ServiceDealer], MonitoringURL: s.URLs[ServiceMonitoring]}})
	if err != nil {
		return built{}, fmt.Errorf("customer: %w", err)
	}
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildDealer(ctx context.Context, w *wiring) (built, error) {
	db, err := s.openDB(ctx, ServiceDealer)
	if err != nil {
		return built{}, err
	}
	svc, err := dealer.New(ctx, dealer.Config{
		Issuer:          w.issuer,
		IAMClientID:     clientIDs[ServiceDealer],
		IAMClientSecret: w.secrets[ServiceDealer],
	}, dealer.Deps{Logger: s.log(ServiceDealer), DB: db, JS: w.bus.js(ServiceDealer)})
	if err != nil {
		return built{}, fmt.Errorf("dealer: %w", err)
	}
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildMonitoring(ctx context.Context, w *wiring) (built, error) {
	db, err := s.openDB(ctx, ServiceMonitoring)
	if err != nil {
		return built{}, err
	}
	svc, err := monitoring.New(ctx, monitoring.Config{
		Issuer:          w.issuer,
		IAMClientID:     clientIDs[ServiceMonitoring],
		IAMClientSecret: w.secrets[ServiceMonitoring],
	}, monitoring.Deps{Logger: s.log(ServiceMonitoring), DB: db, JS: w.bus.js(ServiceMonitoring)})
	if err != nil {
		return built{}, fmt.Errorf("monitoring: %w", err)
	}
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildAuthzSync(ctx context.Context, w *wiring) (built, error) {
	// OpenFGA first: Stop closes in reverse order, so an embedded server
	// outlives the service that writes to it.
	fgaURL, err := s.openFGA(ctx, w)
	if err != nil {
		return built{}, err
	}
	db, err := s.openDB(ctx, ServiceAuthzSync)
	if err != nil {
		return built{}, err
	}
	client, err := s.newFGAClient(fgaURL)
	if err != nil {
		return built{}, fmt.Errorf("authzsync: %w", err)
	}
	svc, err := authzsync.New(ctx, authzsync.Config{}, authzsync.Deps{Logger: s.log(ServiceAuthzSync), DB: db, JS: w.bus.js(ServiceAuthzSync), FGA: client})
	if err != nil {
		return built{}, fmt.Errorf("authzsync: %w", err)
	}
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildSecuritySystem(ctx context.Context, w *wiring) (built, error) {
	cfg := s.cfg
	deps := securitysystem.Deps{Logger: s.log(ServiceSecuritySystem)}
	if w.strategy.securitySystem != nil {
		if err := w.strategy.securitySystem(s, ctx, w, &deps); err != nil {
			return built{}, err
		}
	}
	db, err := s.openDB(ctx, ServiceSecuritySystem)
	if err != nil {
		return built{}, err
	}
	validator, err := auth.NewValidator(auth.Options{Issuer: w.issuer, Audience: iam.AudienceSecuritySystem, Logger: s.log(ServiceSecuritySystem)})
	if err != nil {
		return built{}, fmt.Errorf("securitysystem: %w", err)
	}
	deps.DB, deps.JS, deps.Validator = db, w.bus.js(ServiceSecuritySystem), validator
	svc, err := securitysystem.New(ctx, securitysystem.Config{
		Issuer:        w.issuer,
		Strategy:      cfg.Authz,
		AllowNoAuthz:  cfg.AllowNoAuthz,
		CustomerURL:   s.URLs[ServiceCustomer],
		DealerURL:     s.URLs[ServiceDealer],
		MonitoringURL: s.URLs[ServiceMonitoring],
		ClientID:      clientIDs[ServiceSecuritySystem],
		ClientSecret:  w.secrets[ServiceSecuritySystem],
	}, deps)
	if err != nil {
		return built{}, fmt.Errorf("securitysystem: %w", err)
	}
	s.SecuritySystem = svc
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

func (s *System) buildBFF(ctx context.Context, w *wiring) (built, error) {
	cfg := s.cfg
	keys, err := s.sessionKeys()
	if err != nil {
		return built{}, err
	}
	db, err := s.openDB(ctx, ServiceBFF)
	if err != nil {
		return built{}, err
	}
	svc, err := bff.New(ctx, bff.Config{
		PublicURL:         s.URLs[ServiceBFF],
		Issuer:            w.issuer,
		ClientSecret:      w.secrets[ServiceBFF],
		SessionKeys:       keys,
		SecuritySystemURL: s.URLs[ServiceSecuritySystem],
		CustomerURL:       s.URLs[ServiceCustomer],
		DealerURL:         s.URLs[ServiceDealer],
		MonitoringURL:     s.URLs[ServiceMonitoring],
		Strategy:          cfg.Authz,
		TokenLifetime:     cfg.AccessTokenLifetime,
	}, bff.Deps{Logger: s.log(ServiceBFF), DB: db, Events: w.bus.conn(ServiceBFF)})
	if err != nil {
		return built{}, fmt.Errorf("bff: %w", err)
	}
	s.onClose(svc.Close)
	return built{svc.Handler(), svc.Run}, nil
}

// openFGA returns the URL of the OpenFGA server, starting the embedded one
// (startOpenFGA) at the first call of a start.
func (s *System) openFGA(ctx context.Context, w *wiring) (string, error) {
	if w.fgaURL == "" {
		u, err := s.startOpenFGA(ctx)
		if err != nil {
			return "", err
		}
		w.fgaURL = u
	}
	return w.fgaURL, nil
}

// newFGAClient returns a client of the OpenFGA server at url.
func (s *System) newFGAClient(url string) (*fga.Client, error) {
	return fga.New(fga.Config{URL: url, APIToken: s.fgaToken, Timeout: s.cfg.OpenFGATimeout, MaxTuplesPerWrite: s.fgaWriteLimit()}, nil, nil)
}
