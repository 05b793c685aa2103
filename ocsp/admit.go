package ocsp

import (
	"hash/maphash"
	"sync/atomic"
)

// doorkeeper decides which responses read from the pre-signed store enter
// the cache: a key's second read within a window, not its first (the
// doorkeeper of TinyLFU, Einziger et al.). A request spread uniformly over
// millions of certificates asks about most of them once in a while: caching
// each such response would fill the cache, and the heap, with responses
// asked for once, evicting the hot ones, for nothing a store read would
// not give as cheaply. A serial asked about again soon is cached.
//
// It is a bit set of about 8 bits per cache entry, cleared after as many
// first reads as the cache holds, so at most an eighth of its bits are set
// and at most about an eighth of one-time keys are let in by a collision.
// Signed responses are always cached: making them again costs a signature.
type doorkeeper struct {
	seed  maphash.Seed
	bits  []atomic.Uint64
	mask  uint64
	set   atomic.Int64 // bits set since the last clear
	limit int64
}

// newDoorkeeper makes the doorkeeper of a cache of capacity entries.
func newDoorkeeper(capacity int) *doorkeeper {
	n := uint64(64)
	for n < 8*uint64(max(capacity, 1)) {
		n *= 2
	}
	return &doorkeeper{seed: maphash.MakeSeed(), bits: make([]atomic.Uint64, n/64), mask: n - 1, limit: int64(max(capacity, 1))}
}

// admit reports whether k was read before within the window, and marks it
// read.
func (d *doorkeeper) admit(k cacheKey) bool {
	h := maphash.String(d.seed, k.serial) ^ uint64(k.issuer)<<8 ^ uint64(k.hash)
	i := h & d.mask
	w, bit := &d.bits[i/64], uint64(1)<<(i%64)
	if w.Or(bit)&bit != 0 {
		return true
	}
	if d.set.Add(1) >= d.limit {
		// A new window. Clearing races with concurrent marks: a key
		// marked meanwhile may need one more read; nothing worse.
		d.set.Store(0)
		for j := range d.bits {
			d.bits[j].Store(0)
		}
	}
	return false
}
