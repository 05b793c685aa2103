package ca

import (
	"context"
	"errors"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// errNotBuilt: the operation is not built yet (issue 11, in progress).
var errNotBuilt = errors.New("ca: not built yet")

// CheckRotate says whether a rotation of p activating at activateAt (zero:
// at once) could run now; a *Error of KindInvalid or KindPrecondition
// naming the field when not.
func (c *CA) CheckRotate(p Profile, activateAt time.Time) error { return errNotBuilt }

// Rotate makes a new key generation of p in the HSM, its self-signed
// issuer certificate and the two link certificates, and records it; new
// issuance moves to it at activateAt (zero: at once), without a restart
// (R-K1).
func (c *CA) Rotate(ctx context.Context, p Profile, activateAt time.Time, by Approval) (*storev1.IssuerKey, error) {
	return nil, errNotBuilt
}

// CheckRetire says whether generation of p may be retired now: not the
// active or a pending one, and none of its certificates unexpired.
func (c *CA) CheckRetire(p Profile, generation uint32) error { return errNotBuilt }

// Retire stops a generation signing anything; its key stays in the HSM.
func (c *CA) Retire(ctx context.Context, p Profile, generation uint32, by Approval) error {
	return errNotBuilt
}

// CheckDestroy says whether generation of p's key may be destroyed now:
// retired or compromised, not yet destroyed.
func (c *CA) CheckDestroy(p Profile, generation uint32) error { return errNotBuilt }

// Destroy destroys a generation's private key in the HSM.
func (c *CA) Destroy(ctx context.Context, p Profile, generation uint32, by Approval) error {
	return errNotBuilt
}

// Reload reads the issuer generations from the store again and moves
// issuance to what they say (after a rotation, an activation, a
// compromise), without failing a request in flight.
func (c *CA) Reload(ctx context.Context) error { return errNotBuilt }
