package ca

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// Metrics are the CA's Prometheus metrics. Labels never carry personal data
// (R-P4): profile, operation, rule id, outcome.
type Metrics struct {
	issued   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// responders counts responder certification requests (R-R6) by issuer,
	// replica (its configured name, "" for the CA's own) and outcome.
	responders *prometheus.CounterVec
	// remaining is each issuer's remaining life (R-V7), computed when
	// scraped.
	remaining *remainingLife
	// rev counts revocations and events (metrics_revocations.go).
	rev *revocationMetrics
}

// NewMetrics registers the CA's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ca_certificates_issued_total",
			Help: "Certificates issued, by profile and operation (issue or renew).",
		}, []string{"profile", "operation"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ca_requests_refused_total",
			Help: "Issue and renew requests refused, by the first rule broken.",
		}, []string{"operation", "rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shomei_ca_request_duration_seconds",
			Help:    "Time to serve issue and renew requests, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"operation", "outcome"}),
	}
	m.responders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shomei_ca_responder_certifications_total",
		Help: "Delegated OCSP responder certification requests, by issuer, replica and outcome (certified, refused, failed).",
	}, []string{"issuer", "replica", "outcome"})
	m.remaining = &remainingLife{desc: prometheus.NewDesc("shomei_issuer_remaining_seconds",
		"Seconds until each issuer key generation's certificate expires (R-V7), for the generations that still sign: "+
			"rotate well before it is shorter than the longest certificate the issuer may have to issue (see shomeictl keys list).",
		[]string{"issuer"}, nil)}
	m.rev = newRevocationMetrics()
	for _, c := range append([]prometheus.Collector{m.issued, m.refused, m.duration, m.responders, m.remaining}, m.rev.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// responder counts one responder certification request. An issuer name not
// of this CA is counted as "unknown", so callers cannot grow the label set.
func (m *Metrics) responder(req ResponderRequest, err error) {
	outcome := "certified"
	switch {
	case err != nil && KindOf(err) != 0 && KindOf(err) != KindUnavailable:
		outcome = "refused"
	case err != nil:
		outcome = "failed"
	}
	iss := req.Issuer
	if KindOf(err) == KindNotFound {
		iss = "unknown"
	}
	m.responders.WithLabelValues(iss, req.Replica, outcome).Inc()
}

// remainingLife is the shomei_issuer_remaining_seconds gauge: notAfter − now
// of every generation that signs or will (PENDING, ACTIVE, SUPERSEDED,
// COMPROMISED), from the CA's live set of generations at scrape time.
type remainingLife struct {
	desc   *prometheus.Desc
	source atomic.Pointer[remainingSource]
}

type remainingSource struct {
	gens *generations
	now  func() time.Time
}

func (r *remainingLife) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *remainingLife) Collect(ch chan<- prometheus.Metric) {
	src := r.source.Load()
	if src == nil {
		return
	}
	now := src.now()
	for _, is := range src.gens.list {
		switch is.State {
		case storev1.KeyState_KEY_STATE_RETIRED, storev1.KeyState_KEY_STATE_DESTROYED:
			continue
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, is.Certificate.NotAfter.Sub(now).Seconds(),
			IssuerName(is.Profile, is.Generation))
	}
}

// observeIssuers points the issuer metrics at a new set of generations.
func (c *CA) observeIssuers(g *generations) {
	if c.metrics != nil {
		c.metrics.remaining.source.Store(&remainingSource{gens: g, now: c.now})
	}
}
