// Package ratelimit is Shomei's one token bucket: Bucket for a single
// caller (a configured client, the OCSP signing budget), and Table, a
// bounded set of buckets keyed by caller (a peer address), for the gRPC
// gate, the OCSP/CRL relying-party gate and anything else that limits a
// rate. Keys are configured names and addresses, never personal data
// (R-P4).
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
