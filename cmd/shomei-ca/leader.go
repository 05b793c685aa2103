package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/ocsp"
)

// leadership runs the CA's singleton work while this process leads: it
// publishes the CRLs, signs the audit log's checkpoints, pre-signs the
// OCSP responses into the store (every process serves them) and purges
// issuance records past retention (ca.Retention). With bbolt
// the CA is the store's only process and leads from the start; on a
// PostgreSQL store shared by several CA processes, the one holding the
// store's lease leads, the others serve the CRLs it stores, and when the
// leader dies (its connection, and with it the lock, goes) another takes
// over within a second or so (engine.Postgres.Lead).
type leadership struct {
	st          *store.Store
	publisher   *crl.Publisher
	checkpoints *checkpointer
	retention   *ca.Retention
	// authority sweeps the reservations of CA processes that died
	// mid-issuance (ca.AbandonStale), on a shared store.
	authority *ca.CA
	// presigner pre-signs OCSP responses; nil when ocsp.presign is off.
	presigner *ocsp.Presigner
	gauge     prometheus.Gauge
	log       *slog.Logger
}

// leaseName is the lease of the singleton work.
const leaseName = "shomei-ca singleton"

func newLeadership(st *store.Store, authority *ca.CA, publisher *crl.Publisher, checkpoints *checkpointer, presigner *ocsp.Presigner, reg prometheus.Registerer, log *slog.Logger) (*leadership, error) {
	retention, err := ca.NewRetention(ca.RetentionConfig{Store: st, Log: log, Metrics: reg})
	if err != nil {
		return nil, err
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_ca_leader",
		Help: "1 while this CA process leads (publishes CRLs, signs audit checkpoints), 0 while another does."})
	if err := reg.Register(g); err != nil {
		return nil, err
	}
	l := &leadership{st: st, authority: authority, publisher: publisher, checkpoints: checkpoints, retention: retention, presigner: presigner, gauge: g, log: log}
	if st.Shared() {
		// Until the lease is held, serve what the leader stores.
		publisher.SetFollowing(true)
	}
	return l, nil
}

// Run leads whenever it can until ctx ends.
func (l *leadership) Run(ctx context.Context) {
	for ctx.Err() == nil {
		lease, err := l.st.Lead(ctx, leaseName)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("waiting to lead", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		l.lead(ctx, lease.Lost())
		lease.Release()
	}
}

// lead does the singleton work until ctx ends or the lease is lost.
func (l *leadership) lead(ctx context.Context, lost <-chan struct{}) {
	if l.st.Shared() {
		l.log.Info("this CA process leads: it publishes the CRLs, signs the audit checkpoints and pre-signs OCSP responses")
	}
	l.gauge.Set(1)
	l.checkpoints.leading.Store(true)
	work, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.checkpoints.lead(work) })
	wg.Go(func() { l.retention.Run(work) })
	if l.st.Shared() {
		wg.Go(func() { l.sweepPending(work) })
	}
	if l.presigner != nil {
		wg.Go(func() { l.presigner.Run(work) })
	}
	l.publisher.SetFollowing(false)
	select {
	case <-ctx.Done():
	case <-lost:
		l.log.Warn("this CA process no longer leads (its store connection failed): another takes over")
		// A leader that stops still signs its last checkpoint
		// (checkpointer.stop); one that lost the lead does not.
		l.checkpoints.leading.Store(false)
	}
	if l.st.Shared() {
		l.publisher.SetFollowing(true)
	}
	stop()
	wg.Wait()
	l.gauge.Set(0)
}

// sweepPending abandons, every PendingGrace/2, the reservations a CA
// process sharing the store left when it died mid-issuance.
func (l *leadership) sweepPending(ctx context.Context) {
	t := time.NewTicker(ca.PendingGrace / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.authority.AbandonStale(); err != nil {
			l.log.Error("abandoning stale reservations", "error", err)
		}
	}
}
