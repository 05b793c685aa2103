package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/health"
)

// Readiness of shomei-ca: the HSM holds and can use every active issuer key
// (checked at most every hsmCheckEvery, without signing), and every CRL
// partition is fresh. /readyz and the gRPC health status follow it; the
// gRPC status is refreshed every healthFollowEvery.
const (
	hsmCheckEvery     = 5 * time.Second
	healthFollowEvery = 2 * time.Second
)

func newReadiness(authority *ca.CA, publisher *crl.Publisher, log *slog.Logger) (*health.Checker, error) {
	return health.New(health.Config{Log: log, Checks: []health.Check{
		{Name: "hsm", Every: hsmCheckEvery, Probe: func(ctx context.Context) health.Result {
			return health.Result{Err: authority.CheckHSM(ctx)}
		}},
		{Name: "crl", Probe: func(context.Context) health.Result {
			degraded, err := publisher.Health(time.Now())
			return health.Result{Err: err, Degraded: degraded}
		}},
	}})
}
