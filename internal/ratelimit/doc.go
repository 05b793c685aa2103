// Package ratelimit is Shomei's one token bucket: a set of buckets, one per
// key (a client's configured name, a peer address), each refilled at its
// own rate. It keeps at most a fixed number of keys, so a flood from many
// addresses costs bounded memory. Keys are names and addresses, never
// personal data (R-P4).
package ratelimit
