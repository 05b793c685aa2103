package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/ocsp/responders"
	"github.com/shomei-pki/shomei/propagation"
	"github.com/shomei-pki/shomei/repository"
)

// generationKeeper keeps the CA's own delegated OCSP responders, one per
// generation (*responders.Keeper).
type generationKeeper interface {
	SetTargets(targets []responders.Target) error
	Refresh(ctx context.Context, responder responders.Responder) (time.Time, error)
}

// retiredCRLs is the CRL publisher as generations tells it which
// generations sign nothing any more (*crl.Publisher).
type retiredCRLs interface {
	SetRetired(generations []crl.Generation)
}

var (
	_ generationKeeper = (*responders.Keeper)(nil)
	_ retiredCRLs      = (*crl.Publisher)(nil)
)

// generationsConfig wires generations.
type generationsConfig struct {
	// Records are the live issuer key generations with their states,
	// certificates and link certificates: the store.
	Records issuer.Records
	// Keeper and Responder are the CA's OCSP responder and the keeper of
	// its delegated responders.
	Keeper    generationKeeper
	Responder responders.Responder
	// CRL is the CRL publisher.
	CRL retiredCRLs
	// Files are the certificates served at /issuers/ (and shown on the
	// repository page).
	Files *repository.Issuers
	// Changed wakes Run; required for Run only.
	Changed *propagation.Notifier
	// Poll is how often Run looks at the store without a notification;
	// generationsPoll when zero.
	Poll time.Duration
	Log  *slog.Logger
}

// generationsPoll: Run also looks every minute, in case a change came
// without a notification. A look that finds nothing changed costs one
// read of the store.
const generationsPoll = time.Minute

// generations keeps everything that publishes per issuer key generation in
// line with the store (R-K1), while the CA runs: a new generation gets its
// certificates at /issuers/ (with its link certificates), a delegated OCSP
// responder certified by its own key and its place in the responder; its
// CRL partitions are published as they appear. A generation RETIRED or
// DESTROYED (every certificate of it expired) leaves the responder and CRL
// publishing, though its certificates stay at /issuers/: they still verify
// what it signed. Sync is idempotent and safe to call concurrently.
type generations struct {
	cfg generationsConfig

	mu sync.Mutex // serialises Sync
	// synced is the fingerprint of the generations last brought in line
	// without error; a Sync that finds the same does nothing.
	synced []byte
}

func newGenerations(cfg generationsConfig) (*generations, error) {
	if cfg.Records == nil || cfg.Keeper == nil || cfg.Responder == nil || cfg.CRL == nil || cfg.Files == nil {
		return nil, errors.New("generations: records, keeper, responder, CRL publisher and files are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = generationsPoll
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &generations{cfg: cfg}, nil
}

// responderTargets are the generations that need a delegated OCSP
// responder, named as the CA's certifier knows them (ca.IssuerName).
func responderTargets(all []issuer.Issuer) []responders.Target {
	var out []responders.Target
	for _, is := range all {
		if issuer.Signs(is.State) {
			out = append(out, responders.Target{Name: ca.IssuerName(is.Profile, is.Generation), Certificate: is.Certificate})
		}
	}
	return out
}

// Sync brings /issuers/, the CRL publisher and the OCSP responder in line
// with the store's generations: certificates first (a relying party can
// fetch a new issuer as soon as anything refers to it), then the CRL
// publisher's retired set, then the responders — a new one is certified
// before Sync returns, unless its issuer cannot certify yet, which the
// error says and the keeper retries within a minute.
func (g *generations) Sync(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	all, err := issuer.Load(g.cfg.Records)
	if err != nil {
		return err
	}
	fp := fingerprint(all)
	if bytes.Equal(fp, g.synced) {
		return nil
	}
	g.synced = nil
	g.cfg.Files.Set(all)
	var retired []crl.Generation
	for _, is := range all {
		if !issuer.Signs(is.State) {
			retired = append(retired, crl.Generation{Profile: is.Profile, Generation: is.Generation})
		}
	}
	g.cfg.CRL.SetRetired(retired)
	targets := responderTargets(all)
	if len(targets) == 0 {
		return errors.New("generations: every issuer generation is retired; the responder keeps its last set")
	}
	if err := g.cfg.Keeper.SetTargets(targets); err != nil {
		return err
	}
	if _, err := g.cfg.Keeper.Refresh(ctx, g.cfg.Responder); err != nil {
		return err
	}
	g.synced = fp
	g.cfg.Log.Info("issuer generations published", "generations", len(all), "answering", len(targets), "retired", len(retired))
	return nil
}

// fingerprint is a digest of what Sync publishes of each generation.
func fingerprint(all []issuer.Issuer) []byte {
	h := sha256.New()
	for _, is := range all {
		var b []byte
		b = binary.BigEndian.AppendUint32(b, uint32(is.Profile))
		b = binary.BigEndian.AppendUint32(b, is.Generation)
		b = binary.BigEndian.AppendUint32(b, uint32(is.State))
		for _, der := range [][]byte{is.CertificateDer, is.LinkNewWithOldDer, is.LinkOldWithNewDer} {
			sum := sha256.Sum256(der)
			b = append(b, sum[:]...)
		}
		h.Write(b)
	}
	return h.Sum(nil)
}

// Run syncs at every notification, and every Poll, until ctx ends. A
// failed sync is logged and tried again at the next poll.
func (g *generations) Run(ctx context.Context) {
	if g.cfg.Changed == nil {
		return
	}
	tick := time.NewTicker(g.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.cfg.Changed.C():
		case <-tick.C:
		}
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Log.Error("publishing a change of the issuer generations failed; retrying", "err", err, "retry_in", g.cfg.Poll)
		}
	}
}
