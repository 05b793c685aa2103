package ocsp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the responder's Prometheus metrics. Labels never carry
// personal data (R-P4), nor serials.
type metrics struct {
	responses *prometheus.CounterVec
	// byStatus are responses' children for good, revoked and unknown,
	// looked up once.
	byStatus    [Unknown + 1]prometheus.Counter
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	// presignedHits: answered from a pre-signed response (presigned.go).
	presignedHits prometheus.Counter
	signing       prometheus.Histogram
	overBudget    *prometheus.CounterVec
	// tryLater and withoutNonce are overBudget's children, looked up once.
	tryLater, withoutNonce prometheus.Counter
	responderNotAfter      *prometheus.GaugeVec
}

// newMetrics makes the metrics and registers them with reg when it is not
// nil. c may be nil (no cache).
func newMetrics(reg prometheus.Registerer, c *cache) (*metrics, error) {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ocsp_responses_total",
			Help: "OCSP answers: per certificate status (good, revoked, unknown) for successful responses, else the responseStatus (malformedRequest, unauthorized, internalError).",
		}, []string{"status"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shomei_ocsp_cache_hits_total",
			Help: "Cacheable requests answered without signing: from the response cache, or sharing a response being signed for a concurrent request.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shomei_ocsp_cache_misses_total",
			Help: "Cacheable requests for which a response was signed.",
		}),
		presignedHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shomei_ocsp_presigned_hits_total",
			Help: "Cacheable requests answered, without signing, from a pre-signed response read from the store.",
		}),
		signing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shomei_ocsp_signing_duration_seconds",
			Help:    "Time to sign a response for a request with the delegated responder key (the pre-signer's signatures are shomei_ocsp_presign_signatures_total).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		overBudget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ocsp_signature_budget_exceeded_total",
			Help: "Requests that needed a fresh signature (nonce, several CertIDs, unknown serial) over the signature budget, by answer: withoutNonce (the cached response, RFC 8954) or tryLater.",
		}, []string{"answer"}),
		responderNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shomei_ocsp_responder_not_after_timestamp_seconds",
			Help: "notAfter of each issuer's delegated responder certificate, by issuer key id: alert well before it (R-R6 rotation).",
		}, []string{"issuer"}),
	}
	for _, st := range []CertStatus{Good, Revoked, Unknown} {
		m.byStatus[st] = m.responses.WithLabelValues(st.String())
	}
	m.tryLater = m.overBudget.WithLabelValues("tryLater")
	m.withoutNonce = m.overBudget.WithLabelValues("withoutNonce")
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{m.responses, m.cacheHits, m.cacheMisses, m.presignedHits, m.signing, m.overBudget, m.responderNotAfter}
	if c != nil {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shomei_ocsp_cache_entries",
			Help: "Signed responses in the response cache.",
		}, func() float64 { return float64(c.len()) }))
	}
	for _, col := range collectors {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// certStatus is the responses counter of a certificate status.
func (m *metrics) certStatus(s CertStatus) prometheus.Counter {
	if s >= Good && s <= Unknown {
		return m.byStatus[s]
	}
	return m.responses.WithLabelValues(s.String())
}
