package command

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/ocsp"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

// NewKeeper makes the keeper of a server's delegated OCSP responders
// (R-R6): keys as keys says (token, targets, label prefix, certifier,
// store), certificates valid and renewed as the ocsp section says.
func NewKeeper(settings config.OCSP, keys responders.Config) (*responders.Keeper, error) {
	keys.Validity, keys.RenewBefore = settings.ResponderValidity, settings.RenewBefore
	return responders.New(keys)
}

// ResponderConfig is one server's OCSP responder.
type ResponderConfig struct {
	// Settings are the configuration's ocsp section.
	Settings config.OCSP
	// Keeper keeps the delegated responders the responses are signed with.
	Keeper *responders.Keeper
	// Source answers for a serial: the CA's store, or a replica's copy.
	Source ocsp.Source
	// Presigned holds the pre-signed responses, read when the ocsp.presign
	// section has pre-signing on.
	Presigned ocsp.ResponseStore
	Log       *slog.Logger
	Metrics   prometheus.Registerer
}

// StartResponder has the keeper certify the current responders, makes the
// OCSP responder answering with them, and keeps them renewed in bg (R-R6).
func StartResponder(ctx context.Context, bg *Background, c ResponderConfig) (*ocsp.Responder, error) {
	issuers, next, err := c.Keeper.Current(ctx)
	if err != nil {
		return nil, err
	}
	s := c.Settings
	var presigned ocsp.ResponseStore
	if s.Presign.On() {
		presigned = c.Presigned
	}
	responder, err := ocsp.New(ocsp.Config{
		Presigned: presigned,
		Issuers:   issuers,
		Source:    c.Source,
		Validity:  s.ResponseValidity,
		MaxAge:    s.MaxAge,
		// GoodMaxAge: nil keeps MaxAge for good answers too.
		GoodMaxAge: s.GoodMaxAge,
		CacheSize:  s.CacheSize,
		Log:        c.Log,
		Metrics:    c.Metrics,

		SignatureBudget: s.SignatureBudget,
		SignatureBurst:  s.SignatureBurst,
		UnknownReuse:    s.UnknownReuse,
	})
	if err != nil {
		return nil, err
	}
	bg.Go(func(ctx context.Context) { c.Keeper.Maintain(ctx, responder, next) })
	return responder, nil
}

// NewPresigner makes the pre-signer of responder over store, as the ocsp
// section's presign settings say; nil when pre-signing is off. Its caller
// runs it: the CA while it leads, a replica always.
func NewPresigner(settings config.OCSP, responder *ocsp.Responder, store ocsp.PresignStore, log *slog.Logger, reg prometheus.Registerer) (*ocsp.Presigner, error) {
	p := settings.Presign
	if !p.On() {
		return nil, nil
	}
	return ocsp.NewPresigner(ocsp.PresignConfig{
		Responder: responder, Store: store,
		Budget: p.Budget, Burst: p.Burst, RefreshAfter: p.RefreshAfter, Workers: p.Workers,
		Log: log, Metrics: reg,
	})
}
