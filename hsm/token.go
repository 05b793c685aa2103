package hsm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// Token is one logged-in PKCS#11 token with a bounded pool of sessions.
// It is safe for concurrent use.
type Token struct {
	cfg Config
	mod *module
	sem chan struct{} // one slot per session that may be in use

	mu            sync.Mutex
	closed        bool
	connected     bool   // slot found and logged in for modEpoch
	everConnected bool   // a later "token not found" means it went away
	modEpoch      uint64 // module epoch of slot, login and idle sessions
	slot          uint
	idle          []pkcs11.SessionHandle
	lastRecover   time.Time
}

// session is a session handle lent to one operation.
type session struct {
	ctx   *pkcs11.Ctx
	h     pkcs11.SessionHandle
	epoch uint64
}

// Open loads the module, finds the token by label and logs in. It fails at
// once, with an error that says why, if the module cannot be loaded, no (or
// more than one) token has the label, or the PIN is wrong.
func Open(cfg Config) (*Token, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mod, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	t := &Token{cfg: cfg, mod: mod, sem: make(chan struct{}, cfg.PoolSize)}
	err = t.do(context.Background(), "log in", func(session) error { return nil })
	if err != nil {
		return nil, errors.Join(err, mod.release())
	}
	return t, nil
}

// Label is the token's label.
func (t *Token) Label() string { return t.cfg.TokenLabel }

// PoolSize is the most sessions the token uses at once.
func (t *Token) PoolSize() int { return t.cfg.PoolSize }

// Close closes the sessions and, when no other Token uses the module, logs
// out and finalises it. Operations after Close fail with ErrClosed.
func (t *Token) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	if ctx, _, err := t.mod.state(); err == nil {
		t.mod.opMu.RLock()
		for _, h := range idle {
			_ = ctx.CloseSession(h) // finalising below closes whatever this misses
		}
		t.mod.opMu.RUnlock()
	}
	return t.mod.release()
}

// do runs fn with a session from the pool. It waits at most WaitTimeout (or
// until ctx ends) for a free session. If fn, or getting the session, fails
// because the token went away, do reconnects and tries once more.
func (t *Token) do(ctx context.Context, op string, fn func(session) error) error {
	if err := t.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-t.sem }()
	for attempt := 0; ; attempt++ {
		epoch, err := t.attempt(fn)
		if err == nil {
			return nil
		}
		gone := isGone(err) || (errors.Is(err, ErrTokenNotFound) && t.wasConnected())
		if !gone || attempt > 0 {
			if gone && !isGone(err) { // explain marks PKCS#11 codes itself
				err = fmt.Errorf("%w: %w", ErrTokenUnavailable, err)
			}
			return t.explain(op, err)
		}
		t.recover(epoch)
	}
}

// acquire takes a pool slot.
func (t *Token) acquire(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(t.cfg.WaitTimeout)
	defer timer.Stop()
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("hsm: token %q: %w: all %d sessions stayed in use for %s (raise the pool size, or the HSM is too slow for this load)",
			t.cfg.TokenLabel, ErrPoolExhausted, t.cfg.PoolSize, t.cfg.WaitTimeout)
	case <-ctx.Done():
		return fmt.Errorf("hsm: token %q: waiting for a free session: %w", t.cfg.TokenLabel, ctx.Err())
	}
}

// attempt gets a session, runs fn and returns the session to the pool. It
// returns the module epoch it worked in, for recover.
func (t *Token) attempt(fn func(session) error) (uint64, error) {
	t.mod.opMu.RLock()
	defer t.mod.opMu.RUnlock()
	s, err := t.get()
	if err != nil {
		return s.epoch, err
	}
	err = fn(s)
	t.put(s, err)
	return s.epoch, err
}

func (t *Token) wasConnected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.everConnected
}

// get returns an idle session, opening one (and first finding the token and
// logging in, if this module epoch has not yet) when there is none.
// The caller holds mod.opMu for reading.
func (t *Token) get() (session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return session{}, ErrClosed
	}
	ctx, epoch, err := t.mod.state()
	if err != nil {
		return session{epoch: epoch}, err
	}
	s := session{ctx: ctx, epoch: epoch}
	if !t.connected || t.modEpoch != epoch {
		// Sessions of an earlier epoch died with the module's finalisation.
		t.idle, t.connected = nil, false
		h, err := t.connect(ctx)
		if err != nil {
			return s, err
		}
		t.connected, t.everConnected, t.modEpoch = true, true, epoch
		s.h = h
		return s, nil
	}
	if n := len(t.idle); n > 0 {
		s.h = t.idle[n-1]
		t.idle = t.idle[:n-1]
		return s, nil
	}
	s.h, err = ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	return s, err
}

// connect finds the token's slot, opens a session and logs in; t.mu is held.
func (t *Token) connect(ctx *pkcs11.Ctx) (pkcs11.SessionHandle, error) {
	slot, err := t.findSlot(ctx)
	if err != nil {
		return 0, err
	}
	h, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, err
	}
	// The login state belongs to the application, not the session: one
	// login serves every session this process opens on the token.
	err = ctx.Login(h, pkcs11.CKU_USER, t.cfg.PIN)
	if code, ok := ckrCode(err); ok && code == pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		err = nil
	}
	if err != nil {
		_ = ctx.CloseSession(h) // the login error is the one to report
		return 0, err
	}
	t.slot = slot
	return h, nil
}

// findSlot returns the slot of the one token labelled cfg.TokenLabel.
func (t *Token) findSlot(ctx *pkcs11.Ctx) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	var found []uint
	var seen []string
	for _, slot := range slots {
		info, err := ctx.GetTokenInfo(slot)
		if err != nil {
			continue // a slot that cannot describe its token is not ours
		}
		label := strings.TrimRight(info.Label, " \x00")
		seen = append(seen, fmt.Sprintf("%q", label))
		if label == t.cfg.TokenLabel {
			found = append(found, slot)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		others := "no initialised tokens"
		if len(seen) > 0 {
			others = "tokens seen: " + strings.Join(seen, ", ")
		}
		return 0, fmt.Errorf("%w %q in module %s (%s)", ErrTokenNotFound, t.cfg.TokenLabel, t.cfg.Module, others)
	default:
		return 0, fmt.Errorf("hsm: %d tokens are labelled %q in module %s; labels must be unique", len(found), t.cfg.TokenLabel, t.cfg.Module)
	}
}

// put returns a session after use, or closes it if it is of no further use.
// The caller holds mod.opMu for reading.
func (t *Token) put(s session, opErr error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && t.connected && s.epoch == t.modEpoch && !isGone(opErr) {
		t.idle = append(t.idle, s.h)
		return
	}
	if !isGone(opErr) {
		_ = s.ctx.CloseSession(s.h) // best effort: the session is being dropped
	}
}

// recover re-initialises the module after the token went away in epoch, so
// that the next attempt reconnects from scratch. Attempts closer together
// than RetryInterval are skipped.
func (t *Token) recover(epoch uint64) {
	t.mu.Lock()
	if time.Since(t.lastRecover) < t.cfg.RetryInterval {
		t.mu.Unlock()
		return
	}
	t.lastRecover = time.Now()
	t.connected = false
	t.idle = nil
	t.mu.Unlock()
	// An error here shows up again, explained, on the next attempt.
	_ = t.mod.reinitialize(epoch)
}
