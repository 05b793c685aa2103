package replica

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ocsp/responders"
)

// Defaults of GenerationsConfig.
const (
	// DefaultGenerationsPoll is how often the CA's issuer generations are
	// listed without a reason to.
	DefaultGenerationsPoll = 5 * time.Minute
	// DefaultGenerationsMinInterval bounds how often a certificate of an
	// unknown generation on the Follow stream makes the replica list them.
	DefaultGenerationsMinInterval = 10 * time.Second
)

// Keeper keeps the replica's delegated responders, one per generation
// (*responders.Keeper).
type Keeper interface {
	SetTargets(targets []responders.Target) error
	Refresh(ctx context.Context, responder responders.Responder) (time.Time, error)
}

var _ Keeper = (*responders.Keeper)(nil)

// GenerationsConfig configures Generations.
type GenerationsConfig struct {
	Client cav1.ReplicationClient
	Store  *Store
	// Source is the replica's OCSP source; Keeper and Responder its
	// delegated responders and OCSP responder.
	Source    *Source
	Keeper    Keeper
	Responder responders.Responder
	// Poll: DefaultGenerationsPoll when zero. MinInterval:
	// DefaultGenerationsMinInterval when zero.
	Poll, MinInterval time.Duration
	Log               *slog.Logger
}

// Generations keeps the replica answering for the CA's issuer key
// generations as they change (R-K1), without a restart: it lists them
// (ListIssuers) every Poll and soon after the Follow stream names a
// generation the replica does not answer for (Saw), and brings the
// source, the responder keeper — a new generation gets a responder key in
// the replica's HSM, certified by the CA with that generation's key — and
// the OCSP responder in line; a generation the CA no longer lists is
// dropped. It is safe for concurrent use.
type Generations struct {
	cfg  GenerationsConfig
	wake chan struct{}

	mu sync.Mutex // serialises Sync
	// listed is the list last brought in line without error.
	listed *cav1.ListIssuersResponse
}

// NewGenerations checks cfg and makes a Generations.
func NewGenerations(cfg GenerationsConfig) (*Generations, error) {
	if cfg.Client == nil || cfg.Store == nil || cfg.Source == nil || cfg.Keeper == nil || cfg.Responder == nil {
		return nil, errors.New("replica: generations need a client, a store, a source, a keeper and a responder")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultGenerationsPoll
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultGenerationsMinInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Generations{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Saw is told the issuer generation of each status the Follow stream
// brings; one the replica does not answer for wakes Run.
func (g *Generations) Saw(issuer string) {
	if g.cfg.Source.Knows(issuer) {
		return
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Targets are the responder targets of the CA's issuer list, and the issuer
// certificates by name.
func Targets(list *cav1.ListIssuersResponse) ([]responders.Target, map[string]*x509.Certificate, error) {
	var targets []responders.Target
	byName := map[string]*x509.Certificate{}
	for _, is := range list.GetIssuers() {
		cert, err := x509.ParseCertificate(is.CertificateDer)
		if err != nil {
			return nil, nil, fmt.Errorf("issuer %s: %w", is.Name, err)
		}
		targets = append(targets, responders.Target{Name: is.Name, Certificate: cert})
		byName[is.Name] = cert
	}
	if len(targets) == 0 {
		return nil, nil, errors.New("the CA has no issuers for this replica")
	}
	return targets, byName, nil
}

// Sync lists the CA's issuer generations and, when they changed, saves the
// list (for a start while the CA is down) and brings the source, the
// keeper and the responder in line. Until the CA answers, nothing changes.
func (g *Generations) Sync(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	list, err := g.cfg.Client.ListIssuers(lctx, &cav1.ListIssuersRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("listing the CA's issuers: %w", err)
	}
	if g.listed != nil && sameIssuers(list, g.listed) {
		return nil
	}
	targets, byName, err := Targets(list)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.SaveIssuers(list); err != nil {
		return err
	}
	// The source knows a new generation before the responder answers for
	// it, and forgets a removed one only after.
	if g.listed != nil {
		if _, old, err := Targets(g.listed); err == nil {
			union := maps.Clone(old)
			maps.Copy(union, byName)
			g.cfg.Source.SetIssuers(union)
		}
	}
	if err := g.cfg.Keeper.SetTargets(targets); err != nil {
		return err
	}
	_, rerr := g.cfg.Keeper.Refresh(ctx, g.cfg.Responder)
	g.cfg.Source.SetIssuers(byName)
	if rerr != nil {
		return rerr
	}
	g.listed = list
	g.cfg.Log.Info("answering for the CA's issuer generations", "generations", len(targets))
	return nil
}

// sameIssuers: the same generations with the same certificates.
func sameIssuers(a, b *cav1.ListIssuersResponse) bool {
	if len(a.Issuers) != len(b.Issuers) {
		return false
	}
	for i, is := range a.Issuers {
		if is.Name != b.Issuers[i].Name || !bytes.Equal(is.CertificateDer, b.Issuers[i].CertificateDer) {
			return false
		}
	}
	return true
}

// Run syncs every Poll and when Saw is told of an unknown generation (at
// most every MinInterval), until ctx ends. Failures are logged; the next
// sync retries.
func (g *Generations) Run(ctx context.Context) {
	tick := time.NewTicker(g.cfg.Poll)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-g.wake:
			if wait := g.cfg.MinInterval - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Log.Warn("the CA's issuer generations could not be brought in; the replica answers for those it has", "err", err)
		}
	}
}
