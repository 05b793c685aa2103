package crl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shomei-pki/shomei/internal/server"
)

// nationalMetrics is a registry with the per-partition CRL series of
// 13,928 partitions (2 profiles × 1,741 municipalities × 4 shards).
func nationalMetrics(b *testing.B) *prometheus.Registry {
	p := &Publisher{latest: map[string]*published{}}
	p.metrics = newMetrics(p)
	reg := prometheus.NewRegistry()
	if err := p.metrics.register(reg); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, prof := range []string{"sign", "auth"} {
		for m := range 1741 {
			for s := range 4 {
				name := fmt.Sprintf("%s-g1-%05d-s%d", prof, 1000+m, s)
				p.latest[name] = &published{der: make([]byte, 600), nextUpdate: now.Add(24 * time.Hour), publishedAt: now, entries: m, built: time.Millisecond}
				p.metrics.failures.WithLabelValues(name)
			}
		}
	}
	return reg
}

// BenchmarkMetricsNationalScale: scrapes of /metrics (uncompressed, as an
// anonymous caller asks) with the CRL series at national scale, one at a
// time (serial) and as a flood of concurrent requests (parallel), through
// promhttp alone and through server.MetricsHandler, which shares one
// rendering among the requests that wait for it.
func BenchmarkMetricsNationalScale(b *testing.B) {
	reg := nationalMetrics(b)
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{{"promhttp", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, {"MetricsHandler", server.MetricsHandler(reg)}} {
		b.Run(h.name+"/serial", func(b *testing.B) {
			size := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "B/scrape")
		})
		b.Run(h.name+"/flood", func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				}
			})
		})
	}
}
