package responders

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/ocsp"
)

// Defaults for Config.
const (
	DefaultValidity    = 24 * time.Hour
	DefaultRenewBefore = 8 * time.Hour
	// DefaultKeyAlgorithm: responses are signed like the issuers sign
	// certificates (R-P1).
	DefaultKeyAlgorithm = hsm.RSA2048
)

// Target is one issuer key generation that needs a delegated responder.
type Target struct {
	// Name is the issuer key generation's short name, e.g. "sign-g1". It
	// names the responder key (<KeyPrefix>-<Name>) and is passed to the
	// Certifier.
	Name string
	// Certificate is the issuer certificate.
	Certificate *x509.Certificate
}

// Certifier has the issuer sign a delegated responder certificate for
// responder's public key, valid from notBefore to notAfter, shortened to
// what the issuer allows (at least its own validity). The local CA
// signs it with the issuer key (ca.ResponderCertifier); a replica asks the
// CA over gRPC. The signer is passed so that a remote CA can be given proof
// of possession (a CSR); a local certifier may ignore it.
type Certifier interface {
	CertifyResponder(ctx context.Context, issuer string, responder crypto.Signer, notBefore, notAfter time.Time) (der []byte, err error)
}

// CertStore remembers the current responder certificate of each key, so
// that a restart does not certify a new one.
type CertStore interface {
	// ResponderCertificate returns the certificate saved for keyLabel, or
	// nil and no error when there is none.
	ResponderCertificate(keyLabel string) ([]byte, error)
	SaveResponderCertificate(keyLabel string, der []byte) error
}

// Config configures a Keeper.
type Config struct {
	// Token holds the responder keys; required.
	Token *hsm.Token
	// Targets are the issuer key generations to answer for; at least one.
	Targets []Target
	// KeyPrefix starts every responder key label, e.g. "shomei-ocsp"
	// (the CA) or "shomei-ocsp-replica1"; required.
	KeyPrefix string
	// KeyAlgorithm of new responder keys; default DefaultKeyAlgorithm.
	KeyAlgorithm hsm.KeyAlgorithm
	Certifier    Certifier // required
	Store        CertStore // required
	// Validity of a responder certificate; default DefaultValidity. The
	// id-pkix-ocsp-nocheck extension means relying parties never check it
	// for revocation, so it is kept short.
	Validity time.Duration
	// RenewBefore: a certificate with less than this left is renewed;
	// default DefaultRenewBefore, and less than Validity.
	RenewBefore time.Duration
	Now         func() time.Time // default time.Now
	Log         *slog.Logger     // default discards
}

// Keeper keeps one delegated OCSP responder per issuer key generation:
// its key generated in the HSM on first use and its certificate renewed
// before it expires (R-R6). Its targets may change while it runs (R-K1: a
// rotation adds a generation, a retirement removes one; SetTargets). It is
// safe for concurrent use; passes that may generate keys or certify run
// one at a time.
type Keeper struct {
	cfg Config

	mu      sync.Mutex // guards targets and last
	targets []Target
	// last is the responder of each target last handed to a Responder,
	// kept while its certificate is valid for when renewing fails.
	last map[string]*ocsp.Issuer
	// changed wakes Maintain when the targets changed.
	changed chan struct{}

	work sync.Mutex // serialises Current, Refresh and Keys
}

