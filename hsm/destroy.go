package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// DestroyKey destroys the key pair with ref's label and id: the private key
// and its public key object (R-K1: a retired or compromised issuer key is
// destroyed by an approved operator action). It reports whether a private
// key was there. Finding none is not an error, so that an operation
// interrupted after the token destroyed the key can be run again; a
// session that is not logged in (where private keys are out of sight) is
// an error, never "none found". More than one private key under ref is
// ErrKeyAmbiguous and destroys nothing.
func (t *Token) DestroyKey(ctx context.Context, ref KeyRef) (found bool, err error) {
	if err := ref.check(); err != nil {
		return false, err
	}
	err = t.do(ctx, "destroy key "+ref.String(), func(s session) error {
		found = false
		privs, err := findObjects(s, ref, pkcs11.CKO_PRIVATE_KEY)
		if err != nil {
			return err
		}
		switch len(privs) {
		case 0:
			if err := loggedIn(s); err != nil {
				return err
			}
		case 1:
			found = true
		default:
			return fmt.Errorf("%w: %d keys match", ErrKeyAmbiguous, len(privs))
		}
		pubs, err := findObjects(s, ref, pkcs11.CKO_PUBLIC_KEY)
		if err != nil {
			return err
		}
		for _, h := range append(privs, pubs...) {
			if err := s.ctx.DestroyObject(s.h, h); err != nil && !isStaleHandle(err) {
				return err
			}
		}
		return nil
	})
	return found, err
}
