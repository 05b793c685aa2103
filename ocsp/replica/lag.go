package replica

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lag is how far the replica is behind the CA, from what the Follow stream
// tells: every message carries the revision the replica is at once it
// applied it and the CA's head (head_revision; a CA before it: heartbeats
// and snapshot messages carry the head as their revision). The highest
// revision announced is the CA's head as last known; the replica is
// in sync while it is connected and has applied it (and is not in the
// middle of a snapshot).
type lag struct {
	mu sync.Mutex
	// head is the highest revision the CA announced; applied the one the
	// replica's store is at.
	head, applied uint64
	// connected: a stream is open; snapshot: it is sending a snapshot.
	connected, snapshot bool
	// syncedAt is when the replica was last known at the CA's head: the
	// CA's sent_at of the message that brought it there, or the stored
	// sync time at start.
	syncedAt time.Time
	// since is when the replica started, the lag's origin when it was
	// never in sync.
	since time.Time
}

// at is the lag at now: revisions behind the CA's head as last known, and
// seconds since the replica was last known at it (0 while in sync).
func (l *lag) at(now time.Time) (revisions uint64, seconds float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head > l.applied {
		revisions = l.head - l.applied
	}
	if l.connected && !l.snapshot && revisions == 0 {
		return 0, 0
	}
	from := l.syncedAt
	if from.IsZero() {
		from = l.since
	}
	return revisions, max(now.Sub(from).Seconds(), 0)
}

// message records one message of the stream, applied: the replica is at
// applied (its store's revision).
func (l *lag) message(revision uint64, snapshot bool, applied uint64, sentAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected, l.snapshot = true, snapshot
	l.head = max(l.head, revision)
	l.applied = applied
	if !snapshot && applied >= l.head && !sentAt.IsZero() {
		l.syncedAt = sentAt
	}
}

// disconnected records the end of a stream.
func (l *lag) disconnected() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected = false
}

// reset forgets the head (the CA's log was replaced: the replica starts
// again from a snapshot).
func (l *lag) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.head, l.applied = 0, 0
}

// lagCollector exports shomei_replica_lag_revisions and
// shomei_replica_lag_seconds, computed at scrape time.
type lagCollector struct {
	l                 *lag
	now               func() time.Time
	revisions, second *prometheus.Desc
}

func newLagCollector(l *lag, now func() time.Time) *lagCollector {
	return &lagCollector{l: l, now: now,
		revisions: prometheus.NewDesc("shomei_replica_lag_revisions",
			"The CA's status-change head revision (as the stream last told it) minus the revision the replica applied.", nil, nil),
		second: prometheus.NewDesc("shomei_replica_lag_seconds",
			"Seconds since the replica was last known at the CA's head revision; 0 while it follows the stream in sync.", nil, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.revisions
	ch <- c.second
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	revs, secs := c.l.at(c.now())
	ch <- prometheus.MustNewConstMetric(c.revisions, prometheus.GaugeValue, float64(revs))
	ch <- prometheus.MustNewConstMetric(c.second, prometheus.GaugeValue, secs)
}
