// Package ocsp will answer RFC 6960 / RFC 5019 status requests (spec R-R6)
// with delegated responder certificates whose keys live in the HSM.
//
// Not implemented yet: this is the place reserved for it in the repository
// layout (issue "Revocation pipeline").
package ocsp