// New checks cfg and makes a Keeper.
func New(cfg Config) (*Keeper, error) {
	switch {
	case cfg.Token == nil:
		return nil, errors.New("responders: Config.Token is required")
	case cfg.KeyPrefix == "":
		return nil, errors.New("responders: Config.KeyPrefix is required")
	case cfg.Certifier == nil || cfg.Store == nil:
		return nil, errors.New("responders: Config.Certifier and Config.Store are required")
	}
	if err := checkTargets(cfg.Targets, "Config.Targets"); err != nil {
		return nil, err
	}
	if cfg.KeyAlgorithm == "" {
		cfg.KeyAlgorithm = DefaultKeyAlgorithm
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.RenewBefore == 0 {
		cfg.RenewBefore = DefaultRenewBefore
	}
	if cfg.Validity < time.Minute || cfg.RenewBefore <= 0 || cfg.RenewBefore >= cfg.Validity {
		return nil, fmt.Errorf("responders: renew_before (%v) must be positive and less than the validity (%v), which must be at least a minute", cfg.RenewBefore, cfg.Validity)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, targets: slices.Clone(cfg.Targets), last: map[string]*ocsp.Issuer{},
		changed: make(chan struct{}, 1)}, nil
}

// checkTargets: at least one, each with a name and a certificate, no name
// twice (field names them in errors).
func checkTargets(targets []Target, field string) error {
	if len(targets) == 0 {
		return fmt.Errorf("responders: %s is empty", field)
	}
	seen := map[string]bool{}
	for i, t := range targets {
		if t.Name == "" || t.Certificate == nil {
			return fmt.Errorf("responders: %s[%d] needs a name and a certificate", field, i)
		}
		if seen[t.Name] {
			return fmt.Errorf("responders: %s[%d]: %s is named twice", field, i, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// SetTargets replaces the issuer key generations the Keeper keeps
// responders for: a generation added gets its key and certificate at the
// next pass (Refresh, or Maintain, which it wakes), one removed is left
// out of the responders handed out from then on. Its key stays in the
// HSM. A target whose certificate changed under the same name is certified
// anew. A refused list changes nothing.
func (k *Keeper) SetTargets(targets []Target) error {
	if err := checkTargets(targets, "SetTargets: targets"); err != nil {
		return err
	}
	k.mu.Lock()
	k.targets = slices.Clone(targets)
	for name, is := range k.last {
		if !slices.ContainsFunc(targets, func(t Target) bool { return t.Name == name && t.Certificate.Equal(is.Certificate) }) {
			delete(k.last, name)
		}
	}
	k.mu.Unlock()
	select {
	case k.changed <- struct{}{}:
	default:
	}
	return nil
}

// Targets returns the issuer key generations kept now.
func (k *Keeper) Targets() []Target {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.targets)
}

// KeyLabel is the HSM label of the responder key for target.
func (k *Keeper) KeyLabel(target string) string { return k.cfg.KeyPrefix + "-" + target }

// Current returns the responders for every target, certifying a new
// certificate where the saved one is missing, does not match its key or
// issuer, or has less than RenewBefore left, and when the caller should call
// again (the earliest renewal time). When certifying fails but a saved
// certificate is still valid, that one is used and the error is logged, so a
// CA outage does not stop a replica from answering; with no usable
// certificate for a target, Current fails.
func (k *Keeper) Current(ctx context.Context) ([]*ocsp.Issuer, time.Time, error) {
	k.work.Lock()
	defer k.work.Unlock()
	keys, err := k.cfg.Token.Keys(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("responders: listing the HSM's keys: %w", err)
	}
	targets := k.Targets()
	out := make([]*ocsp.Issuer, 0, len(targets))
	var next time.Time
	for _, t := range targets {
		is, renewAt, err := k.current(ctx, t, keys)
		if err != nil {
			return nil, time.Time{}, err
		}
		out = append(out, is)
		if next.IsZero() || renewAt.Before(next) {
			next = renewAt
		}
	}
	k.remember(out)
	return out, next, nil
}

// remember keeps the responders handed out, for Refresh to fall back on.
func (k *Keeper) remember(issuers []*ocsp.Issuer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, is := range issuers {
		for _, t := range k.targets {
			if t.Certificate.Equal(is.Certificate) {
				k.last[t.Name] = is
			}
		}
	}
}

func (k *Keeper) current(ctx context.Context, t Target, keys []hsm.KeyInfo) (*ocsp.Issuer, time.Time, error) {
	label := k.KeyLabel(t.Name)
	signer, err := k.signer(ctx, label, keys)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("responders: %s: %w", label, err)
	}
	now := k.cfg.Now()
	saved, err := k.saved(label, t, signer.Public(), now)
	if err != nil {
		k.cfg.Log.Warn("OCSP responder certificate not usable; certifying a new one", "key", label, "err", err)
	}
	if saved != nil && saved.NotAfter.Sub(now) > k.renewBefore(saved) {
		return &ocsp.Issuer{Certificate: t.Certificate, Responder: saved, Signer: signer}, saved.NotAfter.Add(-k.renewBefore(saved)), nil
	}

	// Backdate a minute for relying parties' clock skew; the certifier
	// keeps it within the issuer's validity.
	notBefore := now.Add(-time.Minute).Truncate(time.Second)
	notAfter := notBefore.Add(k.cfg.Validity)
	cert, err := k.certify(ctx, label, t, signer, notBefore, notAfter)
	if err != nil {
		if saved != nil && now.Before(saved.NotAfter) {
			k.cfg.Log.Error("renewing the OCSP responder certificate failed; the current one is used until it expires",
				"key", label, "not_after", saved.NotAfter, "err", err)
			return &ocsp.Issuer{Certificate: t.Certificate, Responder: saved, Signer: signer}, now.Add(time.Minute), nil
		}
		return nil, time.Time{}, fmt.Errorf("responders: %s: %w", label, err)
	}
	k.cfg.Log.Info("OCSP responder certificate certified", "key", label, "serial", fmt.Sprintf("%x", cert.SerialNumber), "not_after", cert.NotAfter)
	renewAt := cert.NotAfter.Add(-k.renewBefore(cert))
	if !renewAt.After(now) { // the issuer expires within RenewBefore
		renewAt = cert.NotAfter
	}
	return &ocsp.Issuer{Certificate: t.Certificate, Responder: cert, Signer: signer}, renewAt, nil
}

// renewBefore is how long before its end cert is renewed: RenewBefore, or,
// when the certifier granted less than Validity (the CA caps responder
// certificates, R-R6), RenewBefore in proportion, so that a short
// certificate is renewed well before it expires rather than at once or at
// its end.
func (k *Keeper) renewBefore(cert *x509.Certificate) time.Duration {
	life := cert.NotAfter.Sub(cert.NotBefore)
	if life >= k.cfg.Validity {
		return k.cfg.RenewBefore
	}
	return time.Duration(float64(k.cfg.RenewBefore) * float64(life) / float64(k.cfg.Validity))
}

// signer finds the responder key labelled label among the token's keys,
// or generates it.
func (k *Keeper) signer(ctx context.Context, label string, keys []hsm.KeyInfo) (*hsm.Signer, error) {
	var found []hsm.KeyRef
	for _, key := range keys {
		if key.Label == label {
			found = append(found, key.KeyRef)
		}
	}
	switch len(found) {
	case 0:
		ref := hsm.KeyRef{Label: label, ID: make([]byte, 16)}
		if _, err := rand.Read(ref.ID); err != nil {
			return nil, err
		}
		s, err := k.cfg.Token.GenerateKey(ctx, ref, k.cfg.KeyAlgorithm)
		if err != nil {
			return nil, err
		}
		pin, _ := ocsp.KeyPin(s.Public())
		// The pin is public: the operator enrolls it on the CA (R-R6).
		k.cfg.Log.Info("OCSP responder key generated in the HSM", "key", label, "algorithm", k.cfg.KeyAlgorithm, "pin", pin)
		return s, nil
	case 1:
		return k.cfg.Token.Signer(ctx, found[0])
	default:
		return nil, fmt.Errorf("%d keys carry the label; remove the extra ones", len(found))
	}
}

// saved returns the saved certificate of label if it is one for this key
// and issuer, still valid at now.
func (k *Keeper) saved(label string, t Target, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	der, err := k.cfg.Store.ResponderCertificate(label)
	if err != nil || der == nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := check(cert, t, pub); err != nil {
		return nil, err
	}
	if now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("it is valid from %s to %s", cert.NotBefore, cert.NotAfter)
	}
	return cert, nil
}

// certify has the Certifier sign a certificate, checks and saves it.
func (k *Keeper) certify(ctx context.Context, label string, t Target, signer crypto.Signer, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	der, err := k.cfg.Certifier.CertifyResponder(ctx, t.Name, signer, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("the certifier returned an unparseable certificate: %w", err)
	}
	if err := check(cert, t, signer.Public()); err != nil {
		return nil, fmt.Errorf("the certifier returned a wrong certificate: %w", err)
	}
	if err := k.cfg.Store.SaveResponderCertificate(label, der); err != nil {
		return nil, err
	}
	return cert, nil
}

// check: cert certifies pub and is a responder certificate of the
// target's issuer that the Responder accepts (ocsp.CheckResponder).
func check(cert *x509.Certificate, t Target, pub crypto.PublicKey) error {
	if p, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) {
		return errors.New("it certifies another key")
	}
	if !bytes.Equal(cert.RawIssuer, t.Certificate.RawSubject) {
		return errors.New("another issuer signed it")
	}
	return ocsp.CheckResponder(t.Certificate, cert)
}

// ResponderKey is one responder key and its pin, for the operator to
// enroll on the CA (clients[].responder_keys, R-R6).
type ResponderKey struct {
	Issuer string // the target's name, e.g. "sign-g1"
	Label  string // the key's HSM label
	Pin    string // ocsp.KeyPin of its public key
}

// Keys finds or generates the responder key of every target, without
// certifying anything, and returns their pins: what an operator enrolls
// before the CA certifies them.
func (k *Keeper) Keys(ctx context.Context) ([]ResponderKey, error) {
	k.work.Lock()
	defer k.work.Unlock()
	targets := k.Targets()
	keys, err := k.cfg.Token.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("responders: listing the HSM's keys: %w", err)
	}
	out := make([]ResponderKey, 0, len(targets))
	for _, t := range targets {
		label := k.KeyLabel(t.Name)
		s, err := k.signer(ctx, label, keys)
		if err != nil {
			return nil, fmt.Errorf("responders: %s: %w", label, err)
		}
		pin, err := ocsp.KeyPin(s.Public())
		if err != nil {
			return nil, err
		}
		out = append(out, ResponderKey{Issuer: t.Name, Label: label, Pin: pin})
	}
	return out, nil
}
