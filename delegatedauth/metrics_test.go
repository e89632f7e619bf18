package delegatedauth

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// series lists "name{instance}" for every series of the delegatedauth metrics in reg.
func series(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		name := strings.TrimPrefix(mf.GetName(), "chancery_delegatedauth_")
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s{%s}", name, strings.Join(labels, ",")))
		}
	}
	sort.Strings(out)
	return out
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	first := NewMetrics(reg)
	second := NewMetrics(reg) // MustRegister panicked here
	first.record("a", true, 0, Key{Managed: true})
	second.record("b", false, 2, Key{})
	want := "[consecutive_failures{a} consecutive_failures{b} key_expiry_timestamp_seconds{a} key_expiry_timestamp_seconds{b} " +
		"key_managed{a} key_managed{b} refreshes_total{a,success} refreshes_total{b,failure}]"
	if got := fmt.Sprint(series(t, reg)); got != want {
		t.Errorf("series:\n got %s\nwant %s", got, want)
	}
	if f := gaugeOf(t, reg, "chancery_delegatedauth_consecutive_failures", "b"); f != 2 {
		t.Errorf("consecutive_failures{b} = %v, want 2 (recorded through the second Metrics)", f)
	}
}

func TestNewMetricsConflictingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chancery_delegatedauth_key_managed", Help: "other"}, []string{"tenant"}))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "delegatedauth: register metrics") {
			t.Errorf("panic %v, want one naming the registration", r)
		}
	}()
	NewMetrics(reg)
}

// TestStoppedRefresherSeriesDeleted: a refresher removed from a Set, or stopped, no
// longer exports key_managed 1; one that replaces it under the same name keeps its own.
func TestStoppedRefresherSeriesDeleted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics := NewMetrics(reg)
	newRefresher := func(name, key string) *Refresher {
		return NewRefresher(constSource(key), RefresherOptions{Name: name, Detect: onCloud, Clock: newFakeClock(), Metrics: metrics})
	}
	var s Set
	defer s.Stop()
	for _, name := range []string{"api", "logs"} {
		if err := s.Add(context.Background(), name, newRefresher(name, "key_for_"+name)); err != nil {
			t.Fatal(err)
		}
	}
	if m := gaugeOf(t, reg, "chancery_delegatedauth_key_managed", "api"); m != 1 {
		t.Fatalf("key_managed{api} = %v, want 1", m)
	}

	s.Remove("api")
	for _, sr := range series(t, reg) {
		if strings.Contains(sr, "{api") {
			t.Errorf("series %s still exported after Remove", sr)
		}
	}

	// Replacing "logs" stops the old refresher first; the new one's series remain.
	if err := s.Add(context.Background(), "logs", newRefresher("logs", "new_key_for_logs")); err != nil {
		t.Fatal(err)
	}
	if m := gaugeOf(t, reg, "chancery_delegatedauth_key_managed", "logs"); m != 1 {
		t.Errorf("key_managed{logs} = %v after replacement, want 1", m)
	}
	if got := counters(t, reg, "chancery_delegatedauth_refreshes_total"); got != "logs/success=1" {
		t.Errorf("refreshes_total after replacement: %q, want the new refresher's only", got)
	}

	r := s.Get("logs")
	r.Stop()
	r.Stop() // idempotent
	if got := series(t, reg); len(got) != 0 {
		t.Errorf("series after Stop: %v", got)
	}
}

// gaugeOf returns the value of the gauge name{instance}.
func gaugeOf(t *testing.T, reg prometheus.Gatherer, name, instance string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "instance" && l.GetValue() == instance {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{instance=%q}", name, instance)
	return 0
}
