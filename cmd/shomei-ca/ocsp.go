package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

// responderKeyPrefix starts the labels of the all-in-one CA's own OCSP
// responder keys: shomei-ocsp-sign-g1, shomei-ocsp-auth-g1, …
const responderKeyPrefix = "shomei-ocsp"

// startOCSP makes the OCSP responder of every issuer key generation (R-R6):
// responder keys in the HSM, their certificates signed by the issuers and
// renewed before they expire by a goroutine that lives as long as ctx.
func startOCSP(ctx context.Context, background *sync.WaitGroup, cfg *config.Config, st *store.Store, tok *hsm.Token, authority *ca.CA, reg prometheus.Registerer, log *slog.Logger) (*ocsp.Responder, error) {
	var targets []responders.Target
	for _, g := range authority.IssuerGenerations() {
		targets = append(targets, responders.Target{Name: g.Name, Certificate: authority.IssuerCertificate(g.Profile, g.Generation)})
	}
	keeper, err := responders.New(responders.Config{
		Token:       tok,
		Targets:     targets,
		KeyPrefix:   responderKeyPrefix,
		Certifier:   ca.LocalResponderCertifier{CA: authority},
		Store:       st,
		Validity:    cfg.OCSP.ResponderValidity,
		RenewBefore: cfg.OCSP.RenewBefore,
		Log:         log,
	})
	if err != nil {
		return nil, err
	}
	issuers, next, err := keeper.Current(ctx)
	if err != nil {
		return nil, err
	}
	responder, err := ocsp.New(ocsp.Config{
		Issuers:   issuers,
		Source:    authority.OCSPSource(),
		Validity:  cfg.OCSP.ResponseValidity,
		MaxAge:    cfg.OCSP.MaxAge,
		CacheSize: cfg.OCSP.CacheSize,
		Log:       log,
		Metrics:   reg,

		SignatureBudget: cfg.OCSP.SignatureBudget,
		SignatureBurst:  cfg.OCSP.SignatureBurst,
		UnknownReuse:    cfg.OCSP.UnknownReuse,
	})
	if err != nil {
		return nil, err
	}
	background.Go(func() { keeper.Maintain(ctx, responder, next) })
	return responder, nil
}
