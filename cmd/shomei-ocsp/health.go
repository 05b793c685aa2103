package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/shomei-pki/shomei/internal/health"
	"github.com/shomei-pki/shomei/ocsp/replica"
)

// maxSyncAge is how long the replica may go without hearing from the CA
// (its heartbeats come every 5 s) before it stops being ready: it still
// answers from its copy for a while (until half the response validity),
// but a load balancer should prefer a replica in sync (R-R4).
const maxSyncAge = 30 * time.Second

// newReadiness is the replica's readiness: synced with the CA within
// maxSyncAge.
func newReadiness(st *replica.Store, log *slog.Logger) (*health.Checker, error) {
	return health.New(health.Config{Log: log, Checks: []health.Check{
		{Name: "sync", Probe: func(context.Context) health.Result {
			return health.Result{Err: syncProblem(st.SyncedAt(), time.Now())}
		}},
	}})
}

// syncProblem says why a replica last in sync at synced is not ready at
// now, or nil.
func syncProblem(synced, now time.Time) error {
	switch age := now.Sub(synced); {
	case synced.IsZero():
		return fmt.Errorf("never synced with the CA")
	case age > maxSyncAge:
		return fmt.Errorf("last in sync with the CA %s ago, at %s (more than %s): is the CA reachable?",
			age.Round(time.Second), synced.UTC().Format(time.RFC3339), maxSyncAge)
	}
	return nil
}
