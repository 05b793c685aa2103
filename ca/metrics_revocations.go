package ca

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// The sources of shomei_ca_revocations_total that are not events: a
// municipal counter request (Revoke), an issuer key compromise (R-K2) and a
// renewal superseding the certificate it replaces (R-V4). An event's
// revocations are counted under its kind (EventKindName).
const (
	SourceCounter    = "counter"
	SourceCompromise = "compromise"
	SourceRenewal    = "renewal"
)

// The outcomes of shomei_ca_events_total.
const (
	// OutcomeApplied: the event revoked at least one certificate.
	OutcomeApplied = "applied"
	// OutcomeNothingToRevoke: the event was recorded, and ended nothing
	// that was not already revoked (or it ends nothing by the R-R1 table).
	OutcomeNothingToRevoke = "nothing_to_revoke"
	// OutcomeDuplicate: a replay of an event id already applied.
	OutcomeDuplicate = "duplicate"
	// OutcomeRefused: refused for the caller's mistake (invalid, unknown
	// holder, an event id reused for another payload).
	OutcomeRefused = "refused"
	// OutcomeFailed: the CA failed (the store, …).
	OutcomeFailed = "failed"
)

// eventKindNames are the lower-case names of the R-R1 events, as in the
// events API (EVENT_KIND_LOSS_REPORT → loss_report).
var eventKindNames = map[EventKind]string{
	EventRecordChange:    "record_change",
	EventMovedAbroad:     "moved_abroad",
	EventDeath:           "death",
	EventLossReport:      "loss_report",
	EventCardInvalidated: "card_invalidated",
	EventStopUsing:       "stop_using",
	EventRecordError:     "record_error",
}

// EventKindName is k's lower-case name, or "unknown" for a number that is
// not an R-R1 event (a caller cannot grow the label set).
func EventKindName(k EventKind) string {
	if n, ok := eventKindNames[k]; ok {
		return n
	}
	return "unknown"
}

// revocationMetrics count revocations and events. Labels are the reason
// name, the source and the event kind and outcome: never a serial, holder
// or municipality (R-P4).
type revocationMetrics struct {
	revocations *prometheus.CounterVec
	events      *prometheus.CounterVec
}

func newRevocationMetrics() *revocationMetrics {
	return &revocationMetrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ca_revocations_total",
			Help: "Certificates revoked, once each when revoked (not on replays), by RFC 5280 reason and source " +
				"(the event kind, counter, compromise, renewal).",
		}, []string{"reason", "source"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shomei_ca_events_total",
			Help: "Resident-record events reported (R-R1), by kind and outcome (applied, nothing_to_revoke, duplicate, refused, failed).",
		}, []string{"kind", "outcome"}),
	}
}

func (r *revocationMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.revocations, r.events}
}

// revocations counts n certificates revoked now for reason from source.
func (m *Metrics) revocations(source string, reason int32, n int) {
	if m == nil || n <= 0 {
		return
	}
	name := x509enc.ReasonName(int(reason))
	if name == "" {
		name = "unknown"
	}
	m.rev.revocations.WithLabelValues(name, source).Add(float64(n))
}

// event counts one reported event by its outcome.
func (m *Metrics) event(kind EventKind, res *Revocation, err error) {
	if m == nil {
		return
	}
	m.rev.events.WithLabelValues(EventKindName(kind), EventOutcome(res, err)).Inc()
}

// EventOutcome is the outcome of ReportEvent's answer (res, err).
func EventOutcome(res *Revocation, err error) string {
	switch {
	case err != nil && KindOf(err) != 0 && KindOf(err) != KindUnavailable:
		return OutcomeRefused
	case err != nil:
		return OutcomeFailed
	case res.Replayed:
		return OutcomeDuplicate
	}
	for _, e := range res.Revoked {
		if !e.AlreadyRevoked {
			return OutcomeApplied
		}
	}
	return OutcomeNothingToRevoke
}
