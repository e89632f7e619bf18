package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/internal/metrics"
)

func TestRegisterTwiceSharesTheCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "chancery_test_total", Help: "test"}
	a := metrics.Register(reg, "test", prometheus.NewCounter(opts))
	b := metrics.Register(reg, "test", prometheus.NewCounter(opts))
	if a != b {
		t.Fatal("second registration did not return the first collector")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a different collector under the same name did not panic")
		}
	}()
	metrics.Register(reg, "test", prometheus.NewGauge(prometheus.GaugeOpts{Name: "chancery_test_total", Help: "test"}))
}
