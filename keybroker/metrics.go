package keybroker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/internal/metrics"
)

type brokerMetrics struct {
	exchanges  *prometheus.CounterVec
	stsLatency prometheus.Histogram
	replays    prometheus.Counter
	active     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *brokerMetrics {
	m := &brokerMetrics{
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
		m.exchanges = metrics.Register(reg, "keybroker", m.exchanges)
		m.stsLatency = metrics.Register(reg, "keybroker", m.stsLatency)
		m.replays = metrics.Register(reg, "keybroker", m.replays)
		m.active = metrics.Register(reg, "keybroker", m.active)
	}
	return m
}
