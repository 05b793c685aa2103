package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
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

// startOCSP makes the OCSP responder of every issuer key generation that
// still answers for its certificates (responderTargets, R-R6, R-K1):
// responder keys in the HSM, their certificates signed by the issuers and
// renewed before they expire in bg. The keeper it returns takes the
// generations added or retired later (generations.Sync).
//
// The responder answers from the pre-signed responses in the store; the
// pre-signer it returns (nil when ocsp.presign is off) fills them, run by
// the leader alone (leadership).
func startOCSP(ctx context.Context, bg *command.Background, cfg *config.Config, st *store.Store, tok *hsm.Token, authority *ca.CA, reg prometheus.Registerer, log *slog.Logger) (*ocsp.Responder, *responders.Keeper, *ocsp.Presigner, error) {
	all, err := issuer.Load(st)
	if err != nil {
		return nil, nil, nil, err
	}
	keeper, err := command.NewKeeper(cfg.OCSP, responders.Config{
		Token:     tok,
		Targets:   responderTargets(all),
		KeyPrefix: responderKeyPrefix,
		Certifier: ca.LocalResponderCertifier{CA: authority},
		Store:     st,
		Log:       log,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	responses := ca.OCSPResponses{Store: st, Issuer: authority.IssuerCertificate}
	responder, err := command.StartResponder(ctx, bg, command.ResponderConfig{
		Settings: cfg.OCSP, Keeper: keeper, Source: authority.OCSPSource(), Presigned: responses, Log: log, Metrics: reg,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	presigner, err := command.NewPresigner(cfg.OCSP, responder, responses, log, reg)
	return responder, keeper, presigner, err
}
