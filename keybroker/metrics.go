package keybroker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	exchanges  *prometheus.CounterVec
	stsLatency prometheus.Histogram
	replays    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, idx *index) *metrics {
	m := &metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chancery_keybroker_exchanges_total",
			Help: "Proof exchanges by outcome: issued, malformed, rejected, replayed, unbound, sts_error, internal_error.",
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
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chancery_keybroker_keys_active",
		Help: "API keys currently valid in this replica's index.",
	}, func() float64 { return float64(idx.size()) })
	if reg != nil {
		reg.MustRegister(m.exchanges, m.stsLatency, m.replays, active)
	}
	return m
}
