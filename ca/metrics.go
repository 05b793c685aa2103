package ca

import (
	"github.com/prometheus/client_golang/prometheus"
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
	for _, c := range []prometheus.Collector{m.issued, m.refused, m.duration, m.responders} {
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
