package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPrefix is the first token of every event subject and, upper-cased,
// of every stream name (docs/events.md). Tests use other prefixes so that
// they can share one NATS server without seeing each other's events.
const DefaultPrefix = "realguardio"

// The producers, one stream each.
const (
	ProducerCustomer       = "customer"
	ProducerDealer         = "dealer"
	ProducerMonitoring     = "monitoring"
	ProducerSecuritySystem = "securitysystem"
)

// Producers lists every producer, in the order their streams are created.
var Producers = []string{ProducerCustomer, ProducerDealer, ProducerMonitoring, ProducerSecuritySystem}

// Defaults of StreamOptions.
const (
	// DefaultStreamMaxAge keeps events for 30 days: a replica that is lost or
	// must be rebuilt is rebuilt by replaying its source streams from the
	// start, so the streams must hold at least every event a rebuild needs.
	// Set events carry whole values, so replaying the last 30 days restores
	// everything changed in that time; an older state needs a snapshot or a
	// longer age.
	DefaultStreamMaxAge = 30 * 24 * time.Hour
	// DefaultDuplicates is JetStream's de-duplication window: a relay that
	// republishes an event (after a crash between publish and marking the
	// row sent, or two relays racing) within it is stored once.
	DefaultDuplicates = 2 * time.Minute
)

// StreamOptions configures EnsureStreams. The zero value gives the streams
// of docs/events.md.
type StreamOptions struct {
	// Prefix replaces DefaultPrefix; tests set a unique one.
	Prefix string
	// MaxAge is how long events are kept (DefaultStreamMaxAge when zero).
	MaxAge time.Duration
	// Duplicates is the de-duplication window (DefaultDuplicates when zero).
	Duplicates time.Duration
	// Replicas is the number of stream replicas in a cluster (1 when zero).
	Replicas int
	// Producers limits the streams created (all of Producers when empty).
	Producers []string
}

func prefixOr(p string) string {
	if p == "" {
		return DefaultPrefix
	}
	return p
}

// StreamName returns the stream of producer under prefix, for example
// "REALGUARDIO_CUSTOMER"; an empty prefix means DefaultPrefix.
func StreamName(prefix, producer string) string {
	return strings.ToUpper(prefixOr(prefix) + "_" + producer)
}

// Subject returns the subject an event of eventType is published on, for
// example "realguardio.customer.employee_roles_set"; an empty prefix means
// DefaultPrefix.
func Subject(prefix, eventType string) string {
	return prefixOr(prefix) + "." + eventType
}

// EnsureStreams creates or updates one file-backed stream per producer,
// capturing prefix.<producer>.>, with the de-duplication window and age
// limit of opts. It is idempotent, so every process may call it at start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts StreamOptions) error {
	producers := opts.Producers
	if len(producers) == 0 {
		producers = Producers
	}
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultStreamMaxAge
	}
	dup := opts.Duplicates
	if dup == 0 {
		dup = DefaultDuplicates
	}
	replicas := opts.Replicas
	if replicas == 0 {
		replicas = 1
	}
	for _, p := range producers {
		cfg := jetstream.StreamConfig{
			Name:        StreamName(opts.Prefix, p),
			Description: "RealGuardIO events of the " + p + " service",
			Subjects:    []string{prefixOr(opts.Prefix) + "." + p + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      maxAge,
			Duplicates:  dup,
			Replicas:    replicas,
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
