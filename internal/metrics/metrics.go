// Package metrics holds what Chancery's packages share about their Prometheus metrics.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the equal collector reg already has, so
// that building a component twice on one registry (a test, a reload) shares its
// metrics instead of panicking. A different collector under the same name is a
// programming error and panics, naming owner.
func Register[C prometheus.Collector](reg prometheus.Registerer, owner string, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("%s: register metrics: %v", owner, err))
}
