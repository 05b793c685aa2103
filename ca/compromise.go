package ca

import (
	"context"
	"time"

	"github.com/shomei-pki/shomei/ca/store"
)

// CheckCompromise says whether generation of p can be recorded
// compromised with invalidSince (R-K2).
func (c *CA) CheckCompromise(p Profile, generation uint32, invalidSince time.Time) error {
	return errNotBuilt
}

// Compromise records an issuer key compromise (R-K2): the generation
// issues nothing from the first step on, and every certificate it issued
// is revoked with cACompromise, in batches, reporting progress. Run again
// after an interruption, it finishes what is left, revoking nothing twice.
func (c *CA) Compromise(ctx context.Context, p Profile, generation uint32, invalidSince time.Time, by Approval,
	progress func(done, total uint64)) (*store.CompromiseResult, error) {
	return nil, errNotBuilt
}
