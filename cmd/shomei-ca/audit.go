package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/config"
)

// checkpointer signs the audit log's checkpoints while the CA runs.
type checkpointer struct {
	*audit.Checkpointer
	log *slog.Logger
}

// startAuditCheckpoints finds the audit key in the HSM, generating it on
// the first start of a store that predates it, and signs a checkpoint of
// the log as it is now (R-K3).
func startAuditCheckpoints(ctx context.Context, cfg *config.Config, st *store.Store, tok *hsm.Token, log *slog.Logger) (*checkpointer, error) {
	key, err := audit.Key(ctx, tok, true, log)
	if err != nil {
		return nil, err
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key,
		Every: cfg.Audit.CheckpointEvery, Interval: cfg.Audit.CheckpointInterval, Log: log})
	if err != nil {
		return nil, err
	}
	if err := cp.Checkpoint(ctx); err != nil {
		return nil, err
	}
	return &checkpointer{Checkpointer: cp, log: log}, nil
}

// stop signs the last checkpoint at a clean stop.
func (c *checkpointer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Checkpoint(ctx); err != nil {
		c.log.Error("audit checkpoint at stop failed: the log ends in an unsigned tail", "error", err)
	}
}
