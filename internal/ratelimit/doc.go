// Package ratelimit keeps token buckets: one (Bucket) for a single caller,
// and a bounded table of them keyed by caller (Table), for per-address and
// per-client limits.
//
// # Invariants
//
//   - A Table never holds more than its Size buckets: a new key in a full
//     table evicts the least recently used one, whose bucket starts full
//     again if the key comes back. Memory is therefore bounded whatever
//     the callers send; the price is that a caller cycling through more
//     keys than Size (many addresses) escapes the limit, which a per-key
//     limit cannot stop anyway.
//   - Every method takes now: tests pin the clock.
//   - AddressKey keys IPv6 callers by their /64, the smallest block a
//     single site is usually given, so one host cannot take a fresh
//     bucket per address.
package ratelimit
