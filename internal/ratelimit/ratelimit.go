package ratelimit

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limit is a token bucket's shape: Rate tokens a second, at most Burst at
// once. A zero (or negative) Rate means no limit; a Burst below 1 means
// one second's worth, at least 1.
type Limit struct {
	Rate  float64
	Burst int
}

// burst is the bucket's capacity.
func (l Limit) burst() float64 {
	if l.Burst >= 1 {
		return float64(l.Burst)
	}
	return math.Max(1, math.Ceil(l.Rate))
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.Rate <= 0 }

// Keyed is a token bucket per key. It is safe for concurrent use.
type Keyed struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	maxKeys int
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// DefaultMaxKeys is how many keys a Keyed tracks when NewKeyed is given 0.
const DefaultMaxKeys = 65536

// NewKeyed tracks at most maxKeys keys (DefaultMaxKeys when 0). now is the
// clock; nil means time.Now.
func NewKeyed(maxKeys int, now func() time.Time) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Keyed{buckets: map[string]*bucket{}, maxKeys: maxKeys, now: now}
}

// Take takes a token from key's bucket. When the bucket is empty it takes
// nothing and returns false and how long until a token is there.
func (k *Keyed) Take(key string, l Limit) (bool, time.Duration) {
	return k.use(key, l, true)
}

// Ready reports whether key's bucket holds a token, taking none, and if
// not, how long until it does.
func (k *Keyed) Ready(key string, l Limit) (bool, time.Duration) {
	return k.use(key, l, false)
}

func (k *Keyed) use(key string, l Limit, take bool) (bool, time.Duration) {
	if l.Unlimited() {
		return true, 0
	}
	burst := l.burst()
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b, ok := k.buckets[key]
	if !ok {
		if !take {
			return true, 0 // a full bucket, not worth tracking yet
		}
		if len(k.buckets) >= k.maxKeys {
			k.prune(now, l)
		}
		b = &bucket{tokens: burst, last: now}
		k.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed.Seconds()*l.Rate)
		b.last = now
	}
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
		return false, max(wait, time.Millisecond)
	}
	if take {
		b.tokens--
	}
	return true, 0
}

// prune drops the buckets that have refilled (they behave as new ones);
// if every key is still in use, it forgets them all rather than grow: a
// flood from more addresses than maxKeys is beyond what per-key limits can
// stop, and memory stays bounded.
func (k *Keyed) prune(now time.Time, l Limit) {
	burst := l.burst()
	for key, b := range k.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.Rate >= burst {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) >= k.maxKeys {
		clear(k.buckets)
	}
}

// Len is how many keys are tracked.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// AddressKey is the key of a peer address: its IP without the port, and
// for IPv6 its /64 prefix, since one host usually holds a whole /64.
func AddressKey(addr net.Addr) string {
	if addr == nil {
		return "unknown"
	}
	s := addr.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		ip := ap.Addr().Unmap()
		if ip.Is6() {
			p, _ := ip.Prefix(64)
			return p.String()
		}
		return ip.String()
	}
	return s
}
