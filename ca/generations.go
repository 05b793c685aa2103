package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// The live set of issuer key generations (R-K1). The CA holds it as an
// immutable snapshot behind an atomic pointer: a request reads it once and
// keeps the generation it planned with to the end, while a rotation, an
// activation, a retirement or a compromise records the change in the
// store, loads a new snapshot (its new signers found and checked in the
// HSM first) and swaps it in. Nothing is restarted and no request fails.

// ErrIssuerNotSigning is wrapped by IssuerSigner for a generation that
// signs nothing: RETIRED, DESTROYED, or PENDING (not yet active).
var ErrIssuerNotSigning = errors.New("the issuer key generation signs nothing")

// generations is one snapshot of the issuer key generations.
type generations struct {
	// active is the issuing generation of each profile; none for a
	// profile whose key is compromised and not yet rotated (R-K2).
	active map[Profile]*issuerKey
	// all is every generation, by profile and generation.
	all map[Profile]map[uint32]issuer.Issuer
	// list is every generation, ordered by profile then generation.
	list []issuer.Issuer
}

// find returns a generation.
func (g *generations) find(p Profile, generation uint32) (issuer.Issuer, bool) {
	is, ok := g.all[p][generation]
	return is, ok
}

// latest returns the last generation of p.
func (g *generations) latest(p Profile) (issuer.Issuer, bool) {
	var last issuer.Issuer
	for _, is := range g.list {
		if is.Profile == p {
			last = is
		}
	}
	return last, last.IssuerKey != nil
}

// same reports whether two snapshots have the same generations in the same
// states.
func (g *generations) same(o *generations) bool {
	if len(g.list) != len(o.list) {
		return false
	}
	for i, a := range g.list {
		b := o.list[i]
		if a.Profile != b.Profile || a.Generation != b.Generation || a.State != b.State {
			return false
		}
	}
	return true
}

// loadGenerations reads the generations from the store and finds the key
// of each ACTIVE one in the HSM, checked against its certificate; a key
// prev already checked is kept.
func (c *CA) loadGenerations(ctx context.Context, prev *generations) (*generations, error) {
	issuers, err := issuer.Load(c.cfg.Store)
	if err != nil {
		return nil, err
	}
	g := &generations{active: map[Profile]*issuerKey{}, all: map[Profile]map[uint32]issuer.Issuer{}, list: issuers}
	for _, is := range issuers {
		if g.all[is.Profile] == nil {
			g.all[is.Profile] = map[uint32]issuer.Issuer{}
		}
		g.all[is.Profile][is.Generation] = is
		if is.State != storev1.KeyState_KEY_STATE_ACTIVE {
			continue
		}
		if prev != nil {
			if a := prev.active[is.Profile]; a != nil && a.rec.Generation == is.Generation && bytes.Equal(a.rec.KeyId, is.KeyId) {
				kept := *a
				kept.rec = is.IssuerKey
				g.active[is.Profile] = &kept
				continue
			}
		}
		k, err := c.issuingKey(ctx, is)
		if err != nil {
			return nil, err
		}
		g.active[is.Profile] = k
	}
	return g, nil
}

// issuingKey finds an issuer's key in the HSM, checks it against the
// issuer certificate (a test signature that verifies) and the signature
// algorithm the certificates will carry.
func (c *CA) issuingKey(ctx context.Context, is issuer.Issuer) (*issuerKey, error) {
	signer, err := is.Signer(ctx, c.cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("ca: %s issuer generation %d: %w", issuer.ShortName(is.Profile), is.Generation, err)
	}
	if _, err := hsm.AlgorithmOf(signer.Public()); err != nil {
		return nil, err
	}
	sigAlg, err := x509enc.SignatureAlgorithmOf(is.Certificate.Raw)
	if err != nil {
		return nil, fmt.Errorf("ca: %s issuer generation %d: %w", issuer.ShortName(is.Profile), is.Generation, err)
	}
	// The TBS the profile encodes names the algorithm of the issuer's
	// key; the certificates carry the issuer certificate's. They agree,
	// and the digest is that algorithm's hash (R-P1).
	alg, err := x509enc.ForPublicKey(is.Certificate.PublicKey)
	if err != nil || !bytes.Equal(alg.ID, sigAlg) {
		return nil, fmt.Errorf("ca: %s issuer generation %d: certificate signature algorithm is not the one its key type signs with (R-P1)", issuer.ShortName(is.Profile), is.Generation)
	}
	return &issuerKey{rec: is.IssuerKey, cert: is.Certificate, signer: signer, hash: alg.Hash, sigAlg: sigAlg}, nil
}

// Reload reads the issuer generations from the store again and moves
// issuance to what they say (after a rotation, an activation, a
// compromise), without failing a request in flight: requests that already
// planned with a generation finish with it. The keys of newly active
// generations are found and checked in the HSM before anything changes;
// if one fails, nothing changes. When the set changed, OnIssuersChanged is
// called.
func (c *CA) Reload(ctx context.Context) error {
	c.reloadMu.Lock()
	prev := c.gens.Load()
	next, err := c.loadGenerations(ctx, prev)
	if err != nil {
		c.reloadMu.Unlock()
		return err
	}
	c.gens.Store(next)
	c.reloadMu.Unlock()
	c.observeIssuers(next)
	if prev.same(next) {
		return nil
	}
	for _, p := range issuer.Profiles {
		if a, b := prev.active[p], next.active[p]; b != nil && (a == nil || a.rec.Generation != b.rec.Generation) {
			c.log.Info("issuance moved to a new issuer key generation", "issuer", IssuerName(p, b.rec.Generation))
		}
	}
	c.wakeActivation()
	if c.cfg.OnIssuersChanged != nil {
		c.cfg.OnIssuersChanged()
	}
	return nil
}

