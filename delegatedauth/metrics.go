package delegatedauth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/internal/metrics"
)

// Metrics are the Prometheus metrics of Refreshers, labelled by instance name. One
// Metrics serves any number of Refreshers; a nil *Metrics records nothing.
type Metrics struct {
	attempts *prometheus.CounterVec
	failures *prometheus.GaugeVec
	managed  *prometheus.GaugeVec
	expiry   *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (if not nil). Called
// again with the same registry, it returns Metrics that share the collectors already
// registered, so each component that needs them can ask. It panics only when reg holds
// a different collector under one of these names, a programming error, as
// prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chancery_delegatedauth_refreshes_total",
			Help: "Attempts to get an API key by delegated auth, by instance and outcome (success, failure).",
		}, []string{"instance", "outcome"}),
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chancery_delegatedauth_consecutive_failures",
			Help: "Failed attempts since the last success, by instance.",
		}, []string{"instance"}),
		managed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chancery_delegatedauth_key_managed",
			Help: "1 when the instance serves a managed key, 0 when it serves the static key or none.",
		}, []string{"instance"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chancery_delegatedauth_key_expiry_timestamp_seconds",
			Help: "When the served managed key expires (Unix time); 0 when unknown or not managed.",
		}, []string{"instance"}),
	}
	if reg != nil {
		m.attempts = metrics.Register(reg, "delegatedauth", m.attempts)
		m.failures = metrics.Register(reg, "delegatedauth", m.failures)
		m.managed = metrics.Register(reg, "delegatedauth", m.managed)
		m.expiry = metrics.Register(reg, "delegatedauth", m.expiry)
	}
	return m
}

// record notes one attempt's outcome and the key served after it.
func (m *Metrics) record(instance string, ok bool, failures int, k Key) {
	if m == nil {
		return
	}
	outcome := "failure"
	if ok {
		outcome = "success"
	}
	m.attempts.WithLabelValues(instance, outcome).Inc()
	m.failures.WithLabelValues(instance).Set(float64(failures))
	managed, expiry := 0.0, 0.0
	if k.Managed {
		managed = 1
		if !k.Expires.IsZero() {
			expiry = float64(k.Expires.Unix())
		}
	}
	m.managed.WithLabelValues(instance).Set(managed)
	m.expiry.WithLabelValues(instance).Set(expiry)
}

// forget deletes the series of instance, so that a stopped refresher is not exported
// as still serving its last key.
func (m *Metrics) forget(instance string) {
	if m == nil {
		return
	}
	m.attempts.DeletePartialMatch(prometheus.Labels{"instance": instance})
	m.failures.DeleteLabelValues(instance)
	m.managed.DeleteLabelValues(instance)
	m.expiry.DeleteLabelValues(instance)
}
