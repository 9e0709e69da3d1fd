package events

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/metrics"
)

// register registers c with reg and returns the collector to use: the one
// already registered under the same name when another relay or consumer of
// the process registered it first, so all of them share one metric family
// (metrics.Share). A name reused with other labels is a programming error
// the metrics tests catch; the component then counts on its own collector.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	shared, _ := metrics.Share(reg, c)
	return shared
}

type relayMetrics struct {
	pub, fail prometheus.Counter
}

func newRelayMetrics(reg prometheus.Registerer, producer string) *relayMetrics {
	pub := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_events_published_total",
		Help: "Events the outbox relay published to JetStream (acknowledged).",
	}, []string{"producer"}))
	fail := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_events_publish_failures_total",
		Help: "Failed publish attempts of the outbox relay; each is retried.",
	}, []string{"producer"}))
	return &relayMetrics{pub: pub.WithLabelValues(producer), fail: fail.WithLabelValues(producer)}
}

func (m *relayMetrics) published() { m.pub.Inc() }
func (m *relayMetrics) failed()    { m.fail.Inc() }

type consumerMetrics struct {
	applied, failures, parked, anomalies, stale, refused *prometheus.CounterVec
}

func newConsumerMetrics(reg prometheus.Registerer) *consumerMetrics {
	vec := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"consumer", "stream"}))
	}
	return &consumerMetrics{
		applied:   vec("realguardio_events_applied_total", "Events a consumer applied (committed with its handler)."),
		failures:  vec("realguardio_events_handler_failures_total", "Handler failures of a consumer; the event is retried or parked."),
		parked:    vec("realguardio_events_parked_total", "Events a consumer parked after its handler kept failing; operators must look at them (ListParked, Replay)."),
		anomalies: vec("realguardio_events_sequence_anomalies_total", "Events whose aggregate sequence was not the previous one plus one: a gap blocks a consumer with OnFailure Block (an alarm), and is applied and counted under Park."),
		stale:     vec("realguardio_events_stale_skipped_total", "Events a consumer skipped without applying because a later event of their aggregate was already applied."),
		refused:   vec("realguardio_events_unattributed_total", "Messages a consumer refused because they cannot be attributed to the stream's owner (wrong producer or subject); an alarm."),
	}
}

// consumerCollector reports the lag of a consumer at scrape time.
type consumerCollector struct {
	c       *Consumer
	lag     *prometheus.Desc
	last    *prometheus.Desc
	pending *prometheus.Desc
	blocked *prometheus.Desc
}

func newConsumerCollector(c *Consumer) *consumerCollector {
	labels := prometheus.Labels{"consumer": c.cfg.Name}
	return &consumerCollector{
		c: c,
		lag: prometheus.NewDesc("realguardio_events_consumer_lag_seconds",
			"Age of the newest applied event while the consumer has events pending, 0 when caught up.", []string{"stream"}, labels),
		last: prometheus.NewDesc("realguardio_events_consumer_last_event_timestamp_seconds",
			"OccurredAt of the newest event the consumer applied.", []string{"stream"}, labels),
		pending: prometheus.NewDesc("realguardio_events_consumer_pending",
			"Events of the stream not yet applied by the consumer, as last reported by JetStream.", []string{"stream"}, labels),
		blocked: prometheus.NewDesc("realguardio_events_consumer_blocked",
			"1 while the stream is blocked on an event that keeps failing (OnFailure Block), else 0.", []string{"stream"}, labels),
	}
}

func (cc *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.lag
	ch <- cc.last
	ch <- cc.pending
	ch <- cc.blocked
}

func (cc *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range cc.c.Progress() {
		ch <- prometheus.MustNewConstMetric(cc.lag, prometheus.GaugeValue, p.Lag().Seconds(), p.Stream)
		if !p.LastEventTime.IsZero() {
			ch <- prometheus.MustNewConstMetric(cc.last, prometheus.GaugeValue, float64(p.LastEventTime.UnixNano())/1e9, p.Stream)
		}
		ch <- prometheus.MustNewConstMetric(cc.pending, prometheus.GaugeValue, float64(p.Pending), p.Stream)
		blocked := 0.0
		if p.BlockedEventID != "" {
			blocked = 1
		}
		ch <- prometheus.MustNewConstMetric(cc.blocked, prometheus.GaugeValue, blocked, p.Stream)
	}
}
