package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Config wires a CA.
type Config struct {
	// Store records and reads certificates, revocations and responder
	// certifications: a *store.Store.
	Store Store
	// Token holds the issuer keys: the HSM's *hsm.Token.
	Token IssuerKeys
	// Profile is the certificate content that is configuration: OCSP URL,
	// CPS URL, issuerAltName (R-P1, R-P2).
	Profile profile.Config
	// CRLBaseURL is where CRL partitions are published; a certificate's
	// partition URL is CRLBaseURL + "/" + partition + ".crl" (R-R5).
	CRLBaseURL string
	// AllowECDSAP256 accepts ECDSA P-256 card keys besides RSA (R-P1).
	AllowECDSAP256 bool
	// InquiryLifetime is how long an inquiry code is accepted (R-A2); 30 days
	// when zero.
	InquiryLifetime time.Duration
	// Actor names this CA instance in the audit log.
	Actor string
	// Now is the clock; time.Now when nil. Every rule is judged at Now.
	Now func() time.Time
	// Log receives operational messages, never personal data (R-P4).
	Log *slog.Logger
	// Metrics receives the CA's metrics; none when nil.
	Metrics *Metrics
	// Responders says which delegated OCSP responder keys may be
	// certified, for whom, and for how long (R-R6).
	Responders ResponderPolicy
	// OnStatusChange, if set, is called after certificates were revoked
	// (events, counter requests, renewal), so CRL and OCSP publishers
	// react at once instead of at their next poll of the status log.
	OnStatusChange func()
}

// CA issues and renews certificates. It is safe for concurrent use.
type CA struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics
	// active is the issuing key generation of each profile (R-K1).
	active map[Profile]*issuerKey
	// all holds every generation's certificate, for look-ups.
	all map[Profile]map[uint32]*x509.Certificate

	partitions sync.Map // CRL partitions issued into by this process

	signersMu sync.Mutex
	signers   map[string]crypto.Signer // older generations, by "profile/generation"
}

// issuerKey is one issuer generation ready to sign.
type issuerKey struct {
	rec    *storev1.IssuerKey
	cert   *x509.Certificate
	signer issuerSigner
	hash   crypto.Hash
	sigAlg []byte // DER AlgorithmIdentifier the key signs with
}

// New loads the active issuer of each profile, finds its key in the HSM and
// checks it against the issuer certificate (a test signature that
// verifies), and marks any issuance a previous process left PENDING as
// ABANDONED.
func New(ctx context.Context, cfg Config) (*CA, error) {
	if cfg.Store == nil || cfg.Token == nil {
		return nil, errors.New("ca: a store and an HSM token are required")
	}
	if cfg.Profile.CPSURL == "" {
		return nil, errors.New("ca: profile CPS URL is required (R-P1)")
	}
	if len(cfg.Profile.IssuerAltName) == 0 {
		cfg.Profile.IssuerAltName = profile.DefaultIssuerAltName()
	}
	if cfg.CRLBaseURL == "" || !(strings.HasPrefix(cfg.CRLBaseURL, "http://") || strings.HasPrefix(cfg.CRLBaseURL, "https://")) {
		return nil, fmt.Errorf("ca: CRL base URL %q must be an http(s) URL (R-R5)", cfg.CRLBaseURL)
	}
	cfg.CRLBaseURL = strings.TrimRight(cfg.CRLBaseURL, "/")
	if cfg.InquiryLifetime == 0 {
		cfg.InquiryLifetime = 30 * 24 * time.Hour
	}
	if cfg.Actor == "" {
		cfg.Actor = "shomei-ca"
	}
	c := &CA{cfg: cfg, now: cfg.Now, log: cfg.Log, metrics: cfg.Metrics,
		active: map[Profile]*issuerKey{}, all: map[Profile]map[uint32]*x509.Certificate{}, signers: map[string]crypto.Signer{}}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	issuers, err := issuer.Load(cfg.Store)
	if err != nil {
		return nil, err
	}
	for _, is := range issuers {
		if c.all[is.Profile] == nil {
			c.all[is.Profile] = map[uint32]*x509.Certificate{}
		}
		c.all[is.Profile][is.Generation] = is.Certificate
		if is.State != storev1.KeyState_KEY_STATE_ACTIVE {
			continue
		}
		signer, err := is.Signer(ctx, cfg.Token)
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
		hash := alg.Hash
		c.active[is.Profile] = &issuerKey{rec: is.IssuerKey, cert: is.Certificate, signer: signer, hash: hash, sigAlg: sigAlg}
	}
	for _, p := range []Profile{ProfileSign, ProfileAuth} {
		if c.active[p] != nil {
			continue
		}
		if compromised(issuers, p) {
			// R-K2: the CA still serves revocation (CRLs, OCSP) and the
			// other profile; this one issues nothing until rotation.
			c.log.Error("the issuer key is compromised and no newer generation is active: no issuance for this profile (R-K2)", "profile", issuer.ShortName(p))
			continue
		}
		return nil, fmt.Errorf("ca: no active %s issuer in the store: run the key ceremony (shomeictl init)", issuer.ShortName(p))
	}
	if err := c.abandonLeftovers(); err != nil {
		return nil, err
	}
	return c, nil
}

// abandonLeftovers marks what a previous process reserved and never
// completed, certificates and responder certificates, ABANDONED.
func (c *CA) abandonLeftovers() error {
	abandoned, err := c.cfg.Store.AbandonPending()
	if err != nil {
		return err
	}
	for _, serial := range abandoned {
		c.log.Warn("issuance left pending by the previous process marked abandoned; it was never delivered", "serial", fmt.Sprintf("%x", serial))
	}
	if n, err := c.cfg.Store.AbandonPendingResponders(); err != nil {
		return err
	} else if n > 0 {
		c.log.Warn("responder certifications left pending by the previous process marked abandoned", "count", n)
	}
	return nil
}

// compromised reports whether p's latest generation is compromised (R-K2).
func compromised(issuers []issuer.Issuer, p Profile) bool {
	var last *issuer.Issuer
	for i := range issuers {
		if issuers[i].Profile == p {
			last = &issuers[i]
		}
	}
	return last != nil && last.State == storev1.KeyState_KEY_STATE_COMPROMISED
}

// IssuerCertificate returns the certificate of a profile's issuer generation.
func (c *CA) IssuerCertificate(p Profile, generation uint32) *x509.Certificate {
	return c.all[p][generation]
}

// IssuerSigner returns the certificate and HSM signer of any issuer key
// generation: the active one, or an older one that still signs CRLs and
// OCSP responders for its own certificates (R-K1). Signers of older
// generations are found and checked on first use.
func (c *CA) IssuerSigner(p Profile, generation uint32) (*x509.Certificate, crypto.Signer, error) {
	if a := c.active[p]; a != nil && a.rec.Generation == generation {
		return a.cert, a.signer, nil
	}
	c.signersMu.Lock()
	defer c.signersMu.Unlock()
	key := fmt.Sprintf("%d/%d", p, generation)
	if s, ok := c.signers[key]; ok {
		return c.all[p][generation], s, nil
	}
	issuers, err := issuer.Load(c.cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	for _, is := range issuers {
		if is.Profile == p && is.Generation == generation {
			s, err := is.Signer(context.Background(), c.cfg.Token)
			if err != nil {
				return nil, nil, err
			}
			c.signers[key] = s
			return is.Certificate, s, nil
		}
	}
	return nil, nil, fmt.Errorf("ca: no %s issuer generation %d", issuer.ShortName(p), generation)
}
