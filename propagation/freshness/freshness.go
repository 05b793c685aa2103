package freshness

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Name is the metric's name.
const Name = "shomei_revocation_visible_seconds"

// Where a revocation became visible: the label via.
const (
	// OCSP: the CA's OCSP responder answers revoked (its cache dropped
	// the serial; the responder reads the live store). R-R4: 1 s.
	OCSP = "ocsp"
	// CRL: the revocation's partition CRL lists it. R-R4: 60 s.
	CRL = "crl"
	// Replica: an OCSP replica answers revoked. R-R4: 1 s.
	Replica = "replica"
)

// Metric is shomei_revocation_visible_seconds{via}.
type Metric struct {
	vec *prometheus.HistogramVec
}

// New makes the metric and registers it with reg; with reg nil it is
// measured but not exported.
func New(reg prometheus.Registerer) (*Metric, error) {
	m := &Metric{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: Name,
		Help: "From a revocation being recorded (an event accepted, a counter request, a renewal) to it being visible: " +
			"via=\"ocsp\" when the OCSP responder answers revoked, via=\"crl\" when its partition's CRL lists it, " +
			"via=\"replica\" when an OCSP replica answers revoked (R-R4: 1 s and 60 s).",
		// 1 ms … ~65 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	}, []string{"via"})}
	if reg != nil {
		if err := reg.Register(m.vec); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records that a revocation recorded at recorded became visible
// via via at visible.
func (m *Metric) Observe(via string, recorded, visible time.Time) {
	m.vec.WithLabelValues(via).Observe(visible.Sub(recorded).Seconds())
}
