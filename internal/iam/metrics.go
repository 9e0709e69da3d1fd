package iam

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the IAM Service's own counters.
type metrics struct {
	tokens        *prometheus.CounterVec
	replays       *prometheus.CounterVec
	loginFailures *prometheus.CounterVec
	logins        prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_iam_tokens_issued_total",
			Help: "Access tokens issued, by grant type.",
		}, []string{"grant_type"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_iam_token_replays_total",
			Help: "Replayed authorization codes and refresh tokens, each of which revoked a token family.",
		}, []string{"kind"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_iam_login_failures_total",
			Help: "Failed logins, by reason (credentials, throttled, csrf, totp, reset_code).",
		}, []string{"reason"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "realguardio_iam_logins_total",
			Help: "Successful logins.",
		}),
	}
	reg.MustRegister(m.tokens, m.replays, m.loginFailures, m.logins)
	return m
}

// registerKeyAge exports the age of the key that signs now, so an alert can
// say when rotation stopped; -1 while no key is active.
func registerKeyAge(reg *prometheus.Registry, keys *keyManager, now func() time.Time) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "realguardio_iam_signing_key_age_seconds",
		Help: "Age of the IAM signing key that signs now (-1 when none is active).",
	}, func() float64 {
		k, err := keys.current()
		if err != nil {
			return -1
		}
		return now().Sub(k.createdAt).Seconds()
	}))
}
