package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric returns the value of metric name in g, summed over the series whose
// labels match labels (nil matches all): a counter's or gauge's value, a
// histogram's sample count. A metric with no series yet is 0.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := MetricValue(g, name, labels)
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	return v
}

// MetricValue is Metric answering an error instead of failing the test:
// for a goroutine other than the test's own.
func MetricValue(g prometheus.Gatherer, name string, labels map[string]string) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, want := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == want {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, nil
}
