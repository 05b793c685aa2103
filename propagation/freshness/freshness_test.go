package freshness_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/propagation/freshness"
)

// The metric is exported under its documented name, label and buckets
// (README, alert rules), and counts each observation under its via.
func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := freshness.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	recorded := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	m.Observe(freshness.OCSP, recorded, recorded.Add(3*time.Millisecond))
	m.Observe(freshness.CRL, recorded, recorded.Add(2*time.Second))
	m.Observe(freshness.CRL, recorded, recorded.Add(4*time.Second))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "shomei_revocation_visible_seconds" {
		t.Fatalf("gathered %v, want shomei_revocation_visible_seconds alone", families)
	}
	counts := map[string]uint64{}
	for _, s := range families[0].GetMetric() {
		h := s.GetHistogram()
		if got := len(h.GetBucket()); got != 17 {
			t.Errorf("%d buckets, want 17 (1 ms … ~65 s)", got)
		}
		if first := h.GetBucket()[0].GetUpperBound(); first != 0.001 {
			t.Errorf("first bucket %v, want 0.001", first)
		}
		if len(s.GetLabel()) != 1 || s.GetLabel()[0].GetName() != "via" {
			t.Fatalf("labels %v, want via alone", s.GetLabel())
		}
		counts[s.GetLabel()[0].GetValue()] = h.GetSampleCount()
	}
	if len(counts) != 2 || counts["ocsp"] != 1 || counts["crl"] != 2 {
		t.Errorf("counts by via %v, want ocsp 1, crl 2", counts)
	}
	if !strings.Contains(families[0].GetHelp(), "R-R4") {
		t.Errorf("help %q does not name R-R4", families[0].GetHelp())
	}
}

// A second registration on the same registry is an error, not a silent
// second metric.
func TestRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := freshness.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := freshness.New(reg); err == nil {
		t.Error("registering the metric twice succeeded")
	}
	if _, err := freshness.New(nil); err != nil {
		t.Errorf("unregistered metric: %v", err)
	}
}
