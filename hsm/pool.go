package hsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// maxAttempts bounds the tries of one operation: the first, and at most two
// more, each after a different recovery that happened (a token that stays
// away after a reconnect calls for a module re-initialisation next).
const maxAttempts = 3

// place is where an attempt ran: the module epoch and the Token's
// connection; connecting when it failed before it had a session.
type place struct {
	epoch, gen uint64
	connecting bool
}

// do runs fn with a session from the pool. It waits at most WaitTimeout (or
// until ctx ends) for a free session. If fn, or getting the session, fails in
// a way that a recovery can mend, do recovers and tries again.
func (t *Token) do(ctx context.Context, op string, fn func(session) error) error {
	return t.run(ctx, op, fn, nil)
}

// run is do with a say over retries: before each, mayRetry (if not nil) is
// asked whether fn may run again. Operations that are not idempotent use it.
func (t *Token) run(ctx context.Context, op string, fn func(session) error, mayRetry func() bool) error {
	if err := t.acquire(ctx); err != nil {
		t.metrics.failed(ctx, err, false)
		return t.explain(op, err)
	}
	defer func() { <-t.sem }()
	var tried [reinitModule + 1]bool
	for attempt := 1; ; attempt++ {
		at, err := t.attempt(fn)
		if err == nil {
			t.metrics.down.Store(false)
			return nil
		}
		t.metrics.failed(ctx, err, isSignOp(op))
		how, retry := t.recover(at, err)
		// A token that was there before and cannot be reached now
		// (not found, or the library fails to reach it) is unavailable:
		// callers answer "try again", not an internal error. A refused
		// PIN is not: trying again does not help.
		if (errors.Is(err, ErrTokenNotFound) || (at.connecting && !isLoginRefusal(err))) && t.wasConnected() && !errors.Is(err, ErrTokenUnavailable) {
			err = fmt.Errorf("%w: %w", ErrTokenUnavailable, err)
		}
		if !retry || tried[how] || attempt == maxAttempts || ctx.Err() != nil || (mayRetry != nil && !mayRetry()) {
			return t.explain(op, err)
		}
		tried[how] = true
	}
}

// acquire takes a pool slot.
func (t *Token) acquire(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	default:
	}
	t.metrics.waiting.Add(1)
	defer t.metrics.waiting.Add(-1)
	timer := time.NewTimer(t.cfg.WaitTimeout)
	defer timer.Stop()
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: all %d sessions stayed in use for %s (raise the pool size, or the HSM is too slow for this load)",
			ErrPoolExhausted, t.cfg.PoolSize, t.cfg.WaitTimeout)
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free session: %w", ctx.Err())
	}
}

// attempt gets a session, runs fn and returns the session to the pool. It
// returns where it ran, for recover.
func (t *Token) attempt(fn func(session) error) (place, error) {
	t.mod.opMu.RLock()
	defer t.mod.opMu.RUnlock()
	s, err := t.get()
	at := place{epoch: s.epoch, gen: s.gen}
	if err != nil {
		at.connecting = true
		return at, err
	}
	err = fn(s)
	t.put(s, err)
	return at, err
}

func (t *Token) wasConnected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.everConnected
}

// retryLater is a recent failure to connect, returned again without trying
// until RetryInterval has passed.
type retryLater struct{ error }

func (e retryLater) Unwrap() error { return e.error }

// get returns an idle session, opening one (and first finding the token and
// logging in, if this Token is not connected in the module's epoch) when
// there is none. The caller holds mod.opMu for reading.
func (t *Token) get() (session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return session{}, ErrClosed
	}
	if t.loginErr != nil {
		return session{epoch: t.modEpoch, gen: t.gen}, t.loginErr
	}
	raw, epoch, live := t.mod.current()
	if live && t.connected && t.modEpoch == epoch {
		s := session{ctx: t.api(raw), epoch: epoch, gen: t.gen}
		if n := len(t.idle); n > 0 {
			s.h = t.idle[n-1]
			t.idle = t.idle[:n-1]
			return s, nil
		}
		var err error
		s.h, err = s.ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		return s, err
	}
	if t.connErr != nil && t.connErrEpoch == epoch {
		if ago := time.Since(t.connErrAt); ago < t.cfg.RetryInterval {
			return session{epoch: epoch, gen: t.gen}, retryLater{fmt.Errorf("%w (the last attempt to reach it, %s ago, failed; the next waits until %s have passed: %w)",
				ErrTokenUnavailable, ago.Round(time.Microsecond), t.cfg.RetryInterval, t.connErr)}
		}
	}
	s, err := t.connect()
	if err != nil {
		t.connErr, t.connErrAt, t.connErrEpoch = err, time.Now(), s.epoch
		if isLoginRefusal(err) {
			t.loginErr = err
		}
		return s, err
	}
	t.connErr = nil
	return s, nil
}

// put returns a session after use. A session that saw a PKCS#11 error is
// dropped instead, since it may be left mid-operation, and closed unless the
// library already closed it: it may have given the number to another
// session since. The caller holds mod.opMu for reading.
func (t *Token) put(s session, opErr error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, failed := ckrCode(opErr)
	if !failed && !t.closed && t.connected && s.gen == t.gen && len(t.idle) < t.cfg.PoolSize {
		t.idle = append(t.idle, s.h)
		return
	}
	if sessionDead(opErr) {
		return
	}
	if _, epoch, live := t.mod.current(); !live || epoch != s.epoch {
		return // finalising the module closed it
	}
	_ = s.ctx.CloseSession(s.h) // best effort: the session is being dropped
}
