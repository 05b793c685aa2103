package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/config"
)

// checkpointer signs the audit log's checkpoints while the CA runs, or,
// on a store shared with other CA processes, while this one leads
// (leadership): the HSM's witness is one object on the token they
// share, which one writer moves on at a time.
type checkpointer struct {
	*audit.Checkpointer
	shared  bool
	leading atomic.Bool
	log     *slog.Logger
}

// lead signs checkpoints until ctx ends: a shared store's new leader
// first reads the witness its predecessor left and signs what was
// appended since.
func (c *checkpointer) lead(ctx context.Context) {
	if c.shared {
		c.Reload()
		if err := c.Checkpoint(ctx); err != nil {
			c.log.Error("audit checkpoint on taking the lead failed; retrying", "error", err)
		}
	}
	c.Run(ctx)
}

// startAuditCheckpoints finds the audit key in the HSM, generating it on
// the first start of a store that predates it, verifies the log (chain,
// checkpoints, the HSM's witness of the last one, every certificate
// reconciled), and signs a checkpoint of it as it is now, which the HSM
// witnesses (R-K3); a store that predates the witness gets one here. A log that does not verify stops the CA: it would
// otherwise sign a checkpoint over the tampering, and serve a certificate
// un-revoked in the file as good.
func startAuditCheckpoints(ctx context.Context, cfg *config.Config, st *store.Store, tok *hsm.Token, metrics *audit.VerifyMetrics, log *slog.Logger) (*checkpointer, error) {
	key, err := audit.Key(ctx, tok, false, log)
	created := errors.Is(err, audit.ErrNoKey)
	if created {
		key, err = audit.Key(ctx, tok, true, log)
	}
	if err != nil {
		return nil, err
	}
	witness, err := audit.ReadWitness(ctx, tok, key.Public())
	if err != nil {
		return nil, fmt.Errorf("the audit log does not verify (R-K3) against the HSM's witness; investigate with shomeictl audit verify --offline before starting the CA: %w", err)
	}
	report, err := audit.Verify(st, key.Public(), witness)
	metrics.Record(time.Now(), err)
	if err != nil {
		return nil, fmt.Errorf("the audit log does not verify (R-K3); investigate with shomeictl audit verify --offline before starting the CA: %w", err)
	}
	switch {
	case !created && report.Records > 0 && report.Checkpoints == 0:
		return nil, fmt.Errorf("the audit log has %d records and no signed checkpoint, though the HSM has held the audit key: checkpoints were removed (R-K3); investigate with shomeictl audit verify --offline", report.Records)
	case report.UnsignedTail() > 0 && !created:
		log.Warn("the audit log ends in an unsigned tail (the CA stopped without its last checkpoint, or the log was written without it); signing it now",
			"records", report.UnsignedTail(), "after", report.Signed)
	}
	log.Info("audit log verified", "records", report.Records, "checkpoints", report.Checkpoints, "witnessed", report.Witnessed, "certificates", report.Certificates)
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: tok,
		Every: cfg.Audit.CheckpointEvery, Interval: cfg.Audit.CheckpointInterval, Log: log, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	// On a shared store the leader signs (leadership); here only the
	// CA's own store is signed before it serves. A shared store's log
	// left sealed (by a bbolt CA's clean stop before shomeictl store
	// migrate, or by an offline command) is opened here, before this
	// process serves: records it appended before it led would follow a
	// sealed witness, which no leader signs over and the next start
	// refuses as tampering. A log another process runs on is not sealed,
	// and Open leaves it as it is.
	if !st.Shared() {
		if err := cp.Checkpoint(ctx); err != nil {
			return nil, err
		}
	} else if err := cp.Open(ctx); err != nil {
		return nil, err
	}
	return &checkpointer{Checkpointer: cp, shared: st.Shared(), log: log}, nil
}

// stop signs the last checkpoint at a stop and, when every writer has
// ended (quiet), seals the log there in the HSM's witness: a record
// appended while the CA is stopped is then found at the next start. A
// writer still running could append after the seal and stop the next
// start, so without quiet the log is left open, as after a crash.
//
// On a shared store the log is never sealed, since the other CA processes
// go on writing; only the leader signs its last checkpoint.
func (c *checkpointer) stop(quiet bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	finish := c.Close
	if !quiet || c.shared {
		finish = c.CloseOpen
	}
	if c.shared && !c.leading.Load() {
		return
	}
	if err := finish(ctx); err != nil {
		c.log.Error("audit checkpoint at stop failed: the log ends in an unsigned tail", "error", err)
	}
}

// backgroundStopTimeout bounds the wait for the background work at a stop.
const backgroundStopTimeout = 10 * time.Second
