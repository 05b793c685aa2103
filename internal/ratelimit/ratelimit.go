package ratelimit

import (
	"container/list"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limit is a bucket's shape as configured: Rate tokens a second, at most
// Burst at once. A zero or negative Rate means no limit; a Burst below 1
// means one second's worth (at least 1).
type Limit struct {
	Rate  float64
	Burst int
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.Rate <= 0 }

// BurstOrDefault is l's bucket size: Burst, or one second's worth.
func (l Limit) BurstOrDefault() int {
	if l.Burst >= 1 {
		return l.Burst
	}
	return int(math.Max(1, math.Ceil(l.Rate)))
}

// Bucket makes a full bucket of shape l at now; nil when l is unlimited.
func (l Limit) Bucket(now time.Time) *Bucket {
	if l.Unlimited() {
		return nil
	}
	return &Bucket{rate: l.Rate, burst: float64(l.BurstOrDefault()), tokens: float64(l.BurstOrDefault()), last: now}
}

// Bucket is a token bucket: Rate tokens a second, at most Burst. The zero
// value allows nothing; use NewBucket.
type Bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

// NewBucket makes a full bucket at now. rate must be positive and burst at
// least 1.
func NewBucket(rate float64, burst int, now time.Time) (*Bucket, error) {
	if rate <= 0 || burst < 1 {
		return nil, fmt.Errorf("ratelimit: rate %v must be positive and burst %d at least 1", rate, burst)
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}, nil
}

// Allow takes one token at now. Without one, it says how long until one is
// available.
func (b *Bucket) Allow(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allow(now)
}

func (b *Bucket) allow(now time.Time) (bool, time.Duration) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// RetryAfter is a wait as the whole seconds of an HTTP Retry-After, at
// least 1.
func RetryAfter(wait time.Duration) int64 {
	return max(1, int64((wait+time.Second-1)/time.Second))
}

// Config configures a Table.
type Config struct {
	// Rate is tokens per second per key; positive.
	Rate float64
	// Burst is a key's bucket size; at least 1.
	Burst int
	// Size bounds the keys kept; at least 1.
	Size int
}

// Table is a bounded set of buckets by key, least recently used evicted
// first. It is safe for concurrent use.
type Table struct {
	cfg    Config
	seed   maphash.Seed
	shards []tableShard
}

type tableShard struct {
	mu   sync.Mutex
	keys map[string]*list.Element // of *entry
	lru  list.List                // front: most recently used
	size int
}

type entry struct {
	key    string
	bucket Bucket
}

// NewTable checks cfg and makes an empty table.
func NewTable(cfg Config) (*Table, error) {
	if cfg.Rate <= 0 || cfg.Burst < 1 || cfg.Size < 1 {
		return nil, errors.New("ratelimit: a table needs a positive rate, a burst and a size of at least 1")
	}
	n := 1
	for n < 16 && cfg.Size/(n*2) >= 256 {
		n *= 2
	}
	t := &Table{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]tableShard, n)}
	for i := range t.shards {
		t.shards[i] = tableShard{keys: map[string]*list.Element{}, size: max(1, cfg.Size/n)}
	}
	return t, nil
}

// Allow takes one token from key's bucket at now; a key not in the table
// gets a full bucket, evicting the least recently used key of its shard
// when full.
func (t *Table) Allow(key string, now time.Time) (bool, time.Duration) {
	s := &t.shards[maphash.String(t.seed, key)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *entry
	if el, ok := s.keys[key]; ok {
		s.lru.MoveToFront(el)
		e = el.Value.(*entry)
	} else {
		if s.lru.Len() >= s.size {
			old := s.lru.Back()
			delete(s.keys, old.Value.(*entry).key)
			s.lru.Remove(old)
		}
		e = &entry{key: key, bucket: Bucket{rate: t.cfg.Rate, burst: float64(t.cfg.Burst), tokens: float64(t.cfg.Burst), last: now}}
		s.keys[key] = s.lru.PushFront(e)
	}
	return e.bucket.allow(now)
}

// Ready reports whether key's bucket holds a token at now, taking none,
// and if not, how long until it does. A key not in the table has a full
// bucket and is not added.
func (t *Table) Ready(key string, now time.Time) (bool, time.Duration) {
	s := &t.shards[maphash.String(t.seed, key)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.keys[key]
	if !ok {
		return true, 0
	}
	b := &el.Value.(*entry).bucket
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// Len is the number of keys kept.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// AddressKey is the Table key of a remote address (host:port, as
// http.Request.RemoteAddr): the IPv4 address, or the IPv6 /64. An address
// that does not parse is its own key.
func AddressKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
