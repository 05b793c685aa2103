package hsm

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// Token is one logged-in PKCS#11 token with a bounded pool of sessions.
// It is safe for concurrent use.
type Token struct {
	cfg  Config
	mod  *module
	sem  chan struct{}           // one slot per session that may be in use
	wrap func(cryptoki) cryptoki // tests put faults between the Token and the module; nil otherwise
	// metrics are the token's (metrics.go), exported by RegisterMetrics.
	metrics *tokenMetrics

	mu            sync.Mutex
	closed        bool
	connected     bool   // slot found and logged in for modEpoch
	everConnected bool   // a later "token not found" means it went away
	modEpoch      uint64 // module epoch of slot, login and idle sessions
	gen           uint64 // counts connections; object handles are cached per connection
	slot          uint
	idle          []pkcs11.SessionHandle

	// loginErr is a refusal of the PIN (wrong, locked, expired). Every
	// operation fails with it, without trying the PIN again, until the
	// Token is reopened: each wrong attempt brings the HSM's lockout closer.
	loginErr error
	// connErr is why the last attempt to connect failed, in module epoch
	// connErrEpoch at connErrAt. Within RetryInterval operations fail with
	// it at once rather than each trying again under t.mu.
	connErr      error
	connErrAt    time.Time
	connErrEpoch uint64
	// askedReinit: this Token asked for a module re-initialisation and has
	// not connected since. Its next connection resets the module's backoff.
	askedReinit bool
}

// session is a session handle lent to one operation, with the module epoch
// and the Token's connection it belongs to.
type session struct {
	ctx   cryptoki
	h     pkcs11.SessionHandle
	epoch uint64
	gen   uint64
}

// Open loads the module, finds the token by label and logs in. It fails at
// once, with an error that says why, if the module cannot be loaded, no (or
// more than one) token has the label, or the PIN is wrong.
func Open(cfg Config) (*Token, error) {
	return open(cfg, nil)
}

// open is Open with a wrapper around the module's functions, for tests.
func open(cfg Config, wrap func(cryptoki) cryptoki) (*Token, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mod, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	t := &Token{cfg: cfg, mod: mod, sem: make(chan struct{}, cfg.PoolSize), wrap: wrap, metrics: newTokenMetrics()}
	err = t.do(context.Background(), "open token", func(session) error { return nil })
	if err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

// api returns the functions of the module's context raw, as this Token calls them.
func (t *Token) api(raw *pkcs11.Ctx) cryptoki {
	if t.wrap != nil {
		return t.wrap(raw)
	}
	return raw
}

// Label is the token's label.
func (t *Token) Label() string { return t.cfg.TokenLabel }

// PoolSize is the most sessions the token uses at once.
func (t *Token) PoolSize() int { return t.cfg.PoolSize }

// Close closes the sessions and, when no other Token uses the module, logs
// out and finalises it. Operations after Close fail with ErrClosed.
//
// Idle sessions are closed only if they belong to the module's current
// epoch: after a re-initialisation the library numbers sessions from the
// start again, and an old handle may name another Token's live session.
func (t *Token) Close() error {
	t.mod.opMu.RLock() // the epoch cannot move on while the sessions are closed
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.mod.opMu.RUnlock()
		return nil
	}
	t.closed = true
	idle := t.idle
	t.idle = nil
	raw, epoch, live := t.mod.current()
	ours := live && t.connected && t.modEpoch == epoch
	t.connected = false
	t.mu.Unlock()
	if ours {
		api := t.api(raw)
		for _, h := range idle {
			_ = api.CloseSession(h) // best effort; finalising closes whatever this misses
		}
	}
	t.mod.opMu.RUnlock()
	return t.mod.release()
}
