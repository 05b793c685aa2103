package audit

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// VerifyMetrics count the verifications of the audit log (R-K3):
// shomei_audit_verify_failures_total and
// shomei_audit_last_verified_timestamp_seconds. The CA verifies at start
// (the whole log), before it signs each checkpoint (what was appended since
// the last one, Checkpointer), and at an operator's VerifyAudit (the whole
// log). They exist before they are registered, so that the check at start,
// made before the CA's registry, is counted too. A nil *VerifyMetrics
// counts nothing.
type VerifyMetrics struct {
	failures prometheus.Counter
	last     prometheus.Gauge
}

// NewVerifyMetrics makes the metrics; Register exports them.
func NewVerifyMetrics() *VerifyMetrics {
	return &VerifyMetrics{
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_audit_verify_failures_total",
			Help: "Verifications of the audit log (at start, before each checkpoint, VerifyAudit) that found it broken (R-K3)."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_audit_last_verified_timestamp_seconds",
			Help: "When the audit log last verified (Unix seconds): at start, before a checkpoint, or at VerifyAudit."}),
	}
}

// Register exports the metrics to reg.
func (m *VerifyMetrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.failures, m.last} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("audit: metrics: %w", err)
		}
	}
	return nil
}

// Record records the outcome err of a verification that ended at now: a
// finding about the log (FaultOf) is a failure, nil a pass, and any other
// error (the check did not run to its end: the store or the HSM
// unreachable) neither.
func (m *VerifyMetrics) Record(now time.Time, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.last.Set(float64(now.UnixNano()) / 1e9)
	} else if _, found := FaultOf(err); found {
		m.failures.Inc()
	}
}
