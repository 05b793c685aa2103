package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/propagation/freshness"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Store  *Store
	Client cav1.ReplicationClient
	// Invalidate drops the cached OCSP responses of a serial that turned
	// revoked, or that the replica learns of (a cached "unknown";
	// ocsp.Responder.Invalidate).
	Invalidate func(*big.Int)
	// Issuers, when set, is told the issuer generation of every status
	// that arrives (Generations.Saw), to notice a new one.
	Issuers interface{ Saw(issuer string) }
	// Metrics, when set, registers the follower's metrics.
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// MaxBackoff bounds the wait between reconnection attempts (before
	// jitter); default MaxBackoff (1 s), at most a minute.
	MaxBackoff time.Duration
	Now        func() time.Time
}

// Follower keeps a Store in step with the CA's Follow stream: a snapshot
// the first time, then every change, resuming from the stored revision
// after any disconnection (R-R4, R-R6).
type Follower struct {
	cfg     FollowerConfig
	backoff *Backoff

	revision  prometheus.Gauge
	connected prometheus.Gauge
	snapshots prometheus.Counter
	lastSync  prometheus.Gauge
	visible   *freshness.Metric // via="replica"
	lag       lag
}

// NewFollower checks cfg and makes a Follower.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	if cfg.Store == nil || cfg.Client == nil || cfg.Invalidate == nil {
		return nil, errors.New("replica: a store, a client and Invalidate are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = MaxBackoff
	}
	backoff, err := newBackoff(cfg.MaxBackoff)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Follower{cfg: cfg, backoff: backoff,
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_replica_revision",
			Help: "The CA status-change revision the replica has applied."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_replica_connected",
			Help: "1 while the replica follows the CA's stream, 0 while it answers from its copy alone."}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_replica_snapshots_total",
			Help: "Full snapshots received from the CA (the first sync, or after the CA refused to resume)."}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_replica_last_sync_timestamp_seconds",
			Help: "When the replica was last known in sync with the CA (its responses' thisUpdate)."}),
	}
	f.lag.since, f.lag.syncedAt = cfg.Now(), cfg.Store.SyncedAt()
	if rev, err := cfg.Store.Revision(); err == nil {
		f.lag.applied, f.lag.head = rev, rev
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{f.revision, f.connected, f.snapshots, f.lastSync, newLagCollector(&f.lag, cfg.Now)} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	visible, err := freshness.New(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	f.visible = visible
	if at := cfg.Store.SyncedAt(); !at.IsZero() {
		f.lastSync.Set(float64(at.Unix()))
	}
	return f, nil
}

// Run follows the CA until ctx ends, reconnecting with backoff (Backoff;
// the channel's own is ConnectParams).
func (f *Follower) Run(ctx context.Context) {
	for ctx.Err() == nil {
		progressed, err := f.follow(ctx)
		f.connected.Set(0)
		f.lag.disconnected()
		if ctx.Err() != nil {
			return
		}
		if progressed {
			f.backoff.Reset()
		}
		wait := f.backoff.Next()
		f.cfg.Log.Warn("not following the CA; answering from the replica's copy", "err", err, "retry_in", wait.Round(time.Millisecond), "synced_at", f.cfg.Store.SyncedAt())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// readyWait bounds how long a Follow call waits for the channel to the CA
// to connect before the Follower logs and tries again (a variable for
// tests).
var readyWait = 10 * time.Second

// follow runs one stream; progressed says whether anything arrived.
func (f *Follower) follow(ctx context.Context) (progressed bool, err error) {
	since, err := f.cfg.Store.Revision()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WaitForReady: while the CA is away the call waits for the channel
	// to connect (ConnectParams) instead of failing at once, so that it
	// starts as soon as the CA is back, not at the Follower's next try.
	// It waits readyWait at most, so that Run logs why the CA cannot be
	// reached (gRPC's "latest balancer error") while it stays away.
	waited := time.AfterFunc(readyWait, cancel)
	stream, err := f.cfg.Client.Follow(ctx, &cav1.FollowRequest{SinceRevision: since}, grpc.WaitForReady(true))
	if !waited.Stop() {
		if err == nil {
			err = context.Canceled // connected just as the wait ended
		}
		return false, fmt.Errorf("the CA has been unreachable for %v: %w", readyWait, err)
	}
	if err != nil {
		return false, err
	}
	snapshot := since == 0
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.FailedPrecondition && since != 0 && !progressed {
				f.cfg.Log.Error("the CA cannot resume from the replica's revision; starting again from a snapshot", "revision", since, "err", err)
				if rerr := f.cfg.Store.Reset(); rerr != nil {
					return false, rerr
				}
				f.lag.reset()
				return true, err
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the CA ended the stream")
			}
			return progressed, err
		}
		if !progressed {
			progressed = true
			f.connected.Set(1)
			if snapshot {
				f.cfg.Log.Info("following the CA from a snapshot")
			} else {
				f.cfg.Log.Info("following the CA", "since_revision", since)
			}
		}
		applied, err := f.cfg.Store.Apply(m)
		if err != nil {
			return progressed, err
		}
		if f.cfg.Issuers != nil {
			seen := ""
			for _, st := range m.Statuses {
				if st.Issuer != seen {
					seen = st.Issuer
					f.cfg.Issuers.Saw(seen)
				}
			}
		}
		for _, serial := range applied.New {
			f.cfg.Invalidate(serial) // a cached "unknown"
		}
		now := f.cfg.Now()
		for i, serial := range applied.Revoked {
			f.cfg.Invalidate(serial)
			if at := applied.RevokedRecordedAt[i]; !at.IsZero() {
				f.visible.Observe(freshness.Replica, at, now)
			}
		}
		var sentAt time.Time
		if m.SentAt != nil {
			sentAt = m.SentAt.AsTime()
		}
		f.lag.message(max(m.Revision, m.HeadRevision), m.Snapshot, applied.Revision, sentAt)
		if !m.Snapshot {
			if snapshot {
				snapshot = false
				f.snapshots.Inc()
				n, _ := f.cfg.Store.Count()
				f.cfg.Log.Info("snapshot complete", "certificates", n, "revision", m.Revision)
			}
			f.revision.Set(float64(m.Revision))
			if m.SentAt != nil {
				f.lastSync.Set(float64(m.SentAt.AsTime().Unix()))
			}
		}
	}
}

// Issuers fetches the CA's issuer key generations and saves them, or, when
// the CA cannot be reached, returns the saved ones.
func Issuers(ctx context.Context, client cav1.ReplicationClient, st *Store, log *slog.Logger) (*cav1.ListIssuersResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := client.ListIssuers(ctx, &cav1.ListIssuersRequest{})
	if err == nil {
		return list, st.SaveIssuers(list)
	}
	saved, serr := st.Issuers()
	if serr != nil {
		return nil, serr
	}
	if saved == nil {
		return nil, fmt.Errorf("the CA is unreachable and the replica has never fetched its issuers: %w", err)
	}
	log.Warn("the CA is unreachable; using the issuers saved at the last start", "err", err)
	return saved, nil
}
