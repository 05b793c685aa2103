package metricstest

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Labels is m's labels as Prometheus writes them: a="x",b="y", sorted by
// name; "" without labels.
func Labels(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Value is m's number: a counter's, gauge's or untyped value; for a
// histogram or a summary, how many observations it has.
func Value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetSummary() != nil:
		return float64(m.GetSummary().GetSampleCount())
	default:
		return m.GetUntyped().GetValue()
	}
}

// Family maps mf's samples by their Labels; empty for a nil mf (a family
// nothing has made yet).
func Family(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		out[Labels(m)] = Value(m)
	}
	return out
}

// Samples maps every sample of mfs by name{labels} (the name alone for a
// sample without labels).
func Samples(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if l := Labels(m); l != "" {
				key += "{" + l + "}"
			}
			out[key] = Value(m)
		}
	}
	return out
}

// Gather is Samples of what g gathers now.
func Gather(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return Samples(mfs)
}

// Of is Family of g's family name as it gathers now (empty when g has
// none of it).
func Of(t testing.TB, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return Family(mf)
		}
	}
	return map[string]float64{}
}

// Parse reads a text exposition (a /metrics page): every family by name.
func Parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Text is Samples of a text exposition.
func Text(t testing.TB, text string) map[string]float64 {
	t.Helper()
	fams, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(fams))
	for _, mf := range fams {
		mfs = append(mfs, mf)
	}
	return Samples(mfs)
}
