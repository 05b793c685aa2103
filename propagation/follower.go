package propagation

import (
	"log/slog"
	"math/big"
	"sync"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/propagation/freshness"
)

// follower reads the store's status-change log, drops the revoked
// certificates' cached OCSP responses, and measures the freshness of R-R4:
// from the revocation being recorded to it being visible in OCSP (the cache
// invalidated; the responder reads the live store) and in its partition's
// CRL (the publisher saved a CRL reflecting it).
type follower struct {
	log     ChangeLog
	cache   Cache
	visible *freshness.Metric
	now     func() time.Time
	logger  *slog.Logger

	mu      sync.Mutex
	rev     uint64                     // last change followed
	pending map[string][]pendingChange // revocations not yet on their partition's CRL
}

type pendingChange struct {
	revision uint64
	recorded time.Time
}

// catchUp follows the log from the last revision seen.
func (f *follower) catchUp() error {
	f.mu.Lock()
	since := f.rev
	f.mu.Unlock()
	var changes []*storev1.StatusChange
	err := f.log.Changes(since, func(ch *storev1.StatusChange) error {
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
		f.cache.Invalidate(new(big.Int).SetBytes(ch.Serial))
		recorded := ch.Time.AsTime()
		f.visible.Observe(freshness.OCSP, recorded, now)
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
		f.logger.Error("reading the status-change log", "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.pending[partition]
	kept := list[:0]
	for _, p := range list {
		if p.revision <= revision {
			f.visible.Observe(freshness.CRL, p.recorded, at)
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
