package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/ca/store"
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
	// CRLShardSize is the most certificates one CRL partition (a shard of
	// an issuer generation's municipality) is given, and so the most
	// entries its CRL can list (R-R5, shard.go): 1 to
	// store.MaxCRLShardSize, store.DefaultCRLShardSize (100,000) when
	// zero. Every CA process sharing a store should have the same.
	CRLShardSize int
	// AllowECDSAP256 accepts ECDSA P-256 card keys besides RSA (R-P1).
	AllowECDSAP256 bool
	// InquiryLifetime is how long an inquiry code is accepted (R-A2); 30 days
	// when zero.
	InquiryLifetime time.Duration
	// Actor names this CA instance in the audit log.
	Actor string
	// Now is the clock; time.Now when nil. Every rule is judged at Now.
	Now func() time.Time
	// SharedStore: other CA processes use the store too (PostgreSQL), so
	// a PENDING reservation younger than PendingGrace may be one of their
	// issuances in flight, not a leftover (AbandonStale).
	SharedStore bool
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
	// OnIssuersChanged, if set, is called after every change of the set of
	// issuer key generations (a rotation recorded, an activation, a
	// retirement, a destruction, a Reload that found a change), outside
	// any lock of the CA: IssuerGenerations already returns the new set.
	OnIssuersChanged func()
	// Issuers is how a rotation makes the new issuer certificate: its
	// validity (ValidityYears; the key algorithm and DN are the previous
	// generation's). issuer.DefaultConfig's when zero.
	Issuers issuer.Config
}

// CA issues and renews certificates. It is safe for concurrent use.
type CA struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics
	// gens is the live set of issuer key generations (generations.go),
	// swapped whole by Reload.
	gens     atomic.Pointer[generations]
	reloadMu sync.Mutex // one Reload at a time, so snapshots never go back
	// keyOpsMu runs one key operation at a time: rotation, activation,
	// retirement, destruction.
	keyOpsMu sync.Mutex

	partitions sync.Map // CRL partitions issued into by this process
	shards     openShards

	signersMu sync.Mutex
	signers   map[string]crypto.Signer // older generations, by "profile/generation/key id"

	// The activation timer (generations.go).
	activationWake chan struct{}
	stopActivation chan struct{}
	activationDone chan struct{}
	closed         atomic.Bool
}

// issuerKey is one issuer generation ready to sign.
type issuerKey struct {
	rec    *storev1.IssuerKey
	cert   *x509.Certificate
	signer issuerSigner
	hash   crypto.Hash
	sigAlg []byte // DER AlgorithmIdentifier the key signs with
}

// New loads the issuer key generations, finds the key of each active one
// in the HSM and checks it against the issuer certificate (a test
// signature that verifies), marks any issuance a previous process left
// PENDING as ABANDONED, and starts the timer that activates a PENDING
// generation at its time (until ctx ends or Close).
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
	size, err := store.CRLShardSize(cfg.CRLShardSize)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	cfg.CRLShardSize = size
	if cfg.InquiryLifetime == 0 {
		cfg.InquiryLifetime = 30 * 24 * time.Hour
	}
	if cfg.Actor == "" {
		cfg.Actor = "shomei-ca"
	}
	if err := cfg.Issuers.Validate(); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	c := &CA{cfg: cfg, now: cfg.Now, log: cfg.Log, metrics: cfg.Metrics, signers: map[string]crypto.Signer{}, shards: openShards{open: map[shardBase]uint32{}},
		activationWake: make(chan struct{}, 1), stopActivation: make(chan struct{}), activationDone: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	gens, err := c.loadGenerations(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, p := range issuer.Profiles {
		if gens.active[p] != nil {
			continue
		}
		if compromised(gens.list, p) {
			// R-K2: the CA still serves revocation (CRLs, OCSP) and the
			// other profile; this one issues nothing until rotation.
			c.log.Error("the issuer key is compromised and no newer generation is active: no issuance for this profile until a rotation (R-K2)", "profile", issuer.ShortName(p))
			continue
		}
		return nil, fmt.Errorf("ca: no active %s issuer in the store: run the key ceremony (shomeictl init)", issuer.ShortName(p))
	}
	c.gens.Store(gens)
	if err := c.AbandonStale(); err != nil {
		return nil, err
	}
	c.observeIssuers(gens)
	go c.runActivation(ctx)
	return c, nil
}

// PendingGrace is how old a PENDING reservation on a shared store must be
// to count as a leftover of a process that died: an issuance takes
// seconds from reservation to completion (the HSM's wait is bounded at
// seconds too).
const PendingGrace = 10 * time.Minute

// AbandonStale marks ABANDONED the reservations (certificates and
// responder certificates) no process will complete: at start, every
// PENDING one on a store of this process alone; on a shared store, those
// older than PendingGrace, which the leader also sweeps from time to time
// (a process killed mid-issuance leaves some).
func (c *CA) AbandonStale() error {
	before := c.now().Add(time.Hour)
	if c.cfg.SharedStore {
		before = c.now().Add(-PendingGrace)
	}
	abandoned, err := c.cfg.Store.AbandonPending(before)
	if err != nil {
		return err
	}
	for _, serial := range abandoned {
		c.log.Warn("issuance left pending by a process that stopped marked abandoned; it was never delivered", "serial", fmt.Sprintf("%x", serial))
	}
	if n, err := c.cfg.Store.AbandonPendingResponders(before); err != nil {
		return err
	} else if n > 0 {
		c.log.Warn("responder certifications left pending by a process that stopped marked abandoned", "count", n)
	}
	return nil
}

// compromised reports whether a generation of p is compromised and none
// after it ever became active: issuance of p waits for a rotation (R-K2).
func compromised(issuers []issuer.Issuer, p Profile) bool {
	found := false
	for _, is := range issuers {
		if is.Profile != p {
			continue
		}
		switch is.State {
		case storev1.KeyState_KEY_STATE_COMPROMISED:
			found = true
		case storev1.KeyState_KEY_STATE_PENDING:
		default:
			found = false
		}
	}
	return found
}
