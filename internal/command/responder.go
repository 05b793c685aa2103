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
	Source  ocsp.Source
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// StartResponder has the keeper certify the current responders, makes the
// OCSP responder answering with them, and keeps them renewed in bg (R-R6).
func StartResponder(ctx context.Context, bg *Background, c ResponderConfig) (*ocsp.Responder, error) {
	issuers, next, err := c.Keeper.Current(ctx)
	if err != nil {
		return nil, err
	}
	s := c.Settings
	responder, err := ocsp.New(ocsp.Config{
		Issuers:   issuers,
		Source:    c.Source,
		Validity:  s.ResponseValidity,
		MaxAge:    s.MaxAge,
		CacheSize: s.CacheSize,
		Log:       c.Log,
		Metrics:   c.Metrics,

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
