package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSamples: each kind of metric read under the key Prometheus writes,
// labels sorted whatever the order they were declared in.
func TestSamples(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"z", "a"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("last", "first").Add(3)
	g.Set(-2.5)
	h.Observe(1)
	h.Observe(2)
	got := Gather(t, reg)
	want := map[string]float64{`c_total{a="first",z="last"}`: 3, "g": -2.5, "h_seconds": 2}
	if len(got) != len(want) {
		t.Errorf("Gather: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Gather[%s] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if f := Of(t, reg, "c_total"); len(f) != 1 || f[`a="first",z="last"`] != 3 {
		t.Errorf("Of(c_total) = %v", f)
	}
	if f := Of(t, reg, "none"); len(f) != 0 {
		t.Errorf("Of(none) = %v, want empty", f)
	}
}

// TestText: a /metrics page read as Gather reads the registry.
func TestText(t *testing.T) {
	got := Text(t, "# TYPE c_total counter\nc_total{z=\"last\",a=\"first\"} 3\n# TYPE g gauge\ng -2.5\n")
	if len(got) != 2 || got[`c_total{a="first",z="last"}`] != 3 || got["g"] != -2.5 {
		t.Errorf("Text: %v", got)
	}
}
