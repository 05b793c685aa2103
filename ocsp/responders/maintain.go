package responders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ocsp"
)

// Responder is what the Keeper keeps current: the OCSP responder's set of
// issuer key generations with their delegated responders.
type Responder interface {
	SetIssuers(issuers []*ocsp.Issuer) error
}

var _ Responder = (*ocsp.Responder)(nil)

// retryAfter is how soon a failed renewal or certification is retried.
const retryAfter = time.Minute

// Refresh is one pass: it certifies what is due — a target added since the
// last pass, a certificate with less than RenewBefore left — and sets
// responder's issuers to one responder per target, so a target removed is
// dropped. It returns when the next pass is due. A target that fails keeps
// the responder it had while that is valid, or is left out; the others are
// set all the same, and the error names it and the next pass is within a
// minute. With no target usable, responder is left as it is.
func (k *Keeper) Refresh(ctx context.Context, responder Responder) (next time.Time, err error) {
	k.work.Lock()
	defer k.work.Unlock()
	now := k.cfg.Now()
	keys, err := k.cfg.Token.Keys(ctx)
	if err != nil {
		return now.Add(retryAfter), fmt.Errorf("responders: listing the HSM's keys: %w", err)
	}
	targets := k.Targets()
	out := make([]*ocsp.Issuer, 0, len(targets))
	var errs []error
	for _, t := range targets {
		is, renewAt, err := k.current(ctx, t, keys)
		if err != nil {
			errs = append(errs, err)
			renewAt = now.Add(retryAfter)
			if last := k.lastOf(t); last != nil && now.Before(last.Responder.NotAfter) {
				is = last
			}
		}
		if is != nil {
			out = append(out, is)
		}
		if next.IsZero() || renewAt.Before(next) {
			next = renewAt
		}
	}
	if len(out) == 0 {
		return next, errors.Join(errs...)
	}
	if err := responder.SetIssuers(out); err != nil {
		return now.Add(retryAfter), errors.Join(append(errs, err)...)
	}
	k.remember(out)
	return next, errors.Join(errs...)
}

// lastOf is the responder last handed out for t, or nil.
func (k *Keeper) lastOf(t Target) *ocsp.Issuer {
	k.mu.Lock()
	defer k.mu.Unlock()
	if is := k.last[t.Name]; is != nil && is.Certificate.Equal(t.Certificate) {
		return is
	}
	return nil
}

// Maintain keeps responder current until ctx ends: a pass (Refresh) when
// the earliest renewal is due, starting at next (from Current), and at once
// whenever SetTargets changed the targets. A failed pass is logged and
// retried a minute later; the current certificates keep serving meanwhile.
func (k *Keeper) Maintain(ctx context.Context, responder Responder, next time.Time) {
	for {
		// Wake at least hourly: a suspended machine's timers run late.
		wait := max(min(next.Sub(k.cfg.Now()), time.Hour), time.Second)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-k.changed:
			timer.Stop()
		case <-timer.C:
			if k.cfg.Now().Before(next) {
				continue
			}
		}
		n, err := k.Refresh(ctx, responder)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.cfg.Log.Error("renewing the OCSP responder certificates failed; retrying in a minute", "err", err)
		}
		next = n
	}
}
