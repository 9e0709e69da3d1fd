// Package metrics holds the two ways a RealGuardIO component registers its
// Prometheus collectors when another component of the same name may have
// registered first in the same process (a service rebuilt by a test, or
// restarted inside `up`).
//
// Replace is for collectors that read one component's state (a breaker, a
// consumer, a client): the newest component must be the one that reports.
// Share is for counters and histograms that many components add to (the
// decisions of every strategy): they all use the first collector, so the
// series keep counting instead of starting again.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Replace registers col in reg, unregistering a collector with the same
// descriptions first. A nil reg registers nothing.
func Replace(reg prometheus.Registerer, col prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(col)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(col)
	}
	return err
}

// Share registers c in reg and returns it, or returns the collector of the
// same type already registered under the same descriptions. A nil reg
// registers nothing and returns c. Any other registration error (a name
// reused with other labels) is returned.
func Share[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
