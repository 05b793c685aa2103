package ca

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// CheckHSM checks, without signing, that the HSM is reachable and still
// holds the key of each active issuer (hsm.Signer.Check): what readiness
// asks of the HSM. It names the issuers whose key cannot be used.
func (c *CA) CheckHSM(ctx context.Context) error {
	active := c.gens.Load().active
	profiles := make([]Profile, 0, len(active))
	for p := range active {
		profiles = append(profiles, p)
	}
	slices.Sort(profiles)
	var errs []error
	for _, p := range profiles {
		a := active[p]
		if err := a.signer.Check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", a.rec.KeyLabel, err))
		}
	}
	return errors.Join(errs...)
}
