package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/command"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

// responderKeyPrefix starts the labels of the all-in-one CA's own OCSP
// responder keys: shomei-ocsp-sign-g1, shomei-ocsp-auth-g1, …
const responderKeyPrefix = "shomei-ocsp"

// startOCSP makes the OCSP responder of every issuer key generation (R-R6):
// responder keys in the HSM, their certificates signed by the issuers and
// renewed before they expire in bg.
func startOCSP(ctx context.Context, bg *command.Background, cfg *config.Config, st *store.Store, tok *hsm.Token, authority *ca.CA, reg prometheus.Registerer, log *slog.Logger) (*ocsp.Responder, error) {
	var targets []responders.Target
	for _, g := range authority.IssuerGenerations() {
		targets = append(targets, responders.Target{Name: g.Name, Certificate: authority.IssuerCertificate(g.Profile, g.Generation)})
	}
	keeper, err := command.NewKeeper(cfg.OCSP, responders.Config{
		Token:     tok,
		Targets:   targets,
		KeyPrefix: responderKeyPrefix,
		Certifier: ca.LocalResponderCertifier{CA: authority},
		Store:     st,
		Log:       log,
	})
	if err != nil {
		return nil, err
	}
	return command.StartResponder(ctx, bg, command.ResponderConfig{
		Settings: cfg.OCSP, Keeper: keeper, Source: authority.OCSPSource(), Log: log, Metrics: reg,
	})
}
