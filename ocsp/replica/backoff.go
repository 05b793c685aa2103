package replica

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
)

// The reconnection schedule of a replica whose CA went away (issue 13). A
// CA restart used to cost 12–17 s: gRPC's own connect backoff (1 s, × 1.6
// per failure, up to 120 s) had grown while the CA was down, so the channel
// tried again long after the CA was back, and the Follower waited up to
// 5 s of its own on top. Both are now capped at MaxBackoff (1 s) and
// jittered by ±20 %: a CA that is down sees about one connection attempt a
// second from each replica, and one that is back is followed again within
// about a second.
const (
	// BaseBackoff is the first wait after a failure.
	BaseBackoff = 100 * time.Millisecond
	// MaxBackoff caps the wait between two attempts, gRPC's and the
	// Follower's.
	MaxBackoff = time.Second
	// BackoffJitter spreads each wait over ±20 % of it, so that replicas
	// cut off together do not come back in step.
	BackoffJitter = 0.2
	// backoffMultiplier grows the wait after each failure in a row.
	backoffMultiplier = 2
	// maxBackoffLimit bounds FollowerConfig.MaxBackoff.
	maxBackoffLimit = time.Minute
)

// ConnectParams are the gRPC connection parameters of a replica's channel
// to the CA: the same schedule for reconnecting the TCP/TLS connection as
// the Follower's for the stream. MinConnectTimeout stays gRPC's default
// of 20 s, so that a slow handshake is not cut short by the short waits.
func ConnectParams() grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff: grpcbackoff.Config{BaseDelay: BaseBackoff, Multiplier: backoffMultiplier,
			Jitter: BackoffJitter, MaxDelay: MaxBackoff},
		MinConnectTimeout: 20 * time.Second,
	}
}

// Backoff is the Follower's wait between attempts at the stream: Base
// after the first failure, doubled after each further failure in a row up
// to Max, each spread by ±Jitter; Reset after a stream that made progress.
// Rand (default math/rand/v2) returns values in [0, 1); tests fix it.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64
	Rand      func() float64

	failures int
}

// newBackoff is the Follower's schedule with max as its cap.
func newBackoff(max time.Duration) (*Backoff, error) {
	if max < BaseBackoff || max > maxBackoffLimit {
		return nil, fmt.Errorf("replica: max backoff %v: want %v to %v", max, BaseBackoff, maxBackoffLimit)
	}
	return &Backoff{Base: BaseBackoff, Max: max, Jitter: BackoffJitter, Rand: rand.Float64}, nil
}

// Next is the wait before the next attempt, after one more failure.
func (b *Backoff) Next() time.Duration {
	d := b.Base
	for i := 0; i < b.failures && d < b.Max; i++ {
		d *= backoffMultiplier
	}
	d = min(d, b.Max)
	b.failures++
	// ±Jitter: d × (1 − J + 2J·r), r in [0, 1).
	return time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*b.Rand()))
}

// Reset starts the schedule again at Base.
func (b *Backoff) Reset() { b.failures = 0 }
