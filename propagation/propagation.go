package propagation

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/propagation/freshness"
)

// ChangeLog is the store's status-change log.
type ChangeLog interface {
	// Revision is the log's last revision.
	Revision() (uint64, error)
	// Changes calls fn with every change after revision since, in order.
	Changes(since uint64, fn func(*storev1.StatusChange) error) error
}

// Cache drops a serial's cached OCSP responses.
type Cache interface {
	Invalidate(serial *big.Int)
}

// Waker is woken after a status change, such as the replication stream
// to the OCSP replicas (service.Replication).
type Waker interface {
	Notify()
}

var (
	_ ChangeLog = (*store.Store)(nil)
	_ Cache     = (*ocsp.Responder)(nil)
	_ Waker     = (*crl.Publisher)(nil)
)

// DefaultPoll is how often the status-change log is read when no
// notification came.
const DefaultPoll = time.Second

// Config configures a Propagation.
type Config struct {
	// Notifier is the one the CA notifies after a status change; required.
	Notifier *Notifier
	// Changes is the store's status-change log; required.
	Changes ChangeLog
	// Cache is the OCSP responder's cache; required.
	Cache Cache
	// CRL configures the CRL publisher the Propagation runs: Source and
	// Issuers are required; Log and Metrics default to this Config's.
	// Published is called after the Propagation's own bookkeeping.
	CRL crl.PublisherConfig
	// Replication, if set, is woken after every status change.
	Replication Waker
	// Poll: how often the log is read without a notification; DefaultPoll
	// when zero.
	Poll time.Duration
	// Now is the clock of the freshness metric; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
	// Metrics, if set, gets shomei_revocation_visible_seconds{via="ocsp"|"crl"}
	// and the CRL publisher's metrics.
	Metrics prometheus.Registerer
}

// Propagation carries status changes from the store to the OCSP cache, the
// CRL publisher and the replication stream (R-R4).
type Propagation struct {
	notifier    *Notifier
	replication Waker
	publisher   *crl.Publisher
	follow      *follower
	poll        time.Duration
	log         *slog.Logger
}

// New checks cfg, makes the CRL publisher and starts following the log
// from its current revision: changes recorded before New are the past,
// already reflected in the store the responder and publisher read.
func New(cfg Config) (*Propagation, error) {
	if cfg.Notifier == nil || cfg.Changes == nil || cfg.Cache == nil {
		return nil, errors.New("propagation: a notifier, a status-change log and a cache are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rev, err := cfg.Changes.Revision()
	if err != nil {
		return nil, err
	}
	visible, err := freshness.New(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	f := &follower{log: cfg.Changes, cache: cfg.Cache, visible: visible, now: cfg.Now, logger: cfg.Log,
		rev: rev, pending: map[string][]pendingChange{}}
	pc := cfg.CRL
	if pc.Log == nil {
		pc.Log = cfg.Log
	}
	if pc.Metrics == nil {
		pc.Metrics = cfg.Metrics
	}
	then := pc.Published
	pc.Published = func(partition string, revision uint64, at time.Time) {
		f.published(partition, revision, at)
		if then != nil {
			then(partition, revision, at)
		}
	}
	publisher, err := crl.NewPublisher(pc)
	if err != nil {
		return nil, err
	}
	return &Propagation{notifier: cfg.Notifier, replication: cfg.Replication, publisher: publisher,
		follow: f, poll: cfg.Poll, log: cfg.Log}, nil
}

// Publisher is the CRL publisher, to serve the CRLs and report their
// freshness (readiness).
func (p *Propagation) Publisher() *crl.Publisher { return p.publisher }

// Run propagates until ctx ends, and returns once the CRL publisher has
// stopped too.
func (p *Propagation) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.publisher.Run(ctx) })
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.notifier.wake:
			p.publisher.Notify()
			if p.replication != nil {
				p.replication.Notify()
			}
		case <-t.C:
		}
		if err := p.follow.catchUp(); err != nil {
			p.log.Error("reading the status-change log", "err", err)
		}
	}
}
