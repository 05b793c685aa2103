package main

import (
	"context"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// follower reads the store's status-change log after every revocation (and
// every poll, in case a notification was missed), drops the revoked
// certificates' cached OCSP responses, and measures the freshness of R-R4:
// from the revocation being recorded to it being visible in OCSP (the cache
// invalidated; the responder reads the live store) and in its partition's
// CRL (the publisher saved a CRL reflecting it).
type follower struct {
	st         *store.Store
	invalidate func(serial *big.Int)
	log        *slog.Logger
	poll       time.Duration
	now        func() time.Time
	visible    *prometheus.HistogramVec // shomei_revocation_visible_seconds{via}

	wake chan struct{}

	mu      sync.Mutex
	rev     uint64                     // last change followed
	pending map[string][]pendingChange // revocations not yet on their partition's CRL
}

type pendingChange struct {
	revision uint64
	recorded time.Time
}

func newFollower(st *store.Store, invalidate func(*big.Int), reg prometheus.Registerer, log *slog.Logger) (*follower, error) {
	rev, err := st.Revision()
	if err != nil {
		return nil, err
	}
	f := &follower{
		st: st, invalidate: invalidate, log: log, poll: time.Second, now: time.Now,
		visible: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shomei_revocation_visible_seconds",
			Help: "From a revocation being recorded (an event accepted, a counter request, a renewal) to it being visible: via=\"ocsp\" when the OCSP responder answers revoked, via=\"crl\" when its partition's CRL lists it (R-R4: 1 s and 60 s).",
			// 1 ms … ~65 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}, []string{"via"}),
		wake:    make(chan struct{}, 1),
		rev:     rev,
		pending: map[string][]pendingChange{},
	}
	if err := reg.Register(f.visible); err != nil {
		return nil, err
	}
	return f, nil
}

// Notify makes the follower read the log now.
func (f *follower) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-t.C:
		}
		if err := f.catchUp(); err != nil {
			f.log.Error("reading the status-change log", "err", err)
		}
	}
}

// catchUp follows the log from the last revision seen.
func (f *follower) catchUp() error {
	f.mu.Lock()
	since := f.rev
	f.mu.Unlock()
	var changes []*storev1.StatusChange
	err := f.st.Changes(since, func(ch *storev1.StatusChange) error {
		changes = append(changes, ch)
		return nil
	})
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range changes {
		if ch.Revision <= f.rev {
			continue
		}
		f.rev = ch.Revision
		if ch.Kind == storev1.ChangeKind_CHANGE_KIND_ISSUED {
			// Unknown turns into good: nothing cached to drop (the
			// responder never caches unknown).
			continue
		}
		f.invalidate(new(big.Int).SetBytes(ch.Serial))
		recorded := ch.Time.AsTime()
		f.visible.WithLabelValues("ocsp").Observe(now.Sub(recorded).Seconds())
		if ch.CrlPartition != "" {
			f.pending[ch.CrlPartition] = append(f.pending[ch.CrlPartition], pendingChange{ch.Revision, recorded})
		}
	}
	return nil
}

// published is the CRL publisher's report: partition's CRL, reflecting the
// log up to revision, was saved at at.
func (f *follower) published(partition string, revision uint64, at time.Time) {
	// The publisher may have read revisions this follower has not yet:
	// catch up first so that they are not missed.
	if err := f.catchUp(); err != nil {
		f.log.Error("reading the status-change log", "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.pending[partition]
	kept := list[:0]
	for _, p := range list {
		if p.revision <= revision {
			f.visible.WithLabelValues("crl").Observe(at.Sub(p.recorded).Seconds())
		} else {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		delete(f.pending, partition)
	} else {
		f.pending[partition] = kept
	}
}