// IssuerCertificate returns the certificate of a profile's issuer
// generation, nil if there is none.
func (c *CA) IssuerCertificate(p Profile, generation uint32) *x509.Certificate {
	is, _ := c.gens.Load().find(p, generation)
	return is.Certificate
}

// IssuerSigner returns the certificate and HSM signer of an issuer key
// generation that signs: the active one, or an older one — SUPERSEDED or
// COMPROMISED — that still signs CRLs and OCSP responders for its own
// certificates (R-K1, R-K2). A RETIRED, DESTROYED or PENDING generation is
// refused (ErrIssuerNotSigning). Signers of older generations are found
// and checked on first use.
func (c *CA) IssuerSigner(p Profile, generation uint32) (*x509.Certificate, crypto.Signer, error) {
	g := c.gens.Load()
	if a := g.active[p]; a != nil && a.rec.Generation == generation {
		return a.cert, a.signer, nil
	}
	is, ok := g.find(p, generation)
	if !ok {
		return nil, nil, fmt.Errorf("ca: no %s issuer generation %d", issuer.ShortName(p), generation)
	}
	if !issuer.Signs(is.State) {
		return nil, nil, fmt.Errorf("ca: issuer %s is %s: %w (R-K1)", IssuerName(p, generation), stateName(is.State), ErrIssuerNotSigning)
	}
	c.signersMu.Lock()
	defer c.signersMu.Unlock()
	key := fmt.Sprintf("%d/%d/%x", p, generation, is.KeyId)
	if s, ok := c.signers[key]; ok {
		return is.Certificate, s, nil
	}
	s, err := is.Signer(context.Background(), c.cfg.Token)
	if err != nil {
		return nil, nil, err
	}
	c.signers[key] = s
	return is.Certificate, s, nil
}

// stateName is a key state as operators read it: "SUPERSEDED".
func stateName(s storev1.KeyState) string {
	const prefix = "KEY_STATE_"
	name := s.String()
	if len(name) > len(prefix) && name[:len(prefix)] == prefix {
		return name[len(prefix):]
	}
	return name
}

// activationRecheck bounds how long the activation timer sleeps, so that
// an activation time is met even when the wall clock jumps.
const activationRecheck = time.Minute

// activationRetry is how long it waits after a failed activation.
const activationRetry = 10 * time.Second

// runActivation records PENDING generations ACTIVE at their activation
// time (R-K1) until ctx ends or Close is called. With nothing pending it
// sleeps until woken (Reload wakes it).
func (c *CA) runActivation(ctx context.Context) {
	defer close(c.activationDone)
	failed := false
	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if at, ok := c.nextActivation(); ok {
			d := min(at.Sub(c.now()), activationRecheck)
			if failed {
				d = max(d, activationRetry)
			}
			timer = time.NewTimer(max(d, 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-c.stopActivation:
		case <-c.activationWake:
		case <-fire:
			err := c.ActivateDue(ctx)
			failed = err != nil
			if err != nil {
				c.log.Error("activating a pending issuer key generation failed; trying again", "error", err)
			}
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil || c.closed.Load() {
			return
		}
	}
}

// nextActivation is the earliest activation time of a PENDING generation.
func (c *CA) nextActivation() (time.Time, bool) {
	var next time.Time
	for _, is := range c.gens.Load().list {
		if is.State == storev1.KeyState_KEY_STATE_PENDING {
			if at := is.ActivateAt.AsTime(); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	return next, !next.IsZero()
}

func (c *CA) wakeActivation() {
	select {
	case c.activationWake <- struct{}{}:
	default:
	}
}

// ActivateDue records every PENDING generation whose activation time has
// come ACTIVE, and the ACTIVE one before it SUPERSEDED, each in one
// transaction with an audit record (R-K1, R-K3), then moves issuance to
// it. Its key is found and checked in the HSM first: a key that cannot be
// used is not activated (the error says why; the timer tries again). The
// CA's activation timer calls it; it is exported for tests that move a
// pinned clock.
func (c *CA) ActivateDue(ctx context.Context) error {
	c.keyOpsMu.Lock()
	defer c.keyOpsMu.Unlock()
	now := c.now()
	var errs []error
	for _, is := range c.gens.Load().list {
		if is.State != storev1.KeyState_KEY_STATE_PENDING || is.ActivateAt.AsTime().After(now) {
			continue
		}
		if _, err := c.issuingKey(ctx, is); err != nil {
			errs = append(errs, err)
			continue
		}
		name := IssuerName(is.Profile, is.Generation)
		audit := []*storev1.AuditRecord{{Time: timestamppb.New(now), Actor: c.cfg.Actor, Action: "issuer.activate",
			Fields: []*storev1.AuditField{{Key: "issuer", Value: name}, {Key: "profile", Value: issuer.ShortName(is.Profile)},
				{Key: "generation", Value: fmt.Sprint(is.Generation)},
				{Key: "activate_at", Value: is.ActivateAt.AsTime().UTC().Format(time.RFC3339)}}}}
		err := c.cfg.Store.ActivateIssuerKey(is.Profile, is.Generation, audit)
		if err != nil && !errors.Is(err, store.ErrKeyState) {
			errs = append(errs, err)
			continue
		}
		c.log.Info("pending issuer key generation activated", "issuer", name)
	}
	if err := c.Reload(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close stops the CA's activation timer and waits for it. The CA still
// answers afterwards, but a PENDING generation is no longer activated by
// this CA. Close is idempotent.
func (c *CA) Close() {
	if c.closed.CompareAndSwap(false, true) {
		close(c.stopActivation)
	}
	<-c.activationDone
}
