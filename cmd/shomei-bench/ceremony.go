package main

import (
	"context"
	"log/slog"

	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/config"
)

// runCeremony runs the key ceremony on the store and token of the
// configuration at conf, as `shomeictl init` does: shomei-ca refuses to
// start over a store without issuers.
func runCeremony(ctx context.Context, conf string, log *slog.Logger) error {
	cfg, err := config.Load(conf)
	if err != nil {
		return err
	}
	ic, err := cfg.IssuerConfig()
	if err != nil {
		return err
	}
	st, err := cfg.Store.Open(store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := cfg.OpenHSM()
	if err != nil {
		return err
	}
	defer tok.Close()
	_, err = (&issuer.Ceremony{Token: tok, Store: st, Config: ic, Operator: "shomei-bench", Log: log}).Run(ctx)
	return err
}
