package crl

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the per-partition CRL metrics, labelled crl=<partition name>
// (profile, issuer generation, municipality code and shard: no personal
// data). The gauges are read at scrape time from the CRLs the publisher
// serves, so a follower that publishes nothing still exports the
// nextUpdate, entries and bytes of what it serves; the build duration is
// exported for the CRLs this process built, and a CRL loaded from the store
// reports its thisUpdate as its last success.
type metrics struct {
	p                                           *Publisher
	lastSuccess, nextUpdate, entries, size, dur *prometheus.Desc
	failures                                    *prometheus.CounterVec
}

func newMetrics(p *Publisher) *metrics {
	label := []string{"crl"}
	return &metrics{p: p,
		lastSuccess: prometheus.NewDesc("shomei_crl_last_success_timestamp_seconds",
			"When the partition's CRL served now was published (Unix seconds).", label, nil),
		nextUpdate: prometheus.NewDesc("shomei_crl_next_update_timestamp_seconds",
			"The nextUpdate of the partition's CRL served now (Unix seconds).", label, nil),
		entries: prometheus.NewDesc("shomei_crl_entries",
			"Entries (revoked certificates) of the partition's CRL served now.", label, nil),
		size: prometheus.NewDesc("shomei_crl_bytes",
			"Size in bytes (DER) of the partition's CRL served now.", label, nil),
		dur: prometheus.NewDesc("shomei_crl_build_duration_seconds",
			"Seconds the last CRL of the partition this process built took: entries read, built, signed, checked and stored.", label, nil),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shomei_crl_publish_failures_total",
			Help: "Failed attempts to publish the partition's CRL (see the log and /readyz)."}, label),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m, m.failures} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("crl: metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lastSuccess, m.nextUpdate, m.entries, m.size, m.dur} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.p.mu.RLock()
	defer m.p.mu.RUnlock()
	for name, pub := range m.p.latest {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		gauge(m.lastSuccess, unixSeconds(pub.publishedAt))
		gauge(m.nextUpdate, unixSeconds(pub.nextUpdate))
		gauge(m.entries, float64(pub.entries))
		gauge(m.size, float64(len(pub.der)))
		if pub.built > 0 {
			gauge(m.dur, pub.built.Seconds())
		}
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
