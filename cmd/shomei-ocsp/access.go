package main

import (
	"crypto/tls"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/relyingparty"
)

// statusGate is the relying-party gate in front of /ocsp (R-R6) and the
// HTTP listener's TLS (nil: plain HTTP), from http_access.
func statusGate(access config.HTTPAccess, reg prometheus.Registerer, log *slog.Logger) (*relyingparty.Gate, *tls.Config, error) {
	httpTLS, err := access.ServerTLS()
	if err != nil {
		return nil, nil, err
	}
	gc, err := access.GateConfig()
	if err != nil {
		return nil, nil, err
	}
	gc.Log, gc.Metrics = log, reg
	gate, err := relyingparty.New(gc)
	return gate, httpTLS, err
}
