package ca

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca/store"
)

// Retention purges issuance records RetentionYears after their
// certificate's notAfter (rule book §6) in the background, a bounded slice
// at a time (store.PurgeExpired), walking the whole store over and over:
// a slice every Pause while there is store left to walk, then Idle after
// each full pass. With several CA processes on one store only the leader
// runs it (cmd/shomei-ca).
type Retention struct {
	cfg    RetentionConfig
	purged prometheus.Counter
	passes prometheus.Counter
}

// RetentionStore is what Retention needs of the store.
type RetentionStore interface {
	PurgeExpired(now time.Time, scan, batch int, actor string) (store.PurgeResult, error)
}

var _ RetentionStore = (*store.Store)(nil)

// RetentionConfig configures Retention. Zero values take the defaults.
type RetentionConfig struct {
	Store RetentionStore
	// Scan certificates are looked at per slice (default 10,000), of
	// which at most Batch (default 1,000) purged; both within the store's
	// bounds.
	Scan, Batch int
	// Pause between slices (default 1 s); Idle after a full pass
	// (default 1 h).
	Pause, Idle time.Duration
	Now         func() time.Time
	Log         *slog.Logger
	Metrics     prometheus.Registerer
}

// NewRetention checks cfg.
func NewRetention(cfg RetentionConfig) (*Retention, error) {
	if cfg.Store == nil {
		return nil, errors.New("ca: retention needs the store")
	}
	def := func(v *int, d, max int) error {
		if *v == 0 {
			*v = d
		}
		if *v < 0 || *v > max {
			return errors.New("ca: retention scan and batch must be within the store's bounds")
		}
		return nil
	}
	if err := def(&cfg.Scan, 10_000, store.MaxPurgeScan); err != nil {
		return nil, err
	}
	if err := def(&cfg.Batch, 1_000, store.MaxPurgeBatch); err != nil {
		return nil, err
	}
	if cfg.Pause <= 0 {
		cfg.Pause = time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Retention{cfg: cfg,
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_store_purged_total",
			Help: "Issuance records purged 10 years after their certificate's expiry (rule book §6)."}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_store_purge_passes_total",
			Help: "Full passes of the retention purge over the store."}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{r.purged, r.passes} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Run purges until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	for {
		wait := r.cfg.Pause
		res, err := r.cfg.Store.PurgeExpired(r.cfg.Now(), r.cfg.Scan, r.cfg.Batch, "shomei-ca retention")
		switch {
		case err != nil:
			r.cfg.Log.Error("retention purge failed; retrying", "error", err)
		case res.Purged > 0:
			r.purged.Add(float64(res.Purged))
			r.cfg.Log.Info("issuance records purged after retention (rule book §6)", "count", res.Purged)
		}
		if err == nil && res.Wrapped {
			r.passes.Inc()
			wait = r.cfg.Idle
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
