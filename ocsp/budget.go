package ocsp

import (
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// Defaults of Config's signature budget.
const (
	DefaultSignatureBudget = 50
	DefaultSignatureBurst  = 100
	DefaultUnknownReuse    = time.Minute
)

// budget is a token bucket of fresh signatures: the signatures a caller can
// ask for without limit — a nonce, several CertIDs, a serial the issuer
// never issued (issue #9 item 5). Signatures the cache shares (one per
// issued certificate and CertID hash per half validity) are not counted:
// the number of issued certificates bounds them. The bucket keeps the
// responder from taking the HSM away from issuance; over it, a request is
// answered from the cache without its nonce, or tryLater.
//
// A nil budget is unlimited.
type budget struct{ *ratelimit.Bucket }

// newBudget makes a full bucket; rate < 0 means unlimited (nil).
func newBudget(rate float64, burst int, now time.Time) (*budget, error) {
	if rate < 0 {
		return nil, nil
	}
	if rate == 0 {
		rate = DefaultSignatureBudget
	}
	if burst == 0 {
		burst = max(DefaultSignatureBurst, int(2*rate))
	}
	b, err := ratelimit.NewBucket(rate, burst, now)
	if err != nil {
		return nil, fmt.Errorf("ocsp: Config.SignatureBudget, SignatureBurst: %w", err)
	}
	return &budget{b}, nil
}

// take spends one signature at now. When none is left it reports how long
// until one is.
func (b *budget) take(now time.Time) (bool, time.Duration) {
	if b == nil {
		return true, 0
	}
	return b.Allow(now)
}

// tryLaterError: the signature budget is spent; the answer is tryLater (3,
// RFC 6960 §4.2.1), unsigned, with an HTTP Retry-After.
type tryLaterError struct{ wait time.Duration }

func (e tryLaterError) Error() string {
	return fmt.Sprintf("ocsp: fresh-signature budget spent; one is available in %v", e.wait)
}

// retryAfter is e's Retry-After in whole seconds, at least 1.
func (e tryLaterError) retryAfter() int64 { return ratelimit.RetryAfter(e.wait) }
