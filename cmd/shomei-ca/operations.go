package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/ops"
)

// newOperations makes the operator's API (shomei.ops.v1.Operations): its
// keys, approvals and records parts, over what run opened and the CA.
// stopping is closed when the CA starts to stop (it ends the watches).
func newOperations(o *opened, authority *ca.CA, reg prometheus.Registerer, stopping <-chan struct{}, log *slog.Logger) (*ops.Server, error) {
	keys, err := ops.NewKeys(ops.KeysConfig{CA: authority, Log: log})
	if err != nil {
		return nil, err
	}
	approvals, err := ops.NewApprovals(ops.ApprovalsConfig{Store: o.st, CA: authority, Approvals: o.cfg.Approvals, Log: log, Stopping: stopping})
	if err != nil {
		return nil, err
	}
	records, err := ops.NewRecords(ops.RecordsConfig{Store: o.st, Token: o.tok, SpoolDir: o.cfg.Store.SpoolDir, Log: log,
		AuditMetrics: o.auditMetrics})
	if err != nil {
		return nil, err
	}
	return ops.New(keys, approvals, records)
}
