package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/metrics"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// backlogCollector reports, at scrape time, the relay's outbox backlog: how
// many rows wait to be published and how long the oldest has waited. One
// query on the unsent index per scrape; a failed query reports nothing
// (the scrape shows the gap) rather than a misleading zero.
type backlogCollector struct {
	db     *sqldb.DB
	unsent *prometheus.Desc
	oldest *prometheus.Desc
}

func newBacklogCollector(db *sqldb.DB, producer string) *backlogCollector {
	labels := prometheus.Labels{"producer": producer}
	return &backlogCollector{
		db: db,
		unsent: prometheus.NewDesc("realguardio_events_outbox_unsent",
			"Outbox rows not yet published to JetStream.", nil, labels),
		oldest: prometheus.NewDesc("realguardio_events_outbox_oldest_unsent_age_seconds",
			"Age of the oldest outbox row not yet published, 0 when none waits.", nil, labels),
	}
}

// registerBacklog registers the backlog gauges of a relay; the newest relay
// of a producer reports (a service restarted in one process).
func registerBacklog(reg prometheus.Registerer, db *sqldb.DB, producer string) {
	if reg == nil {
		return
	}
	_ = metrics.Replace(reg, newBacklogCollector(db, producer))
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.unsent
	ch <- c.oldest
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	var oldest *int64
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(occurred_at) FROM event_outbox WHERE sent_at IS NULL`).Scan(&n, &oldest); err != nil {
		return
	}
	age := 0.0
	if oldest != nil && n > 0 {
		age = max(time.Since(sqldb.FromMicros(*oldest)).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.unsent, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
