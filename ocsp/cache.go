package ocsp

import (
	"context"
	"errors"
	"hash/maphash"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// cache keeps the signed response of each (issuer, CertID hash, serial)
// until its reuseUntil, so that a hot certificate is signed for once per
// half validity, not once per request.
//
// It is split in shards by serial, each a map and a CLOCK ring: a hit takes
// the shard's read lock and sets the slot's used bit; an insertion into a
// full shard evicts the first slot the hand finds unused since its last
// pass, which approximates least-recently-used without writing a list on
// every hit. Concurrent misses of one key make one response (a flight);
// Invalidate drops both the entry and the flight, so a response made from a
// status read before the change is never cached after it.
type cache struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64
	// issuers is how many issuer numbers (cacheKey.issuer) are in use:
	// Invalidate looks at each. It only grows (serve).
	issuers atomic.Int32
	// door admits the responses read from the pre-signed store (admit.go).
	door *doorkeeper
}

type shard struct {
	mu       sync.RWMutex
	index    map[cacheKey]int
	slots    []slot
	capacity int
	hand     int
	flights  map[cacheKey]*flight
}

// cacheKey names a cached response. Only positive serials are cached, by
// their big-endian magnitude; CertIDs with other serials are never ours.
type cacheKey struct {
	serial string
	issuer int32
	hash   uint8
}

// slot is a place in a shard's ring; resp is nil when the slot is free.
type slot struct {
	key  cacheKey
	resp *response
	used atomic.Bool
}

// flight is a response being made for concurrent requests of one key.
type flight struct {
	done chan struct{}
	resp *response
	err  error
}

var errFillPanicked = errors.New("making the response panicked")

// newCache makes a cache of about size entries. Small caches have one
// shard, large ones 64.
func newCache(size int) *cache {
	n := 1
	for n < 64 && size/(n*2) >= 1024 {
		n *= 2
	}
	c := &cache{seed: maphash.MakeSeed(), shards: make([]shard, n), mask: uint64(n - 1), door: newDoorkeeper(size)}
	for i := range c.shards {
		c.shards[i] = shard{
			index:    map[cacheKey]int{},
			capacity: max(1, (size+n-1)/n),
			flights:  map[cacheKey]*flight{},
		}
	}
	return c
}

// serve says issuer numbers 0 to n-1 are in use. Call it before a request
// can use a new number.
func (c *cache) serve(n int) {
	for {
		old := c.issuers.Load()
		if int32(n) <= old || c.issuers.CompareAndSwap(old, int32(n)) {
			return
		}
	}
}

// key is the cache key of a CertID of is; false when it is not cacheable.
func (c *cache) key(is *issuer, id CertID) (cacheKey, bool) {
	if id.SerialNumber.Sign() <= 0 {
		return cacheKey{}, false
	}
	var buf [32]byte
	serial := buf[:0]
	if n := (id.SerialNumber.BitLen() + 7) / 8; n <= len(buf) {
		serial = id.SerialNumber.FillBytes(buf[:n])
	} else {
		serial = id.SerialNumber.Bytes()
	}
	return cacheKey{serial: string(serial), issuer: int32(is.index), hash: uint8(id.HashAlgorithm)}, true
}

func (c *cache) shard(serial string) *shard {
	return &c.shards[maphash.String(c.seed, serial)&c.mask]
}

// get returns k's response if it may be served at now, or nil.
func (c *cache) get(k cacheKey, now time.Time) *response {
	s := c.shard(k.serial)
	var r *response
	s.mu.RLock()
	if i, ok := s.index[k]; ok {
		e := &s.slots[i]
		r = e.resp
		if !e.used.Load() {
			e.used.Store(true)
		}
	}
	s.mu.RUnlock()
	if r != nil && now.Before(r.reuseUntil) {
		return r
	}
	return nil
}

// do returns k's response: the cached one if it may be served at now,
// else the one fill makes, shared with every concurrent caller for k.
// shared reports that this caller did not run fill. A cacheable response
// fill makes is cached unless k was invalidated meanwhile.
func (c *cache) do(ctx context.Context, k cacheKey, now time.Time, fill func() (*response, error)) (r *response, shared bool, err error) {
	s := c.shard(k.serial)
	s.mu.Lock()
	if i, ok := s.index[k]; ok && now.Before(s.slots[i].resp.reuseUntil) {
		r := s.slots[i].resp
		s.slots[i].used.Store(true)
		s.mu.Unlock()
		return r, true, nil
	}
	if f, ok := s.flights[k]; ok {
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.resp, true, f.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{}), err: errFillPanicked}
	s.flights[k] = f
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.flights[k] == f {
			delete(s.flights, k)
			if f.err == nil && f.resp.reusable {
				s.put(k, f.resp)
			}
		}
		s.mu.Unlock()
		close(f.done)
	}()
	f.resp, f.err = fill()
	return f.resp, false, f.err
}

// put caches r as k's response. The shard's lock is held.
func (s *shard) put(k cacheKey, r *response) {
	if i, ok := s.index[k]; ok {
		s.slots[i].resp = r
		return
	}
	if len(s.slots) < s.capacity {
		s.slots = append(s.slots, slot{key: k, resp: r})
		s.index[k] = len(s.slots) - 1
		return
	}
	for {
		e := &s.slots[s.hand]
		i := s.hand
		s.hand = (s.hand + 1) % len(s.slots)
		if e.resp != nil && e.used.Load() {
			e.used.Store(false) // second chance
			continue
		}
		if e.resp != nil {
			delete(s.index, e.key)
		}
		e.key, e.resp = k, r
		e.used.Store(false)
		s.index[k] = i
		return
	}
}

// invalidate drops every cached response and flight of serial.
func (c *cache) invalidate(serial *big.Int) {
	if serial == nil || serial.Sign() <= 0 {
		return
	}
	key := string(serial.Bytes())
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	for is := range c.issuers.Load() {
		for _, h := range certIDHashes {
			k := cacheKey{serial: key, issuer: int32(is), hash: uint8(h)}
			if i, ok := s.index[k]; ok {
				delete(s.index, k)
				s.slots[i] = slot{}
			}
			delete(s.flights, k)
		}
	}
}

// len is the number of cached responses.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
