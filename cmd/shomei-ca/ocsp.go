package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
func startOCSP(ctx context.Context, cfg *config.Config, st *store.Store, tok *hsm.Token, authority *ca.CA, reg prometheus.Registerer, log *slog.Logger) (*ocsp.Responder, error) {
	var targets []responders.Target
	for _, g := range authority.IssuerGenerations() {
		targets = append(targets, responders.Target{Name: g.Name, Certificate: authority.IssuerCertificate(g.Profile, g.Generation)})
	}
	keeper, err := responders.New(responders.Config{
		Token:       tok,
		Targets:     targets,
		KeyPrefix:   responderKeyPrefix,
		Certifier:   ca.LocalResponderCertifier{CA: authority, Actor: "shomei-ca"},
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
	})
	if err != nil {
		return nil, err
	}
	go renewResponders(ctx, keeper, responder, next, log)
	return responder, nil
}

// renewResponders renews the responder certificates when due.
func renewResponders(ctx context.Context, keeper *responders.Keeper, responder *ocsp.Responder, next time.Time, log *slog.Logger) {
	for {
		wait := time.Until(next)
		// Wake at least hourly: a suspended machine's timers run late.
		wait = max(min(wait, time.Hour), time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if time.Now().Before(next) {
			continue
		}
		issuers, n, err := keeper.Current(ctx)
		if err == nil {
			err = responder.SetIssuers(issuers)
		}
		if err != nil {
			log.Error("renewing the OCSP responder certificates failed; retrying in a minute", "err", err)
			next = time.Now().Add(time.Minute)
			continue
		}
		next = n
	}
}

// withOCSP routes /ocsp and /ocsp/… to the responder before mux: a
// ServeMux would clean the base64 of GET requests, which may contain "//".
func withOCSP(responder *ocsp.Responder, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == ocsp.DefaultPath || strings.HasPrefix(p, ocsp.DefaultPath+"/") {
			responder.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
