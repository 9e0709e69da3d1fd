package events

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

func TestSubjectWithin(t *testing.T) {
	for _, tc := range []struct {
		filter, pattern string
		want            bool
	}{
		{"realguardio.customer.>", "realguardio.customer.>", true},
		{"realguardio.customer.employee_roles_set", "realguardio.customer.>", true},
		{"realguardio.customer.*", "realguardio.customer.>", true},
		{"realguardio.customer", "realguardio.customer.>", false},
		{"realguardio.dealer.created", "realguardio.customer.>", false},
		{"realguardio.>", "realguardio.customer.>", false},
		{"realguardio.*.created", "realguardio.customer.>", false},
		{"a.b", "a.*", true},
		{"a.>", "a.*", false},
		{"a.b.c", "a.*", false},
	} {
		if got := subjectWithin(tc.filter, tc.pattern); got != tc.want {
			t.Errorf("subjectWithin(%q, %q) = %v, want %v", tc.filter, tc.pattern, got, tc.want)
		}
	}
	if StreamName("", ProducerSecuritySystem) != "REALGUARDIO_SECURITYSYSTEM" || Subject("", "customer.created") != "realguardio.customer.created" {
		t.Error("default stream name or subject differs from docs/events.md")
	}
}

func TestConsumerMetricsReRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := ConsumerConfig{Name: "x", Streams: []string{"S"}, DB: &sqldb.DB{}, JS: nopJS{}, Handler: func(context.Context, *sqldb.Tx, Event) error { return nil }, Registry: reg}
	for range 2 {
		if _, err := NewConsumer(cfg); err != nil {
			t.Fatalf("NewConsumer with a registry used before: %v", err)
		}
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

type nopJS struct{ jetstream.JetStream }
