package keybroker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	exchanges  *prometheus.CounterVec
	stsLatency prometheus.Histogram
	replays    prometheus.Counter
	active     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chancery_keybroker_exchanges_total",
			Help: "Proof exchanges by outcome: issued, malformed, rejected, replayed, unbound, throttled, sts_error, internal_error.",
		}, []string{"outcome"}),
		stsLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chancery_keybroker_sts_request_duration_seconds",
			Help:    "Time STS took to answer a forwarded GetCallerIdentity.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chancery_keybroker_replays_refused_total",
			Help: "Proofs refused because they had been used before.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chancery_keybroker_keys_active",
			Help: "API keys currently valid in this replica's index.",
		}),
	}
	if reg != nil {
		m.exchanges = register(reg, m.exchanges)
		m.stsLatency = register(reg, m.stsLatency)
		m.replays = register(reg, m.replays)
		m.active = register(reg, m.active)
	}
	return m
}

// register registers c, or returns the collector already registered under its name
// (a second broker on one registry shares the metrics instead of panicking).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			if existing, ok := dup.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("keybroker: register metric: " + err.Error())
	}
	return c
}
